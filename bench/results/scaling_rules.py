"""docs/results/scaling_rules.md from docs/results/scaling_rules/demo/ and, once it holds rules, the CIFAR-10
scaling study's docs/results/cifar10/{family.csv,study.json} (issue 25, item 5).

Several scaling rules' families trained on one base (``effnas family --rules ...``): per phi and rule the
accuracy (mean, 95 % t-interval, n) at its realised MACs, activations, measured training seconds and
latency; each rule against compound at equal MACs, activations and training time
(:func:`effnas.scaling.analysis.rules.compare_rules`, the function ``effnas compare --rules`` prints);
which cost the measured time follows on this CPU (Spearman's rho over the distinct networks, bootstrap
intervals); and Dollár et al.'s and Bello et al.'s claims point by point, each verdict from the
comparisons that test it (:func:`effnas.scaling.analysis.compare.claim_row`).

Data files (committed; the run directory's checkpoints are not):

* ``family.csv``: the ``family.csv`` the command wrote (every member, rule and seed);
* ``compare_rules.csv``: ``effnas compare DIR --rules -o`` on it (a record; the page recomputes it and checks
  that the two agree);
* ``run.json``: the command, the date, the commit and the machine (from a run's ``latency.json``).

    python bench/results/scaling_rules.py            # rewrite the page
    python bench/results/scaling_rules.py --check    # exit 1 when the committed page differs
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Provenance, compare_correlations, correlation, main, mark, pval, spearman_rows, table  # noqa: E402

from effnas.scaling.analysis.compare import CONTRADICTED, NOT_SEPARATED, claim_row  # noqa: E402
from effnas.scaling.analysis.rules import compare_rules  # noqa: E402
from effnas.search_spaces.common.progress import plural  # noqa: E402
from effnas.search_spaces.common.stats import (  # noqa: E402
    BETTER,
    NOT_COMPARABLE,
    WORSE,
    compare,
    interval,
    resample_indices,
)

SCRIPT = "bench/results/scaling_rules.py"
PAGES = ["scaling_rules.md"]
DEMO = "scaling_rules/demo"
#: The CIFAR-10 scaling study (bench/cifar10_scaling.py): its part renders once its table holds rules.
CIFAR10 = "cifar10"
#: The single-dimension baselines of a family table (not rules of their own).
SINGLE = ("depth", "width", "resolution")
METRIC = "test_accuracy"
REFERENCE = "compound"
COSTS = {"macs": "MACs", "activations": "activations", "train_seconds": "training seconds"}


def load(results: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    d = results / DEMO
    df = pd.read_csv(d / "family.csv", keep_default_na=False, na_values=[""])
    return df[df["status"] == "completed"].copy(), json.loads((d / "run.json").read_text())


def fmt(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "-"


def signed(x: float) -> str:
    return f"{100 * x:+.1f}"


def rules_of(df: pd.DataFrame) -> list[str]:
    methods = [str(m) for m in df["method"].unique()]
    return [REFERENCE] + [m for m in methods if m != REFERENCE]


def networks(df: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct network (members of several rules that are one network, e.g. every phi 0,
    count once): its costs and its measured time (mean over its runs)."""
    keys = ["params", "macs", "activations", "resolution", "blocks"]
    runs = df.drop_duplicates(subset=keys + ["seed"])
    return runs.groupby(keys, as_index=False).agg(train_seconds=("train_seconds", "mean"),
                                                   latency_ms_b1=("latency_ms_b1", "first"),
                                                   latency_ms_bN=("latency_ms_bN", "first"),
                                                   runs=("seed", "count"))


# -- sections -------------------------------------------------------------------------------------------------------


def members_section(df: pd.DataFrame) -> list[str]:
    rows = []
    for rule in rules_of(df):
        for phi, g in df[df["method"] == rule].groupby("phi", sort=True):
            r = g.iloc[0]
            acc = interval(g[METRIC])
            shared = str(r["same_network_as"]) if pd.notna(r.get("same_network_as")) else ""
            rows.append([rule, int(phi), fmt(r["depth"], 2), fmt(r["width"], 2), int(r["resolution"]), int(r["blocks"]),
                         f"{r['params']:,}", f"{r['macs'] / 1e6:.2f} ({r['macs_ratio']:.2f}x)",
                         f"{r['activations'] / 1e3:.1f}", acc.text(), fmt(float(g["train_seconds"].mean())),
                         fmt(float(g["train_img_per_s"].mean()), 0), fmt(float(r["latency_ms_b1"]), 2),
                         fmt(float(r["latency_ms_bN"]), 1), shared or "-"])
    batch = int(df["latency_batch"].iloc[0])
    return ["## Members: accuracy at their realised costs", "",
            f"Test accuracy in % (mean [95 % t-interval over seeds] (n)); MACs in millions with the ratio to the base; "
            f"activations in thousands (elements of every conv and linear output); training seconds and images per "
            f"second: the mean over the member's runs (the trainer's own count, evaluation excluded); latency: "
            f"median of 20 timed calls at batch 1 and batch {batch}, torch, one thread (docs/scaling.md, 'Measured "
            f"time per member'). A member that is the same network as another rule's was trained once per seed "
            f"(`same network as`).", "",
            *table(["rule", "phi", "d", "w", "px", "blocks", "params", "MACs M (ratio)", "activations K",
                    "test accuracy %", "train s", "train img/s", "ms b1", f"ms b{batch}", "same network as"], rows),
            ""]


def verdict_section(cmp: pd.DataFrame, rules: list[str]) -> list[str]:
    rows = []
    for r in cmp.itertuples(index=False):
        ci = f"[{signed(r.ci_low)}, {signed(r.ci_high)}]" if pd.notna(r.ci_low) else "-"
        rows.append([COSTS[r.cost], r.phi, f"{r.a} - {r.b}", f"{signed(r.diff)} {ci}",
                     pval(r.p) if pd.notna(r.p) else "-", f"{r.n_a}/{r.n_b}", f"{r.cost_b:.4g} vs {r.cost_a:.4g} "
                     f"({100 * r.cost_gap:+.1f} %)", r.verdict])
    summary = []
    for rule in rules[1:]:
        row: list[object] = [rule]
        for cost in COSTS:
            v = list(cmp[(cmp["b"] == rule) & (cmp["cost"] == cost)]["verdict"])
            row.append(claim_row("", "", v)["comparisons"] if v else "-")
        summary.append(row)
    return ["## Each rule against compound at equal MACs, activations and training time", "",
            "`compound - rule` in accuracy points, paired by seed (95 % interval, p-value, verdict: "
            "docs/statistics.md); at each cost the rule's realised cost against compound's, and `not comparable` "
            "where they differ by more than the family's 10 % tolerance "
            "(`effnas.scaling.analysis.rules.compare_rules`, what `effnas compare DIR --rules` prints; "
            "`better` = compound better).", "",
            *table(["at equal", "phi", "compound - rule", "difference [95 %] pts", "p", "n",
                    "rule's cost vs compound's", "verdict"], rows), "",
            "Verdicts per rule and cost (`better` = compound better):", "",
            *table(["rule", *(f"at equal {c}" for c in COSTS.values())], summary), ""]


def correlations(nets: pd.DataFrame) -> dict[str, dict[str, Any]]:
    idx = resample_indices(len(nets), seed=0)
    out: dict[str, dict[str, Any]] = {}
    for t in ("train_seconds", "latency_ms_b1", "latency_ms_bN"):
        y = nets[t].to_numpy(float)
        out[t] = {c: correlation(spearman_rows, nets[c].to_numpy(float), y, idx) for c in ("macs", "activations",
                                                                                           "params")}
    return out


def time_section(nets: pd.DataFrame, corr: dict[str, dict[str, Any]], batch: int) -> list[str]:
    rows = []
    names = {"train_seconds": "training seconds", "latency_ms_b1": "latency, batch 1",
             "latency_ms_bN": f"latency, batch {batch}"}
    for t, cs in corr.items():
        c = compare_correlations(cs["activations"], cs["macs"])
        rows.append([names[t], *(cs[k][0].text(scale=1.0, digits=2) for k in ("macs", "activations", "params")),
                     f"{c.diff:+.2f} [{c.low:+.2f}, {c.high:+.2f}], {pval(c.p)}: {c.verdict}"])
    idx = resample_indices(len(nets), seed=0)
    same = correlation(spearman_rows, nets["macs"].to_numpy(float), nets["activations"].to_numpy(float), idx)[0]
    return ["## What the measured time follows on this CPU", "",
            f"Spearman's rho between each measured time and each count over the {len(nets)} distinct networks "
            f"(bootstrap 95 % intervals over networks; the last column: rho with activations minus rho with MACs on "
            f"the same resamples, `better` = activations track the time more closely):", "",
            *table(["time", "rho with MACs", "rho with activations", "rho with params",
                    "activations - MACs"], rows), "",
            f"Over these networks MACs and activations themselves rank with rho {same.text(scale=1.0, digits=2)}"
            + (": nearly alike, so which of the two the time follows can hardly be told apart on these networks."
               if same.low > 0.8 else "."), ""]


def growth(df: pd.DataFrame, rule: str) -> float:
    """The exponent k of activations ~ MACs^k over a rule's members (least squares on logs, exact counts)."""
    g = df[df["method"] == rule].drop_duplicates("phi")
    return float(np.polyfit(np.log(g["macs"].to_numpy(float)), np.log(g["activations"].to_numpy(float)), 1)[0])


def seconds_verdicts(df: pd.DataFrame, cmp: pd.DataFrame, a: str, b: str) -> tuple[list[str], list[str]]:
    """``a``'s training seconds minus ``b``'s at each phi >= 1, paired by seed (``better`` = ``a`` slower);
    ``not comparable`` where the two members' MACs are (``cmp``'s verdict at equal MACs): a member that
    spends fewer MACs is faster for that reason alone."""
    verdicts, texts = [], []
    for phi in sorted(int(p) for p in df["phi"].unique() if p > 0):
        ga, gb = df[(df["method"] == a) & (df["phi"] == phi)], df[(df["method"] == b) & (df["phi"] == phi)]
        at = cmp[(cmp["cost"] == "macs") & (cmp["phi"] == phi) & (cmp["b"] == b)]
        if ga.empty or gb.empty or at.empty:
            continue
        c = compare(list(ga["train_seconds"]), list(gb["train_seconds"]), seeds_a=list(ga["seed"]),
                    seeds_b=list(gb["seed"]))
        lat = float(gb["latency_ms_b1"].iloc[0]) / float(ga["latency_ms_b1"].iloc[0])
        gap = float(at["cost_gap"].iloc[0])
        v = NOT_COMPARABLE if at["verdict"].iloc[0] == NOT_COMPARABLE else c.verdict
        verdicts.append(v)
        texts.append(f"phi {phi}: {b} {c.mean_b:.1f} vs {a} {c.mean_a:.1f} s ({a} - {b} {c.diff:+.1f} [{c.low:+.1f}, "
                     f"{c.high:+.1f}] s: {v}{f', MACs {100 * gap:+.1f} %' if v == NOT_COMPARABLE else ''}); "
                     f"latency b1 {lat:.2f}x of {a}'s")
    return verdicts, texts


def accuracy_texts(cmp: pd.DataFrame) -> list[str]:
    return [f"phi {r.phi}: {signed(r.diff)} [{signed(r.ci_low)}, {signed(r.ci_high)}] pts ({r.verdict})"
            for r in cmp.itertuples(index=False)]


def claims_section(df: pd.DataFrame, cmp: pd.DataFrame, corr: dict[str, dict[str, Any]],
                   run: dict[str, Any]) -> list[str]:
    rules = set(df["method"])
    fast, rs = "fast:0.8", "resnet-rs"
    width = "width-only" if "width-only" in rules else "width"  # the rule, or the study's width-only baseline
    rows: list[list[str]] = []
    notes: list[str] = []
    if fast in rules:
        k = {r: growth(df, r) for r in rules_of(df)}
        ks = ", ".join(f"{r} {v:.2f}" for r, v in k.items())
        # exact counts, no noise: the claim is a comparison of exponents, not a test
        holds = k[fast] < k[REFERENCE]
        rows.append(["Dollár et al.", "fast dWr scaling (alpha 0.8) grows activations about as O(sqrt(s)), "
                     "width-light rules as O(s)",
                     f"activations ~ MACs^k over phi 0..{int(df['phi'].max())}: {ks} (exact counts)",
                     ("holds in direction: fast's exponent is below compound's" if holds else
                      "contradicted: fast's exponent is not below compound's")
                     + f" (sqrt would be 0.50; these members span {df['macs_ratio'].max():.1f}x of MACs)"])
        acc = cmp[(cmp["b"] == fast) & (cmp["cost"] == "macs")]
        comparable = acc[acc["verdict"] != NOT_COMPARABLE]
        widest = float((comparable["ci_high"] - comparable["ci_low"]).max() / 2) if not comparable.empty else math.nan
        # oriented better = fast better; "similar" is what the paper says, so a tie is consistent with it, not proof
        word = claim_row("", "", [{BETTER: WORSE, WORSE: BETTER}.get(x, x) for x in acc["verdict"]])["verdict"]
        said = {NOT_SEPARATED: f"consistent with 'similar': {word}, but the intervals (up to +-{100 * widest:.1f} pts) "
                               "cannot exclude differences of that size",
                CONTRADICTED: f"{word}: compound more accurate"}.get(word, f"{word}: fast:0.8 more accurate")
        rows.append(["Dollár et al.", "at equal FLOPs, dWr reaches accuracy similar to the best rules "
                     "(here: compound)", "; ".join(accuracy_texts(acc)) + " (compound - fast:0.8)", said])
        sv, st = seconds_verdicts(df, cmp, REFERENCE, fast)
        rows.append(["Dollár et al.", "dWr runs faster than rules that grow activations faster (GPU runtime)",
                     "training seconds compound vs fast:0.8, paired by seed: " + "; ".join(st)
                     + " (latency: one median per network, no interval; the verdict is on training seconds)",
                     claim_row("", "", sv)["verdict"]])
    ts = corr["train_seconds"]
    c = compare_correlations(ts["activations"], ts["macs"])
    rows.append(["Dollár et al.", "runtime tracks activations more closely than FLOPs (GPUs)",
                 f"training seconds: rho with activations {ts['activations'][0].text(scale=1.0, digits=2)}"
                 f", with MACs {ts['macs'][0].text(scale=1.0, digits=2)}; difference "
                 f"{c.diff:+.2f} [{c.low:+.2f}, {c.high:+.2f}]",
                 claim_row("", "", [c.verdict])["verdict"]])
    if rs in rules and width in rules:
        wr = compare_rules(df, metric=METRIC, reference=width)
        wr = wr[(wr["b"] == rs) & (wr["cost"] == "macs")]
        final = (df["val_accuracy"] >= df["best_val_accuracy"]).mean()
        rows.append(["Bello et al.", "in a short regime (no overfitting) scale width rather than depth",
                     "; ".join(accuracy_texts(wr)) + " (width-only - resnet-rs, equal MACs)",
                     claim_row("", "", list(wr["verdict"]))["verdict"]])
        notes.append(f"The regime: {plural(int(df['epochs_completed'].max()), 'epoch')}; in {100 * final:.0f} % of "
                     "the runs the last epoch's validation accuracy is the best one, i.e. the runs were still "
                     "improving, not overfitting: the regime Bello et al. call short, where they scale width.")
    if rs in rules:
        acc = cmp[(cmp["b"] == rs) & (cmp["cost"] == "macs")]
        v = [{BETTER: WORSE, WORSE: BETTER}.get(x, x) for x in acc["verdict"]]  # better = resnet-rs better
        rows.append(["Bello et al.", "resolution should grow more slowly than EfficientNet's "
                     "(resnet-rs here: resolution s^(1/6), depth s^(2/3))",
                     "; ".join(accuracy_texts(acc)) + " (compound - resnet-rs, equal MACs)",
                     claim_row("", "", v)["verdict"] + " (confounded: resnet-rs also moves depth, not width)"])
    return ["## Against Dollár et al. and Bello et al.", "",
            "Each claim (docs/scaling.md; Dollár, Singh, Girshick, CVPR 2021; Bello et al., NeurIPS 2021) and what "
            "this run shows. The verdict word is `effnas.scaling.analysis.compare.claim_verdict` over the comparisons "
            "that test the claim, each oriented so that `better` is what the paper says.", "",
            *table(["paper", "claim", "this run", "verdict"], rows), "", *notes, "",
            "**This CPU is not a GPU.** Dollár et al. measure GPU runtime, where memory traffic (activations) bounds "
            "small-batch convolutions; here training and inference run eagerly on one CPU thread, where depthwise "
            "convolutions and per-layer overhead can matter more than memory traffic for networks this small "
            f"({int(df['resolution'].min())}-"
            f"{int(df['resolution'].max())} px inputs, {df['params'].min() / 1e6:.2f}-{df['params'].max() / 1e6:.2f} M "
            "parameters). The time rows above say what this CPU did; they are not evidence about GPUs either way. "
            "Training seconds were measured while other processes shared the machine's two cores (one thread per "
            f"run), so they carry that noise as well{run.get('time_note', '')}.", ""]


def analysis(df: pd.DataFrame, run: dict[str, Any]) -> list[str]:
    """The sections of one part: members, verdicts, what time follows, the papers' claims."""
    cmp = compare_rules(df, metric=METRIC, reference=REFERENCE)
    nets = networks(df)
    return (members_section(df) + verdict_section(cmp, [r for r in rules_of(df) if r not in SINGLE])
            + time_section(nets, correlations(nets), int(df["latency_batch"].iloc[0]))
            + claims_section(df, cmp, correlations(nets), run))


def demoted(lines: list[str]) -> list[str]:
    """One heading level down: a part's sections under the part's own ``##`` heading."""
    return [f"#{x}" if x.startswith("## ") else x for x in lines]


def load_cifar10(results: Path) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The CIFAR-10 scaling study's table when it holds rules beside compound and the single dimensions
    (``bench/cifar10_scaling.py --rules ...``), with its study.json; else None."""
    d = results / CIFAR10
    if not (d / "family.csv").is_file() or not (d / "study.json").is_file():
        return None
    df = pd.read_csv(d / "family.csv", keep_default_na=False, na_values=[""])
    df = df[df["status"] == "completed"].copy()
    if not set(df["method"]) - {REFERENCE, *SINGLE}:
        return None
    return df, json.loads((d / "study.json").read_text())


def cifar10_part(df: pd.DataFrame, study: dict[str, Any]) -> list[str]:
    seeds = sorted(int(s) for s in df["seed"].unique())
    phis = sorted(int(p) for p in df["phi"].unique())
    n_runs = int(df.drop_duplicates(subset=["run_dir"]).shape[0])
    others = [r for r in rules_of(df)[1:] if r not in SINGLE]
    base = str(df[(df["method"] == REFERENCE) & (df["phi"] == 0)]["name"].iloc[0]).removesuffix("-phi0")
    run = {"time_note": f"; the runs went {study['workers']} at a time ({study['workers']} one-thread workers), so a "
                        "run's seconds also depend on what ran beside it"}
    lines = ["## CIFAR-10", "",
             f"The CIFAR-10 scaling study's table (docs/results/cifar10/family.csv, page "
             f"[cifar10/report.md](cifar10/report.md)): the rules {', '.join(f'`{r}`' for r in others)} beside "
             f"compound (alpha, beta, gamma = {', '.join(f'{c:g}' for c in study['coefficients'])}) and the "
             f"depth-, width- and resolution-only baselines, on the searched base `{base}`, "
             f"phi {phis[0]}..{phis[-1]}, {plural(int(study['epochs']), 'epoch')} of the `{study['recipe']}` recipe on "
             "the whole "
             f"CIFAR-10 training pool ({100 * float(study['val_fraction']):g} % held out), seeds "
             f"{', '.join(map(str, seeds))}, {n_runs} training runs, test accuracy on the 10,000 test images."
             + (" One seed gives no interval and no verdict: the verdicts below say `too few seeds` until the "
                "study's next parts add seeds." if len(seeds) < 2 else ""), ""]
    return lines + demoted(analysis(df, run))


def render(results: Path) -> dict[str, str]:
    df, run = load(results)
    cmp = compare_rules(df, metric=METRIC, reference=REFERENCE)
    recorded = pd.read_csv(results / DEMO / "compare_rules.csv")
    cols = ["cost", "phi", "a", "b", "verdict"]
    assert recorded[cols].astype(str).equals(cmp[cols].astype(str)), \
        "compare_rules.csv is not what compare_rules gives on family.csv: rerun effnas compare --rules -o"
    rules = rules_of(df)
    seeds = sorted(int(s) for s in df["seed"].unique())
    phis = sorted(int(p) for p in df["phi"].unique())
    n_runs = int(df.drop_duplicates(subset=["run_dir"]).shape[0])
    cifar = load_cifar10(results)
    lines = [mark(SCRIPT), "", "# Scaling rules compared on one base", "",
             "Issue 25, item 5: which rule wins under which measure of cost on this CPU, and Dollár et al.'s and "
             "Bello et al.'s claims point by point, on the demo and "
             + ("on CIFAR-10 (below)." if cifar else "(not yet) on CIFAR-10: that part renders here once "
                "docs/results/cifar10/family.csv holds rules beside compound (docs/cifar10_study.md)."), "",
             "## The demo", "",
             f"The rules {', '.join(f'`{r}`' for r in rules)} scaling "
             f"`{run['base']}` on the generated `shapes` set (the demo preset's base, data and family epochs), "
             f"phi {phis[0]}..{phis[-1]}, seeds {', '.join(map(str, seeds))}, {n_runs} training runs (members that "
             f"are the same network share a run). Member phi of every rule claims the MACs of compound's member phi "
             f"(coefficients {run['coefficients']}). More seeds{' and phi 3' if phis[-1] < 3 else ''} and longer "
             "schedules extend it (`--resume` on the command below, with more seeds or phis; the run directory's "
             "checkpoints are not committed, so a fresh clone retrains).", ""]
    lines += demoted(analysis(df, run))
    if cifar is not None:
        lines += cifar10_part(*cifar)
    m = run["machine"]
    lines += Provenance(
        hardware=f"{m['processor']}, {m['cpu_count']} cores, {m['platform']}; one torch thread per run "
                 f"(`train.threads=1`, `--workers 1`), one thread for latency; other sessions shared the machine"
                 + (f". CIFAR-10: {cifar[1]['machine']}, {cifar[1]['workers']} workers x "
                    f"{cifar[1]['threads_per_worker']} thread" if cifar else ""),
        torch=f"{m['torch']} (Python {m['python']})" + (f"; CIFAR-10: {cifar[1]['torch']}" if cifar else ""),
        seeds=", ".join(map(str, seeds)) + " (initialisation, data order, validation split); paired by seed",
        data="demo: `shapes` (generated; the demo preset: 80 % of the training pool, 10 % validation, test accuracy "
             "on the fixed test set)" + ("; CIFAR-10: cifar10-jpeg.tar.gz (../shared/data)" if cifar else ""),
        reproduce=f"demo: `{run['command']}` then `{run['compare']}` (commit {run['commit']}, {run['date']})"
                  + (f"; CIFAR-10: `{cifar[1]['command']}` per seed (bench/cifar10_scaling.py)" if cifar else ""),
        regenerate=f"python {SCRIPT}").block()
    return {"scaling_rules.md": "\n".join(lines).rstrip("\n") + "\n"}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
