"""Write the CIFAR-10 study's page (report.md) and tables (tables.md) from the committed files alone.

    python bench/results/cifar10_page.py [--dir docs/results/cifar10/short-budget] [--check]

Reads only the files in ``--dir`` (the CSV/JSON files and run_report.html that
``bench/cifar10_report.py`` collected from a study run; no run directory needed) and writes
``report.md`` and ``tables.md`` there. Every number on the page is computed from those files, every
verdict comes from ``effnas.scaling.analysis.compare`` and every interval from
``effnas.search_spaces.common.stats.interval`` (docs/statistics.md). ``--check`` writes nothing and
exits 1 when the committed pages differ from what the files give (tests/bench/test_cifar10_page.py
runs it, so the page cannot drift from its data).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cifar10_sections as sec  # noqa: E402
from cifar10_data import ROOT, Study, found_base, load, subset_sizes  # noqa: E402

from effnas.scaling.analysis.compare import paper_table  # noqa: E402
from effnas.scaling.compound import PAPER_COEFFICIENTS  # noqa: E402
from effnas.scaling.curves import aggregate, matched_comparison  # noqa: E402
from effnas.search_spaces.common.errors import UserError, first_line  # noqa: E402
from effnas.search_spaces.common.stats import ALPHA, BETTER, POWER, TIED  # noqa: E402

FOLDER = ROOT / "docs" / "results" / "cifar10" / "short-budget"
SCRIPT = "bench/results/cifar10_page.py"
METRIC = sec.METRIC


def claims(s: Study) -> pd.DataFrame:
    """The "against the paper" table: ``paper_table`` of the family (with B0 as the second family),
    of the longer family and of each backbone, and the Fig. 4 row (:func:`cifar10_sections.fig4_claim`)."""
    e4, el = int(s.found["epochs_completed"].max()), int(s.longer["epochs_completed"].max())
    seeds = f"{s.found['seed'].nunique()} seeds"
    first = paper_table(s.found, other=s.b0, labels=("found", "B0")).assign(data=f"{e4} epochs, {seeds}")
    first.loc[first["claim"].str.startswith("the found family"), "data"] = (
        f"{e4} epochs, found {seeds}, B0 {s.b0['seed'].nunique()} seed{'s' if s.b0['seed'].nunique() > 1 else ''}")
    parts = [first,
             paper_table(s.longer).assign(data=f"{el} epochs, {s.longer['seed'].nunique()} seeds")]
    for name, g in s.backbones.groupby("backbone", sort=False):
        t = paper_table(g).assign(data=f"{name}, {int(g['epochs_completed'].max())} epochs, "
                                       f"{g['seed'].nunique()} seeds")
        parts.append(t.assign(claim=f"{name}: " + t["claim"], paper="Table 3: compound scaling helps MobileNets and "
                                                                    "ResNet more than any one dimension"))
    row, _ = sec.fig4_claim(s)
    n = int(s.fig4.groupby(["depth", "resolution_mult", "width"]).size().max())
    parts.append(pd.DataFrame([{**row, "data": f"{sec.runs(n)} per network"}]))
    t = pd.concat(parts, ignore_index=True)
    return t[["claim", "paper", "data", "comparisons", "verdict"]]


def comparisons(s: Study) -> pd.DataFrame:
    """Every comparison behind the page's verdicts, one table (``set`` says which results)."""
    e4, el = int(s.found["epochs_completed"].max()), int(s.longer["epochs_completed"].max())
    label = {"found": f"{e4} epochs", "longer": f"{el} epochs"}
    parts = [t.assign(set=label[k]) for k in label for t in (s.methods[k], s.sizes[k])]
    parts += [t.assign(set=k) for k, t in s.methods.items() if k not in label]
    t = pd.concat(parts, ignore_index=True)
    return t[["set", *[c for c in t.columns if c != "set"]]]


def summary(s: Study, table: pd.DataFrame, comps: pd.DataFrame) -> list[str]:
    spec, best = found_base(s)
    c = sec.pick_best(s.grid)
    n = subset_sizes(s.config)
    comp = [s.found[s.found["method"] == "compound"], s.longer[s.longer["method"] == "compound"]]
    means = [m for d in comp for m in d.groupby("phi")[METRIC].mean()]
    e4, el = int(s.found["epochs_completed"].max()), int(s.longer["epochs_completed"].max())
    counts = table["verdict"].value_counts()
    better = comps[comps["verdict"] == BETTER]
    seeds = int(s.found.groupby(["method", "phi"])["seed"].nunique().min())
    return ["**In short.**", "",
            f"- Short-budget results: each network saw {n['train']:,} training images for {e4} epochs ({el} in the "
            f"longer family); the searched family reaches {sec.span(means, sec.pct, '-')} % test accuracy. They "
            "say what the method does on this budget, not what it does at the paper's training length.",
            f"- The search found a {sec.mmacs(best['macs'])}-MAC, {int(best['params']):,}-parameter base; the grid "
            f"chose (alpha, beta, gamma) = ({c.alpha:g}, {c.beta:g}, {c.gamma:g}) (the paper: "
            f"{', '.join(f'{x:g}' for x in PAPER_COEFFICIENTS)}).",
            f"- Against the paper ({len(table)} claim rows, table at the end): "
            + ", ".join(f"{v}: {k}" for v, k in counts.items()) + ".",
            f"- {seeds} seeds per network give a paired t-test {seeds - 1} degree{'s' if seeds > 2 else ''} of "
            f"freedom: {len(better)} of {len(comps)} comparisons on this page reach p < {ALPHA:.2g} ("
            + "; ".join(f"{r.set}, {r.a} - {r.b} at phi {r.phi}: {sec.pts(r.diff)} points" for r in better.itertuples())
            + f"); the comparisons tied within noise include differences up to "
            f"{sec.pts(comps[comps['verdict'] == TIED]['diff'].abs().max())} points.", ""]


def what_ran(s: Study) -> list[str]:
    p, cfg = s.provenance, s.config
    n = subset_sizes(s.config)
    tr, se, fa = cfg["train"], cfg["search"], cfg["family"]
    drop = s.found[s.found["method"] == "compound"].groupby("phi")["dropout"].first()
    st = s.stage_seconds
    total = sum(st.values())
    shown = {k: p[f"wall time {k}"] for k in st}  # as the run report wrote them
    rows = [
        ("command", "`bash bench/cifar10_study.sh` (below): `effnas run` of the `cifar10-cpu` preset "
                    "(experiments/config/presets/cifar10-cpu.toml), then the B0 family, the longer family and Fig. 4"),
        ("machine", f"{p['platform']}, {p['cpu_count']} CPUs ({p['cpus_usable']} usable), device {p['device']}, "
                    f"{p['gpus']} GPUs; {p['torch_threads']} torch thread per training process (`train.threads`)"),
        ("versions", f"python {p['python']}, torch {p['torch']}, effnas {p['effnas']} at commit {p['git'][:7]}, "
                     f"optuna {p['optuna']}, numpy {p['numpy']}, pandas {p['pandas']}, scipy {p['scipy']}"),
        ("seeds", f"search and grid: run.seed {cfg['run']['seed']}; family and baselines: {fa['seeds']}; longer "
                  f"family: {sorted(set(s.longer['seed']))}; backbones: {sorted(set(s.backbones['seed']))}; B0 family: "
                  f"{sorted(set(s.b0['seed']))}; Fig. 4: one run per network, "
                  + (f"seed {sorted(set(s.fig4['seed']))}" if "seed" in s.fig4 else "seed not recorded in fig4.csv")),
        ("data", f"`{cfg['data']['dataset']}` (CIFAR-10 as JPEG files) at native {cfg['data']['resolution']} px. Per "
                 f"run, from the {n['pool']:,}-image training pool, a permutation seeded by the run's seed gives "
                 f"{n['val']:,} validation images (`data.val_fraction` {cfg['data']['val_fraction']:g}; model "
                 f"selection) and the next {n['train']:,} of the remaining {n['rest']:,} for training "
                 f"(`data.data_fraction` {cfg['data']['data_fraction']:g}); every network of a seed sees the same "
                 f"subset, the two seeds different ones. The {n['test']:,} test images are reported, never selected "
                 f"on (`effnas.experiments.data.datasets.split`)"),
        ("recipe", f"{tr['optimizer']} lr {tr['lr']:g}, weight decay {tr['weight_decay']:g}, {tr['schedule']} "
                   f"schedule, {tr['warmup_epochs']:g} warm-up epochs, batch {tr['batch_size']}, augment "
                   f"`{tr['augment']}`, {tr['epochs']} epochs; dropout "
                   f"{', '.join(f'{v:.3g}' for v in drop)} at phi {', '.join(map(str, drop.index))} (`family.csv`)"),
        ("search", f"`{se['space']}` space, {se['strategy']}, {se['trials']} trials, T = {sec.mmacs(se['target'])} "
                   f"MACs, w = {se['w']}, proxy {se['train']['epochs']} epochs on {n['proxy']:,} images "
                   f"(`search.train.data_fraction` {se['train']['data_fraction']:g})"),
        ("grid", f"step {cfg['grid']['step']:g}, alpha beta^2 gamma^2 within {cfg['grid']['target']:g} +- "
                 f"{cfg['grid']['tolerance']:g}, realised MACs within {sec.pct(cfg['grid']['cost_tolerance'], 0)} % "
                 f"of nominal, {cfg['grid']['epochs']} epochs"),
        ("family", f"phi {', '.join(map(str, fa['phis']))}; depth-, width- and resolution-only baselines at every "
                   f"member's realised MACs (within {sec.pct(fa['cost_tolerance'], 0)} %)"),
        ("backbones", f"{', '.join(sorted(set(s.backbones['backbone'])))} at phi {cfg['backbones']['phi']}"),
    ]
    return ["## What ran", "", pd.DataFrame(rows, columns=["", "(from run_report.html and the CSVs)"]).to_markdown(
        index=False), "",
            f"Wall time of the main run (`effnas run`, as its report recorded it on {p['written (UTC)'][:10]}): "
            f"{int(total // 60)} min {int(total % 60):02d} s "
            f"({', '.join(f'{k} {shown[k]} ({sec.pct(v / total, 0)} %)' for k, v in st.items())}). "
            "Training time of the rest, "
            f"summed over runs (their wall times are not in these files): B0 family "
            f"{s.b0['train_seconds'].sum() / 60:.1f} min, longer family {s.longer['train_seconds'].sum() / 60:.1f} "
            f"min, Fig. 4 {s.fig4['train_seconds'].sum() / 60:.1f} min. The machine was shared with other work "
            "during the study, so a quiet machine may be faster.", ""]


def against(table: pd.DataFrame) -> list[str]:
    return ["## Against the paper, claim by claim", "",
            "`effnas.scaling.analysis.compare.paper_table` for each family and backbone, and Fig. 4 by the same rule "
            f"(`claim_row`): a claim holds when every comparison behind it is `better` at p < {ALPHA:.2g} "
            "(docs/statistics.md states the rule; `undecided` means no comparison had two seeds a side at equal "
            "MACs).", "",
            table.to_markdown(index=False), ""]


def limits(s: Study, table: pd.DataFrame, comps: pd.DataFrame) -> list[str]:
    tied = comps[(comps["verdict"] == TIED) & comps["seeds_needed"].notna()]["seeds_needed"]
    e4, el = (f"{int(d['epochs_completed'].max())} epochs" for d in (s.found, s.longer))
    v4 = table[table["data"].str.startswith(e4)].set_index("claim")["verdict"]
    vl = table[table["data"].str.startswith(el)].set_index("claim")["verdict"]
    shared = v4.index.intersection(vl.index)
    moved = int((v4[shared] != vl[shared]).sum())
    return ["## What would change these conclusions", "",
            "Nothing here was tuned toward a conclusion; the recipe is the demo's short-run recipe "
            f"(docs/results/demo_calibration.md). What would change them: more epochs (at {el} instead of {e4}, "
            f"{moved} of {len(shared)} claim verdicts change), more seeds (the tied comparisons would need "
            f"{sec.span(tied, lambda x: str(int(x)), '-')} seeds per side for {sec.pct(POWER, 0)} % power if their "
            f"observed differences were real), images with detail beyond {s.config['data']['resolution']} px "
            "(resolution scaling here is upsampling), and a search with a measured proxy. No correction for multiple "
            "comparisons is applied (docs/statistics.md).", ""]


def files_and_commands(s: Study) -> list[str]:
    hours = (sum(s.stage_seconds.values()) + sum(d["train_seconds"].sum() for d in (s.b0, s.longer, s.fig4))) / 3600
    return ["## Files and how to reproduce", "",
            "`trials.csv` (search), `grid.csv`, `family.csv` (found family and baselines; the B0 family with "
            "`family = b0`), `backbones.csv`, `efficiency.csv`, `fits.json` / `curves.csv` / `bands.csv` (power-law "
            "fits and their 90 % bands), `longer/` (the longer family), `fig4.csv`, the figures, `run_report.html` "
            "(the pipeline's own report: provenance, configuration, trials, the base's architecture) and `tables.md` "
            "(every table, and every comparison behind the verdicts). No checkpoints.", "",
            "```",
            f"# the study (resumable: run it again after a kill); it took about {hours:.1f} h here (the wall and "
            "training times above)",
            "EFFNAS_CIFAR10_JPEG=/path/to/cifar10-jpeg.tar.gz bash bench/cifar10_study.sh runs/cifar10-cpu",
            "# collect the run into docs/results/cifar10/short-budget and write this page",
            ".venv/bin/python bench/cifar10_report.py runs/cifar10-cpu",
            "# regenerate report.md and tables.md from the committed files alone (--check: compare only)",
            f".venv/bin/python {SCRIPT}",
            "```", ""]


def _epochs(df: pd.DataFrame) -> str:
    e = sorted({int(x) for x in df["epochs_completed"].dropna()}) if "epochs_completed" in df.columns else []
    return "/".join(map(str, e)) or "an unrecorded number of"


def _share(s: Study) -> str:
    frac = s.config.get("data", {}).get("data_fraction")
    return f"{100 * float(frac):g} %" if frac is not None else "a share"


def _span(s: Study) -> str:
    acc = pd.concat([s.found["test_accuracy"], s.longer["test_accuracy"]]).dropna()
    return f"{100 * acc.min():.1f}-{100 * acc.max():.1f}"


def report(s: Study, table: pd.DataFrame, comps: pd.DataFrame) -> str:
    date = s.provenance["written (UTC)"][:10]
    lines = [f"# The EfficientNet method on real CIFAR-10, on one CPU core ({date})", "",
             f"<!-- Generated by {SCRIPT} from the files in this folder: do not edit by hand. -->", "",
             "*Generated from the data files beside it by "
             f"`{SCRIPT}`; every number is computed from them, every verdict by "
             "`effnas.scaling.analysis.compare` (docs/statistics.md).*", "",
             f"**This is the short-budget study.** Its found family trained {_epochs(s.found)} epochs "
             f"({_epochs(s.longer)} in the longer family) on {_share(s)} of the training pool with the default recipe "
             f"and reached {_span(s)} % test accuracy: it measured its training budget as much as the method. "
             "The study trained enough ([../report.md](../report.md)) scales the same found base on the whole pool "
             "with the fast recipe (docs/training.md) for an epoch budget chosen by measurement "
             "([../budget.md](../budget.md)), 3 seeds. The search and the grid below stay this study's.", "",
             "effnas ran its whole method on the real CIFAR-10: an MBConv search for a base network, a grid search "
             "of the compound coefficients, the scaled family with depth-, width- and resolution-only baselines at "
             "each member's realised MACs, EfficientNet-B0 scaled by the paper's coefficients on the same data, the "
             "same family trained longer, the paper's Fig. 4 and two more backbones scaled by the found coefficients. "
             "This page sets each result against the paper's claims, including where the data cannot decide.", "",
             *summary(s, table, comps), *what_ran(s), *sec.search(s), *sec.grid(s), *sec.family(s), *sec.longer(s),
             *sec.fig4(s), *sec.b0(s), *sec.backbones(s), *sec.efficiency(s), *against(table), *limits(s, table, comps),
             *files_and_commands(s)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md(df: pd.DataFrame, cols: list[str] | None = None) -> str:
    return (df[[c for c in cols if c in df.columns]] if cols else df).to_markdown(index=False, floatfmt=".4f")


def tables(s: Study, table: pd.DataFrame, every: pd.DataFrame) -> str:
    """tables.md: every table of the study, and every comparison behind the page's verdicts."""
    agg_cols = ["method", "phi", "macs", "params", "mean", "std", "n"]
    bb = s.backbones.groupby(["backbone", "method"], sort=False).agg(
        macs=("macs", "first"), params=("params", "first"), mean=(METRIC, "mean"), std=(METRIC, "std"),
        n=(METRIC, "size")).reset_index()
    lines = [f"# Tables of the CIFAR-10 study (generated by {SCRIPT} from the files beside it)", "",
             "## Stage wall times of the main run (s, from run_report.html)", "", json.dumps(s.stage_seconds), "",
             f"B0 family: {s.b0['train_seconds'].sum():.0f} s of training (sum of its runs)", "",
             "## Search trials (best 10 by reward)", "",
             _md(s.trials.sort_values("reward", ascending=False).head(10),
                 ["number", "status", "accuracy", "macs", "params", "reward"]), "",
             f"## Grid at phi = {s.config['grid']['phi']:g}", "",
             _md(s.grid.sort_values("val_accuracy", ascending=False),
                 ["alpha", "beta", "gamma", "product", "resolution", "macs_ratio", "within_tolerance", "status",
                  "val_accuracy", "test_accuracy", "train_seconds"]), "",
             "## Found family and single-dimension baselines (mean and std over seeds)", "",
             _md(aggregate(s.found, metric=METRIC), agg_cols), "",
             "## Matched comparison (each baseline at its compound member's MACs)", "",
             _md(matched_comparison(s.found, metric=METRIC)), "",
             "## B0 family", "", _md(aggregate(s.b0, metric=METRIC), agg_cols), "",
             f"## Backbones (phi = {s.config['backbones']['phi']})", "", _md(bb), "",
             "## Efficiency", "", _md(s.efficiency, ["family", "method", "phi", "macs", "accuracy", "train_seconds",
                                                     "acc_per_mmac", "acc_per_train_minute"]), "",
             "## Fits (error = a (MACs/x0)^-b + c)", "", "```json", json.dumps(s.fits, indent=1), "```", "",
             "## The same family trained longer (mean and std over seeds)", "",
             _md(aggregate(s.longer, metric=METRIC), agg_cols), "", "Matched comparison:", "",
             _md(matched_comparison(s.longer, metric=METRIC)), "", "Fits:", "", "```json",
             json.dumps(s.longer_fits, indent=1), "```", "",
             "## Fig. 4: width at each depth/resolution setting", "",
             _md(s.fig4, ["depth", "resolution", "width", "macs", "params", "test_accuracy", "val_accuracy",
                          "train_seconds"]), "",
             "## Every comparison behind the verdicts (A minus B; docs/statistics.md)", "",
             every.to_markdown(index=False, floatfmt=".4g"), "",
             "## Against the paper", "", table.to_markdown(index=False), ""]
    return "\n".join(lines)


def render(folder: str | Path = FOLDER) -> dict[str, str]:
    """``{"report.md": ..., "tables.md": ...}`` from the committed files in ``folder``."""
    s = load(folder)
    table, comps = claims(s), comparisons(s)
    return {"report.md": report(s, table, comps), "tables.md": tables(s, table, comps)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=str(FOLDER), help="the study's committed files (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page differs from its data")
    args = ap.parse_args(argv)
    try:
        pages = render(args.dir)
    except UserError as e:  # bad input: one line, as the effnas CLI does
        print(f"cifar10_page.py: error: {first_line(e)}", file=sys.stderr)
        return 2
    stale = [n for n, text in pages.items()
             if not (Path(args.dir) / n).is_file() or (Path(args.dir) / n).read_text() != text]
    if args.check:
        print(f"{SCRIPT}: {'stale: ' + ', '.join(stale) if stale else 'up to date'}")
        return 1 if stale else 0
    for name, text in pages.items():
        (Path(args.dir) / name).write_text(text)
    print(f"wrote {', '.join(str(Path(args.dir) / n) for n in pages)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
