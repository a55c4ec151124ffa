"""docs/results/cifar10/report.md: the CIFAR-10 scaling study trained to its budget (issue 26, item 4), from
docs/results/cifar10/family.csv and study.json, set against the short-budget study in
docs/results/cifar10/short-budget/; and the figure docs/results/cifar10/accuracy_vs_cost.png.

    python bench/results/cifar10_scaling.py           # write the page and the figure
    python bench/results/cifar10_scaling.py --check   # exit 1 when the page differs from the data

Data files (committed under docs/results/cifar10/):

* ``family.csv``: the table ``effnas family --train ... --out runs/cifar10-scaling`` writes (every member,
  baseline and rule, one row per network and seed). Columns read: ``method``, ``phi``, ``seed``, ``status``
  (only ``completed`` rows count), ``macs``, ``params``, ``resolution``, ``depth``, ``width``,
  ``resolution_mult`` (compound's give the coefficients), ``epochs_completed``, ``test_accuracy``,
  ``train_seconds``; when present ``activations``, ``test_accuracy_tta`` and ``same_network_as`` (a rule's
  member that is another member's network shares its runs). A study that arrives in parts (seed 0, then
  0-1, then 0-2) renders at every stage: n = 1 has no interval and no verdict.
* ``study.json``: what family.csv does not record, as one object with the keys
  ``epochs`` (int, per run), ``recipe`` (``train.recipe``), ``data_fraction``, ``val_fraction``,
  ``workers``, ``threads_per_worker``, ``torch`` (version string), ``machine`` (one line: CPU, cores, OS),
  ``command`` (the ``effnas family`` command line) and ``parts``: a list, one entry per invocation of the
  command, ``{"seeds": [0], "wall_seconds": 12345.6, "finished_utc": "2026-12-09T10:11:12Z"}`` with the
  seeds that invocation trained (together, the parts' seeds are the seeds family.csv holds). Optional,
  and checked against family.csv when given: ``seeds`` (list), ``phis`` (compound's), ``rules`` (the
  methods beside compound and the single dimensions) and ``coefficients`` ([alpha, beta, gamma]).

The short-budget study is read by ``cifar10_data.load`` (its family.csv, longer/family.csv and the
configuration in run_report.html). Intervals and verdicts: :mod:`effnas.search_spaces.common.stats`
through :mod:`effnas.scaling.analysis` (docs/statistics.md); the sections: ``cifar10_scaling_sections.py``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from _common import ROOT, Provenance, main, mark, table
from cifar10_budget import GOALS
from cifar10_data import Study, subset_sizes
from cifar10_data import load as load_old
from cifar10_scaling_sections import (
    METRIC,
    REFERENCE,
    SINGLE,
    change_rows,
    dimensions,
    distinct,
    findings,
    members,
    rule_section,
    rules,
    same_networks,
    verdict_rows,
)

import effnas.search_spaces as ss
from effnas.scaling.compound import PAPER_COEFFICIENTS
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.progress import plural

SCRIPT = "bench/results/cifar10_scaling.py"
PAGES = ["cifar10/report.md"]
FAMILY, STUDY, OLD = "cifar10/family.csv", "cifar10/study.json", "cifar10/short-budget"
FIGURE = "accuracy_vs_cost.png"  # beside the page
BASE = ROOT / "experiments" / "config" / "presets" / "specs" / "cifar10_found_base.json"
REQUIRED = ("epochs", "recipe", "data_fraction", "val_fraction", "workers", "threads_per_worker", "torch", "machine",
            "command", "parts")
COLUMNS = ("method", "phi", "seed", "status", "macs", "params", "resolution", "depth", "width", "resolution_mult",
           "epochs_completed", METRIC, "train_seconds")


@dataclass(frozen=True)
class New:
    """This study's completed runs and its record."""

    runs: pd.DataFrame
    unfinished: int  # rows of family.csv that are not completed runs
    study: dict[str, Any]
    seeds: list[int]


def coefficients(df: pd.DataFrame) -> tuple[float, float, float] | None:
    """(alpha, beta, gamma) read off compound's first member past the base: depth, width and resolution
    multipliers are alpha^phi, beta^phi, gamma^phi (None with no such member)."""
    c = df[(df["method"] == REFERENCE) & (df["phi"] > 0)].sort_values("phi")
    if c.empty:
        return None
    r = c.iloc[0]
    p = float(r["phi"])
    a, b, g = (float(r[k]) ** (1 / p) for k in ("depth", "width", "resolution_mult"))
    return a, b, g


def _fail(problem: str) -> UserError:
    return UserError(f"docs/results/{STUDY}: {problem}")


def _check(study: dict[str, Any], df: pd.DataFrame, seeds: list[int]) -> None:
    """study.json against family.csv: keys present, and every fact both record agrees."""
    missing = [k for k in REQUIRED if k not in study]
    if missing:
        raise _fail(f"missing key(s) {', '.join(missing)}: add them (bench/results/cifar10_scaling.py's docstring "
                    "lists the format)")
    parts = study["parts"]
    if not parts or any(not isinstance(p, dict) or {"seeds", "wall_seconds", "finished_utc"} - set(p) for p in parts):
        raise _fail("'parts' must be a non-empty list of {\"seeds\": [...], \"wall_seconds\": s, \"finished_utc\": "
                    "\"...\"}, one per run of the command")
    covered = sorted({int(s) for p in parts for s in p["seeds"]})
    if covered != seeds:
        raise _fail(f"the parts trained seeds {covered}, family.csv holds {seeds}: add the part that trained "
                    "them (bench/cifar10_scaling.py merges each seed with its part)")
    top = int(df["epochs_completed"].max())
    if int(study["epochs"]) != top:
        raise _fail(f"epochs {study['epochs']}, but family.csv's completed runs trained {top}: fix 'epochs'")
    given = {"seeds": seeds, "phis": sorted(int(p) for p in df[df["method"] == REFERENCE]["phi"].unique()),
             "rules": sorted(rules(df))}
    for key, value in given.items():
        if key in study and sorted(study[key]) != value:
            raise _fail(f"{key} {study[key]} but family.csv holds {value}: fix or drop {key!r}")
    coeff = coefficients(df)
    if "coefficients" in study and coeff is not None and any(
            abs(float(x) - y) > 1e-6 for x, y in zip(study["coefficients"], coeff, strict=True)):
        raise _fail(f"coefficients {study['coefficients']} but compound's members are built with "
                    f"{', '.join(f'{c:.4g}' for c in coeff)}: fix or drop 'coefficients'")


def load(results: Path) -> New:
    path = results / FAMILY
    if not path.is_file():
        raise UserError(f"{path} does not exist: copy the study's family.csv there (runs/cifar10-scaling/family.csv)")
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path} lacks column {missing[0]!r}: give the family.csv that 'effnas family --train' wrote")
    done = df[df["status"] == "completed"].copy()
    if done.empty or not (done["method"] == REFERENCE).any() or not (done["phi"] == 0).any():
        raise UserError(f"{path} has no completed compound base run: nothing to report yet")
    if not (results / STUDY).is_file():
        raise UserError(f"{results / STUDY} does not exist: write it (bench/results/cifar10_scaling.py's docstring "
                        "lists its keys)")
    study = json.loads((results / STUDY).read_text())
    seeds = sorted(int(s) for s in done["seed"].unique())
    _check(study, done, seeds)
    return New(done, len(df) - len(done), study, seeds)


# -- what differs between the studies -------------------------------------------------------------------------------


def _coeff(df: pd.DataFrame) -> str:
    c = coefficients(df)
    return ", ".join(f"{x:.3g}" for x in c) if c is not None else "-"


def _seeds(df: pd.DataFrame) -> str:
    return ", ".join(str(int(s)) for s in sorted(df["seed"].unique()))


def _members(df: pd.DataFrame) -> str:
    def phis(m: str) -> list[int]:
        return sorted(int(p) for p in df[df["method"] == m]["phi"].unique())

    single = sorted({p for m in SINGLE for p in phis(m)})
    return (f"compound phi {', '.join(map(str, phis(REFERENCE)))}; single dimensions at phi "
            f"{', '.join(map(str, single)) or '-'}"
            + "".join(f"; {r} at phi {', '.join(str(p) for p in phis(r) if p > 0)}" for r in rules(df)))


def _images(data_fraction: float, val_fraction: float) -> str:
    n = subset_sizes({"data": {"data_fraction": data_fraction, "val_fraction": val_fraction},
                      "search": {"train": {"data_fraction": data_fraction}}})
    share = "all" if data_fraction == 1 else f"{100 * data_fraction:g} %"
    return f"{n['train']:,} ({share} of the {n['rest']:,} left after {n['val']:,} for validation)"


def setup_rows(new: New, old: Study) -> list[list[object]]:
    cfg, st = old.config, new.study
    tr = cfg["train"]
    old_recipe = tr.get("recipe") or (
        f"none (before `train.recipe`): {tr['optimizer']} lr {tr['lr']:g}, weight decay {tr['weight_decay']:g}, "
        f"{tr['schedule']}, {tr['augment']}, label smoothing {tr['label_smoothing']:g}, EMA {tr['ema']:g}, no TTA")
    data = _images(float(cfg["data"]["data_fraction"]), float(cfg["data"]["val_fraction"]))
    par = f"{cfg['run']['workers']} x {tr['threads']}"
    return [["epochs", int(old.found["epochs_completed"].max()), int(old.longer["epochs_completed"].max()),
             int(st["epochs"])],
            ["training images per run", data, data, _images(float(st["data_fraction"]), float(st["val_fraction"]))],
            ["recipe", old_recipe, old_recipe, f"`{st['recipe']}` (docs/training.md)"],
            ["batch size", tr["batch_size"], tr["batch_size"], "the recipe's (not in study.json)"],
            ["coefficients (alpha, beta, gamma)", _coeff(old.found), _coeff(old.longer), _coeff(new.runs)],
            ["members", _members(old.found), _members(old.longer), _members(new.runs)],
            ["seeds", _seeds(old.found), _seeds(old.longer), _seeds(new.runs)],
            ["workers x torch threads", par, par, f"{st['workers']} x {st['threads_per_worker']}"],
            ["torch", old.provenance["torch"], old.provenance["torch"], st["torch"]]]


def old_vs_new(new: New, old: Study) -> tuple[list[str], list[str]]:
    """The section, and its line for the findings."""
    olds = [("4 epochs", old.found), ("12 epochs", old.longer)]
    changes = change_rows(new.runs, olds)
    vrows, changed, both = verdict_rows(new.runs, olds)
    same = same_networks(new.runs, old.found)
    diffs = [new.runs[(new.runs["method"] == r[0]) & (new.runs["phi"] == r[1])][METRIC].mean()
             - old.found[(old.found["method"] == r[0]) & (old.found["phi"] == r[1])][METRIC].mean()
             for r in changes if r[4] != "-"]
    verdicts = (f"{changed} of the {both} decided verdicts of compound against a single dimension that both studies "
                "have at the same phi differ from the old study's" if both else
                "no decided verdict of compound against a single dimension to set beside the old study's yet")
    line = (f"- **Against the short-budget study** (docs/results/cifar10/short-budget/): at the {len(diffs)} "
            f"(method, phi) both hold, this study's mean test accuracy minus the 4-epoch one spans "
            f"{100 * min(diffs):+.1f} to {100 * max(diffs):+.1f} points; {verdicts} (section 'Old and new').") \
        if diffs else "- **Against the short-budget study**: no (method, phi) in common."
    lines = ["## Old and new, point by point", "",
             "The short-budget study (docs/results/cifar10/short-budget/: `family.csv`, its found family at 4 epochs, "
             "and `longer/family.csv`, the same trained 12 epochs) against this one. What differs, from the old "
             "study's `run_report.html` (its resolved configuration) and its tables, and from this study's "
             "`study.json` and `family.csv`:", "",
             *table(["", "short budget", "short budget, longer", "this study"], setup_rows(new, old)), "",
             "Per (method, phi) both studies hold: the mean test accuracy % [95 % CI] (n) of each and this study's "
             "minus the old one's (different runs and setups, so Welch's test, not paired by seed). "
             + (f"The same network in both (equal MACs, parameters and px): {', '.join(same)}; " if same else "")
             + "where the coefficients differ, a member of the same name is a different network (its MACs: "
             "4 epochs / 12 epochs / this study).", "",
             *table(["method", "phi", "MACs (old / longer / new)", "this study", "4 epochs", "new - 4 epochs",
                     "12 epochs", "new - 12 epochs"], changes), "",
             "Compound against each single dimension (`compare_methods`, compound minus it in points: verdict) in "
             "each study; `changed` where this study's verdict differs from an old one's (only verdicts that decide "
             "are set side by side: `too few seeds` and `not comparable` are none):", "",
             *table(["phi", "A - B", "4 epochs", "12 epochs", "this study", "changed"], vrows), ""]
    return lines, [line]


# -- the page ------------------------------------------------------------------------------------------------------


def base_text(base: pd.Series) -> str:
    """The base and its size; named as the shipped spec of the short-budget study's winner only when that spec's
    parameters and MACs at the base's input size are the base's (tests/results/test_pages.py checks the spec
    against the short-budget trials.csv)."""
    c = ss.counts(ss.NetworkSpec.load(BASE), int(base["resolution"]))
    size = f"{int(base['params']):,} parameters, {int(base['macs']):,} MACs at {int(base['resolution'])} px"
    if (c.params, c.macs) == (int(base["params"]), int(base["macs"])):
        return f"The base the short-budget study's search found ({BASE.relative_to(ROOT)}: {size})"
    return f"A base of {size} (not {BASE.relative_to(ROOT)}, whose counts differ)"


def _machine(m: object) -> str:
    return ", ".join(f"{k} {v}" for k, v in m.items()) if isinstance(m, dict) else str(m)


def _parts(study: dict[str, Any]) -> str:
    return "; ".join(f"seeds {', '.join(map(str, p['seeds']))} (finished {p['finished_utc']}, "
                     f"{float(p['wall_seconds']) / 3600:.2f} h of wall time)" for p in study["parts"])


def render(results: Path) -> dict[str, str]:
    new, old = load(results), load_old(results / OLD)
    df, st = new.runs, new.study
    base = df[(df["method"] == REFERENCE) & (df["phi"] == 0)].iloc[0]
    n = df.groupby(["method", "phi"])["seed"].nunique()
    phis = sorted(int(p) for p in df[df["method"] == REFERENCE]["phi"].unique())
    section, old_line = old_vs_new(new, old)
    coeff = coefficients(df)
    lines = [mark(SCRIPT), "", "# The CIFAR-10 scaling study, trained to its budget", "",
             f"Issue 26 item 4. {base_text(base)} scaled by EfficientNet's compound rule "
             + (f"at alpha, beta, gamma = {', '.join(f'{c:.3g}' for c in coeff)} (read off the members; "
                + ("the paper's) " if all(abs(a - b) < 1e-6 for a, b in zip(coeff, PAPER_COEFFICIENTS, strict=True))
                   else f"the paper's: {', '.join(f'{c:g}' for c in PAPER_COEFFICIENTS)}) ") if coeff else "")
             + f"at phi {', '.join(map(str, phis))}, beside depth-, width- and resolution-only networks at each "
               "member's realised MACs"
             + (f" and the rules {', '.join(f'`{r}`' for r in rules(df))} (member phi of each claims compound's "
                "MACs at phi)" if rules(df) else "")
             + f". Every network trained {plural(int(st['epochs']), 'epoch')} (the budget measured in "
               f"[budget.md](budget.md)) with the `{st['recipe']}` recipe on "
               f"{_images(float(st['data_fraction']), float(st['val_fraction']))} CIFAR-10 training images, "
               f"seeds {', '.join(map(str, new.seeds))} ({n.min()}"
             + (f"-{n.max()}" if n.max() != n.min() else "")
             + " per network"
             + ("; one seed gives no interval and no verdict" if n.min() < 2 else "")
             + "), tested on the 10,000 test images. Intervals are 95 % t-intervals over seeds; comparisons are "
               "paired by seed, with the verdicts of docs/statistics.md (a `tied within noise` says these seeds "
               "cannot tell, not that there is no difference). The study ran in "
             + f"{plural(len(st['parts']), 'part')}: {_parts(st)}"
             + (f"; {new.unfinished} row(s) of family.csv are not completed runs and are left out" if new.unfinished
                else "") + ".", ""]
    lines += findings(df, base_goal=GOALS["base (phi 0)"], top_goal=GOALS["largest member"], old=old_line)
    lines += [f"![test accuracy against MACs and training time]({FIGURE})", ""]
    lines += members(df) + dimensions(df) + rule_section(df) + section
    hours = distinct(df)["train_seconds"].sum()
    wall = sum(float(p["wall_seconds"]) for p in st["parts"])
    lines += [f"In all, {hours / 3600:.2f} h of training summed over runs in {wall / 3600:.2f} h of wall time "
              f"({plural(int(st['workers']), 'worker')}).", ""]
    lines += Provenance(
        hardware=f"{_machine(st['machine'])}; {plural(int(st['workers']), 'worker')} x "
                 f"{plural(int(st['threads_per_worker']), 'torch thread')}; the machine "
                 "was shared, so times are indicative (accuracies are not affected)",
        torch=str(st["torch"]),
        seeds=", ".join(map(str, new.seeds)) + " (initialisation, data order and validation split; every network "
                                               "of a seed sees the same images)",
        data="CIFAR-10 (cifar10-jpeg.tar.gz): per run, a permutation of the 50,000-image training pool seeded by the "
             f"run's seed; {_images(float(st['data_fraction']), float(st['val_fraction']))} training images; the "
             "10,000 test images",
        reproduce=f"`{st['command']}` (resumable with `--resume`; run once per part with more `--seeds`), then copy "
                  "its family.csv to docs/results/cifar10/ and record the part in study.json",
        regenerate=f"python {SCRIPT}").block()
    return {"cifar10/report.md": "\n".join(lines).rstrip("\n") + "\n"}


def plot(results: Path) -> Path:
    """Mean test accuracy against MACs (log scale) and, when measured, against training minutes: one line per
    method over its phis, 95 % intervals as bars (none where n = 1)."""
    import matplotlib  # lazy: plotting only from the command line
    import matplotlib.ticker  # lazy: as above

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as above

    from effnas.scaling.curves import COLORS, aggregate, cost_axes  # lazy: only the figure needs them

    df = load(results).runs
    axes = [a for a in ("macs", "train_seconds") if a in cost_axes(df, metric=METRIC)]
    agg = aggregate(df, metric=METRIC)
    fig, axs = plt.subplots(1, len(axes), figsize=(6 * len(axes), 4.5), squeeze=False)
    spare = iter(f"C{i}" for i in (5, 6, 8, 9, 1))  # colours COLORS leaves to the rules
    colors = {**COLORS, **{r: next(spare, None) for r in rules(df)}}
    for ax, cost in zip(axs[0], axes, strict=True):
        for m in [m for m in (REFERENCE, *SINGLE) if m in set(agg["method"])] + rules(df):
            g = agg[agg["method"] == m].sort_values("phi")
            x = g[cost] / (1e6 if cost == "macs" else 60)
            lo = [100 * (mu - c) if math.isfinite(c) else 0.0 for mu, c in zip(g["mean"], g["ci_low"], strict=True)]
            hi = [100 * (c - mu) if math.isfinite(c) else 0.0 for mu, c in zip(g["mean"], g["ci_high"], strict=True)]
            ax.errorbar(x, 100 * g["mean"], yerr=[lo, hi], marker="o", capsize=3, label=m, color=colors.get(m),
                        linestyle="-" if m == REFERENCE else "--")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("MACs per image, millions" if cost == "macs" else "training minutes per run (mean, one thread)")
        ax.set_ylabel("CIFAR-10 test accuracy, % (mean, 95 % CI)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("CIFAR-10 scaling study: accuracy against cost")
    out = results / "cifar10" / FIGURE
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render, figure=plot))
