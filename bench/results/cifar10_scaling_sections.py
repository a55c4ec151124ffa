"""The sections of docs/results/cifar10/report.md (``cifar10_scaling.py`` puts them together).

Each function takes the study's completed runs (``family.csv`` rows, :func:`cifar10_scaling.load`)
and returns markdown lines. Every interval is :func:`effnas.search_spaces.common.stats.interval`,
every comparison and verdict comes from :mod:`effnas.scaling.analysis.compare` /
:mod:`effnas.scaling.analysis.rules` (or :func:`~effnas.search_spaces.common.stats.compare` for the
two comparisons those do not make: test-time augmentation against plain, and this study against the
short-budget one); nothing here decides a verdict of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from _common import diff, iv, pval, table

from effnas.scaling.analysis.compare import claim_row, compare_methods, compare_sizes, paper_table
from effnas.scaling.analysis.rules import compare_rules
from effnas.search_spaces.common.stats import (
    BETTER,
    NOT_COMPARABLE,
    TIED,
    WORSE,
    Comparison,
    Interval,
    compare,
    interval,
)

REFERENCE = "compound"
#: The single-dimension baselines, in the order the page lists them.
SINGLE = ("depth", "width", "resolution")
METRIC, TTA = "test_accuracy", "test_accuracy_tta"
#: The verdicts that say something about the accuracies (the others say there is nothing to say yet).
DECIDED = (BETTER, WORSE, TIED)
COSTS = {"macs": "MACs", "activations": "activations", "train_seconds": "training time"}


# -- formats -----------------------------------------------------------------------------------------------


def pts(x: float) -> str:
    """A difference of fractions in signed percentage points, ``'-'`` when there is none."""
    return f"{100 * x:+.1f}" if math.isfinite(x) else "-"


def mmacs(x: float) -> str:
    return f"{x / 1e6:.2f} M"


def cost_text(cost: str, x: float) -> str:
    """A cost of :data:`COSTS` in its unit: MACs in millions, activations in thousands, training in minutes."""
    return {"macs": mmacs, "activations": lambda v: f"{v / 1e3:.1f} K",
            "train_seconds": lambda v: f"{v / 60:.2f} min"}.get(cost, lambda v: f"{v:.4g}")(x)


def ci_cell(r: Any) -> str:
    """A comparison row's difference with its interval (``'+1.2 [-0.3, +2.7]'``), or the difference alone."""
    d, lo, hi = (float(getattr(r, k)) for k in ("diff", "ci_low", "ci_high"))
    return f"{pts(d)} [{pts(lo)}, {pts(hi)}]" if math.isfinite(lo) else pts(d)


def p_cell(p: float) -> str:
    return pval(p) if math.isfinite(p) else "-"


def need_cell(r: Any) -> str:
    """Seeds per side that would separate a tied difference at 80 % power (``'-'`` otherwise)."""
    n = r.seeds_needed
    return str(int(n)) if r.verdict == TIED and n is not None and pd.notna(n) else "-"


def cmp_text(c: Comparison) -> str:
    """:func:`_common.diff`, or what is missing when there is nothing to compare."""
    if c.n_a == 0 or c.n_b == 0:
        return "-"
    return diff(c, unit=" pts") if math.isfinite(c.diff) else c.verdict


def goal_text(i: Interval, goal: float) -> str:
    """Where a member's mean test accuracy stands against a goal (fractions)."""
    if i.mean >= goal:
        if not math.isfinite(i.low):
            return "reached (one seed so far: no interval)"
        return "reached" + (" (its whole 95 % interval lies above it)" if i.low >= goal else
                            " by the mean; its 95 % interval reaches below it")
    short = f"not reached: {100 * (goal - i.mean):.1f} points short"
    if not math.isfinite(i.high):
        return short + " (one seed so far: no interval)"
    return short + ("; its whole 95 % interval lies below it" if i.high < goal else "; its 95 % interval reaches it")


# -- what the runs hold ---------------------------------------------------------------------------------------


def distinct(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that are runs of their own: a rule's member that is the same network as another's
    (``same_network_as``, e.g. every rule's phi 0) shares that member's runs."""
    if "same_network_as" not in df.columns:
        return df
    return df[df["same_network_as"].isna() | (df["same_network_as"].astype(str) == "")]


def methods(df: pd.DataFrame) -> list[str]:
    """compound, the single dimensions present, then the rules in the table's order."""
    present = [str(m) for m in df["method"].unique()]
    return [m for m in (REFERENCE, *SINGLE) if m in present] + [m for m in present if m not in (REFERENCE, *SINGLE)]


def rules(df: pd.DataFrame) -> list[str]:
    return [m for m in methods(df) if m not in (REFERENCE, *SINGLE)]


def runs_of(df: pd.DataFrame, method: str, phi: int) -> pd.DataFrame:
    return df[(df["method"] == method) & (df["phi"] == phi)].sort_values("seed")


def dimension_table(df: pd.DataFrame) -> pd.DataFrame:
    """compound against each single dimension at every phi >= 1 (``compare_methods``; rules left out), in the
    order phi, then :data:`SINGLE`."""
    t = compare_methods(df)
    t = t[t["b"].isin(SINGLE)]
    return t.sort_values(["phi", "b"], key=lambda c: c.map(SINGLE.index) if c.name == "b" else c,
                         kind="stable").reset_index(drop=True)


def rule_table(df: pd.DataFrame) -> pd.DataFrame:
    return compare_rules(df, metric=METRIC, reference=REFERENCE) if rules(df) else pd.DataFrame()


def tta_gain(df: pd.DataFrame) -> Comparison | None:
    """Test accuracy with TTA minus without, paired by run, over every distinct run that has both."""
    if TTA not in df.columns:
        return None
    d = distinct(df)
    d = d[d[TTA].notna() & d[METRIC].notna()]
    ids = list(range(len(d)))
    return compare(list(d[TTA].astype(float)), list(d[METRIC].astype(float)), seeds_a=ids, seeds_b=ids)


# -- sections ----------------------------------------------------------------------------------------------------


def findings(df: pd.DataFrame, *, base_goal: float, top_goal: float, old: list[str]) -> list[str]:
    """The page's first section; ``old`` is the line on the short-budget study (:func:`old_vs_new`)."""
    base = interval(runs_of(df, REFERENCE, 0)[METRIC])
    top_phi = int(df[df["method"] == REFERENCE]["phi"].max())
    top = runs_of(df, REFERENCE, top_phi)
    lines = ["## Findings", "",
             f"- **Base** (compound phi 0, {mmacs(float(runs_of(df, REFERENCE, 0)['macs'].iloc[0]))} MACs): test "
             f"accuracy {base.text(unit=' %')}; the goal of {100 * base_goal:g} % "
             f"is {goal_text(base, base_goal)}.",
             f"- **Largest member** (compound phi {top_phi}, {mmacs(float(top['macs'].iloc[0]))} MACs): "
             f"{interval(top[METRIC]).text(unit=' %')}; the goal of {100 * top_goal:g} % is "
             f"{goal_text(interval(top[METRIC]), top_goal)}."]
    dims = dimension_table(df)
    for b in (m for m in SINGLE if m in set(dims["b"])):
        g = dims[dims["b"] == b]
        parts = [f"phi {r.phi} {r.verdict} ({pts(r.diff)} pts" + (f", {b}'s MACs {100 * r.macs_gap:+.1f} %)"
                                                                 if r.verdict == NOT_COMPARABLE else ")")
                 for r in g.itertuples(index=False)]
        claim = claim_row("", "", list(g["verdict"]))["verdict"]
        lines.append(f"- **Compound against {b}-only** at equal MACs (compound - {b}): {'; '.join(parts)}. "
                     f"Claim 'compound beats {b}-only': {claim}.")
    rt = rule_table(df)
    for rule in rules(df):
        per_cost = []
        for cost, label in COSTS.items():
            g = rt[(rt["b"] == rule) & (rt["cost"] == cost)]
            if not g.empty:
                per_cost.append(f"at equal {label} " + ", ".join(
                    f"phi {r.phi} {r.verdict} ({pts(r.diff)} pts"
                    + (f", {rule}'s {label} {100 * r.cost_gap:+.1f} %)" if r.verdict == NOT_COMPARABLE else ")")
                    for r in g.itertuples(index=False)))
        lines.append(f"- **{rule} against compound** (compound - {rule}; `better` = compound more accurate): "
                     + ("; ".join(per_cost) or "no member at phi >= 1 yet") + ".")
    gain = tta_gain(df)
    if gain is None:
        lines.append(f"- **Test-time augmentation**: family.csv has no `{TTA}` column, so no TTA gain to state.")
    else:
        per = [interval(runs_of(df, m, p)[TTA] - runs_of(df, m, p)[METRIC]).mean
               for m, p in distinct(df)[["method", "phi"]].drop_duplicates().itertuples(index=False)]
        lines.append(f"- **Test-time augmentation** (flip + 1-pixel translations) minus plain test accuracy over "
                     f"the {gain.n_a} distinct runs, paired by run: {cmp_text(gain)}; per network the mean gain "
                     f"spans {pts(min(per))} to {pts(max(per))} points. The tables report it beside the plain "
                     "accuracy, never in its place.")
    return [*lines, *old, ""]


def members(df: pd.DataFrame) -> list[str]:
    d = distinct(df)
    has_act, has_tta = "activations" in d.columns, TTA in d.columns
    rows = []
    for m in methods(d):
        for phi in sorted(int(p) for p in d[d["method"] == m]["phi"].unique()):
            g = runs_of(d, m, phi)
            r = g.iloc[0]
            rows.append([m, phi, mmacs(float(r["macs"])), f"{int(r['params']):,}",
                         *([f"{float(r['activations']) / 1e3:.1f} K"] if has_act else []), int(r["resolution"]),
                         len(g), iv(interval(g[METRIC])), *([iv(interval(g[TTA]))] if has_tta else []),
                         f"{g['train_seconds'].mean() / 60:.1f}"])
    shared = sorted({f"{m} phi {int(p)}" for m, p in df[~df.index.isin(d.index)][["method", "phi"]].itertuples(
        index=False)})
    header = ["method", "phi", "MACs", "params", *(["activations"] if has_act else []), "px", "n",
              "test accuracy %, mean [95 % CI]", *(["with TTA %"] if has_tta else []), "train min (mean)"]
    note = (f" {', '.join(shared)}: the same network as another method's member, trained once per seed (its runs "
            "are that member's)." if shared else "")
    return ["## Members", "",
            "Every network at its realised cost (MACs and activations per image at its input size `px`; "
            "activations: elements of every conv and linear output); test accuracy over its `n` seeds (no interval "
            "where n = 1); training minutes: the trainer's own clock (evaluation excluded), mean over the runs, on "
            "one thread of the shared machine." + note, "", *table(header, rows), ""]


def dimensions(df: pd.DataFrame) -> list[str]:
    dims = dimension_table(df)
    rows = [[r.phi, f"compound - {r.b}", f"{100 * r.macs_gap:+.1f} %", ci_cell(r), p_cell(r.p), r.test,
             f"{r.n_a}/{r.n_b}", r.verdict, need_cell(r)] for r in dims.itertuples(index=False)]
    sizes = compare_sizes(df)
    size_rows = [[r.a, r.b, ci_cell(r), p_cell(r.p), f"{r.n_a}/{r.n_b}", r.verdict, need_cell(r)]
                 for r in sizes.itertuples(index=False)]
    claims = paper_table(df[df["method"].isin((REFERENCE, *SINGLE))])
    return ["## Compound against one dimension at a time", "",
            "At each phi >= 1, compound's member against the depth-, width- and resolution-only networks built at "
            "its realised MACs (`effnas.scaling.analysis.compare.compare_methods`): the difference in points, "
            "paired by seed, with its 95 % interval, p-value and verdict (docs/statistics.md; `better` = compound "
            "more accurate), `not comparable` where the two networks' MACs differ by more than the family's "
            "tolerance, and the seeds per side that would separate a tied difference at 80 % power.", "",
            *(table(["phi", "A - B", "B's MACs vs A's", "difference [95 %] pts", "p", "test", "n", "verdict",
                     "seeds needed"], rows) if rows else ["(no member at phi >= 1 yet)"]), "",
            "Each method's largest member against the base (`compare_sizes`): does scaling that way help at all?",
            "", *(table(["A", "B", "difference [95 %] pts", "p", "n", "verdict", "seeds needed"], size_rows)
                  if size_rows else ["(no member at phi >= 1 yet)"]), "",
            "### Against the paper", "",
            "EfficientNet's claims these runs test (`paper_table`; the claim verdict from the comparisons' verdicts, "
            "docs/statistics.md):", "",
            *table(["claim", "paper", "comparisons", "verdict"],
                   [list(r) for r in claims[["claim", "paper", "comparisons", "verdict"]].itertuples(index=False)]),
            ""]


def rule_section(df: pd.DataFrame) -> list[str]:
    rt = rule_table(df)
    if rt.empty:
        return []
    rows = [[COSTS.get(r.cost, r.cost), r.phi, f"compound - {r.b}",
             f"{cost_text(r.cost, r.cost_b)} vs {cost_text(r.cost, r.cost_a)} ({100 * r.cost_gap:+.1f} %)", ci_cell(r),
             p_cell(r.p),
             f"{r.n_a}/{r.n_b}", r.verdict] for r in rt.itertuples(index=False)]
    return ["## Other scaling rules against compound", "",
            f"The rules {', '.join(f'`{r}`' for r in rules(df))} (docs/scaling.md): member phi of each claims "
            "compound's MACs at phi. Each against compound at equal MACs, at equal activations and at equal "
            "measured training time (`effnas.scaling.analysis.rules.compare_rules`, what `effnas compare DIR "
            "--rules` prints): compound minus the rule, paired by seed, `not comparable` where the two members' "
            "realised cost of that kind differs by more than the family's tolerance (`better` = compound more "
            "accurate). Training time was measured on a shared machine, so it carries that noise.", "",
            *table(["at equal", "phi", "A - B", "B's cost vs A's", "difference [95 %] pts", "p", "n", "verdict"],
                   rows), ""]


def same_networks(new: pd.DataFrame, old: pd.DataFrame) -> list[str]:
    """The (method, phi) that are one network in both studies: equal MACs, parameters and input size."""
    out = []
    for m, p in new[new["method"].isin((REFERENCE, *SINGLE))][["method", "phi"]].drop_duplicates().itertuples(
            index=False):
        a, b = runs_of(old, m, p), runs_of(new, m, p)
        key = ("macs", "params", "resolution")
        if not a.empty and tuple(int(a[k].iloc[0]) for k in key) == tuple(int(b[k].iloc[0]) for k in key):
            out.append(f"{m} phi {int(p)}")
    return out


def change_rows(new: pd.DataFrame, olds: Sequence[tuple[str, pd.DataFrame]]) -> list[list[object]]:
    """Per (method, phi) of the new study that an old one also has: MACs, the means and new - old (Welch: the
    runs of the two studies are different runs, whatever their seeds)."""
    rows: list[list[object]] = []
    keys = [(m, int(p)) for m in (REFERENCE, *SINGLE) for p in sorted(new[new["method"] == m]["phi"].unique())]
    for m, p in keys:
        b = runs_of(new, m, p)
        found = [runs_of(o, m, p) for _, o in olds]
        if all(a.empty for a in found):
            continue
        row: list[object] = [m, p, " / ".join(mmacs(float(a["macs"].iloc[0])) if not a.empty else "-"
                                              for a in found) + f" / {mmacs(float(b['macs'].iloc[0]))}"]
        for a in found:
            if a.empty:
                row += ["-", "-"]
            else:
                row += [interval(a[METRIC]).text(), cmp_text(compare(list(b[METRIC]), list(a[METRIC])))]
        rows.append([*row[:3], interval(b[METRIC]).text(), *row[3:]])
    return rows


def verdict_rows(new: pd.DataFrame, olds: Sequence[tuple[str, pd.DataFrame]]) -> tuple[list[list[object]], int, int]:
    """compound against each dimension in each study side by side; the count of new verdicts that differ from
    an old study's at the same (phi, dimension), and of those compared: only verdicts that decide (better,
    worse, tied within noise) are compared; ``too few seeds`` and ``not comparable`` are no verdict to change."""
    tables = [dimension_table(o) for _, o in olds] + [dimension_table(new)]
    keys = sorted({(int(r.phi), str(r.b)) for t in tables for r in t.itertuples(index=False)},
                  key=lambda k: (k[0], SINGLE.index(k[1])))
    rows, changed, both = [], 0, 0
    for phi, b in keys:
        found = [t[(t["phi"] == phi) & (t["b"] == b)] for t in tables]
        cells = [f"{pts(float(f['diff'].iloc[0]))}: {f['verdict'].iloc[0]}" if not f.empty else "-" for f in found]
        now = found[-1]["verdict"].iloc[0] if not found[-1].empty else None
        marks = []
        for (label, _), f in zip(olds, found[:-1], strict=True):
            if now in DECIDED and not f.empty and f["verdict"].iloc[0] in DECIDED:
                both += 1
                if f["verdict"].iloc[0] != now:
                    changed += 1
                    marks.append(f"changed from {label}")
                else:
                    marks.append(f"same as {label}")
        rows.append([phi, f"compound - {b}", *cells, "; ".join(marks) or "-"])
    return rows, changed, both
