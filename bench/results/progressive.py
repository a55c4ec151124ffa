"""docs/results/progressive/report.md: progressive learning against fixed-size training at equal training
time on CIFAR-10, from docs/results/progressive/runs.csv (written by ``python bench/progressive.py``).

    python bench/results/progressive.py           # write the page
    python bench/results/progressive.py --check   # exit 1 when the page differs from the data

Per setting (network, epochs, stages, sizes, regularisation, recipe, data fraction): each mode's mean test
accuracy with its 95 % interval over seeds (TTA beside it), the training seconds both spent and their ratio,
and progressive minus fixed, paired by seed, with the verdict of :mod:`effnas.search_spaces.common.stats`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from _common import Provenance, diff, iv, main, mark, table

from effnas.search_spaces.common.stats import Comparison, compare, interval

SCRIPT = "bench/results/progressive.py"
PAGES = ["progressive/report.md"]
#: The columns that make one comparison (bench/progressive.py's run key without mode, seed and epochs).
SETTING = ["model", "stages", "min_size", "resolution", "dropout", "randaug", "mixup", "recipe", "data_fraction"]


def _paired(g: pd.DataFrame, col: str) -> Comparison:
    """Progressive minus fixed on ``col``, over the seeds both modes have."""
    p = g[g["mode"] == "progressive"].set_index("seed")[col]
    f = g[g["mode"] == "fixed"].set_index("seed")[col]
    seeds = sorted(set(p.index) & set(f.index))
    return compare([float(p[s]) for s in seeds], [float(f[s]) for s in seeds], seeds_a=seeds, seeds_b=seeds)


def _diff(c: Comparison) -> str:
    if c.n_a == 0 or c.n_b == 0:
        return "no seed with both runs"
    return diff(c) if math.isfinite(c.diff) else c.verdict


def _range(text: object, what: str) -> str:
    return f"{what} {str(text).replace('-', ' -> ')}" if isinstance(text, str) and text else f"no {what} schedule"


def _section(g: pd.DataFrame) -> list[str]:
    r = g.iloc[0]
    prog = g[g["mode"] == "progressive"]
    fixed = g[g["mode"] == "fixed"]
    sizes = sorted(set(prog.schedule.astype(str)))
    lines = [f"## {r.model}: {int(r.epochs if len(prog) == 0 else prog.epochs.iloc[0])} progressive epochs in "
             f"{int(r.stages)} stages, {int(r.min_size)} -> {int(r.resolution)} px", "",
             f"{int(r.macs):,} MACs at {int(r.resolution)} px, {int(r.params):,} parameters; recipe `{r.recipe}`, "
             f"{_range(r.randaug, 'RandAugment')}, {_range(r.dropout, 'dropout')}, {_range(r.mixup, 'mixup')} "
             f"(the fixed runs hold the last values); {int(r.train_images):,} training images "
             f"({100 * float(r.data_fraction):g} % of the pool), batch {int(r.batch_size)}; stage sizes "
             f"{'; '.join(sizes) or 'none recorded'}. Fixed-size epochs per seed: "
             f"{', '.join(str(int(e)) for e in fixed.sort_values('seed').epochs) or 'none yet'} (as many as fit the "
             "progressive run's training time, at least 2).", ""]
    rows = []
    for mode, d in (("progressive", prog), ("fixed", fixed)):
        rows.append((mode, int(len(d)), iv(interval(d.test_accuracy)), iv(interval(d.test_accuracy_tta)),
                     iv(interval(d.train_seconds), scale=1.0), iv(interval(d.wall_seconds), scale=1.0)))
    lines += table(["mode", "n", "test accuracy %, mean [95 % CI]", "with TTA %", "training s", "wall s"], rows)
    both = prog.set_index("seed").train_seconds.to_frame("p").join(fixed.set_index("seed").train_seconds.rename("f"),
                                                                   how="inner")
    ratio = interval(both.f / both.p) if len(both) else interval([])
    acc, tta = _paired(g, "test_accuracy"), _paired(g, "test_accuracy_tta")
    lines += ["", f"- Fixed over progressive training time, per seed: {iv(ratio, scale=1.0, digits=2)} "
              f"(n = {len(both)}; 1 is equal time, missed by the fixed run's whole epochs, at least 2, and by the "
              "machine's load between the two runs).",
              f"- Progressive minus fixed, test accuracy ({acc.test}): {_diff(acc)}.",
              f"- With TTA: {_diff(tta)}.", ""]
    return lines


def render(results: Path) -> dict[str, str]:
    df = pd.read_csv(results / "progressive" / "runs.csv", keep_default_na=False,
                     na_values={c: [""] for c in ("test_accuracy", "test_accuracy_tta", "train_seconds")})
    df = df[df.status == "completed"]
    lines = [mark(SCRIPT), "", "# Progressive learning against fixed-size training at equal training time", "",
             "Issue 28 item 4: EfficientNetV2's progressive learning (Tan & Le 2021, Algorithm 1; "
             "`train.progressive_*`, docs/training.md \"Progressive learning\") against training every epoch at "
             "the final size with the final regularisation, for as many epochs as the progressive run's training "
             "time allows (measured per seed: its training seconds over its seconds per epoch at the final size). "
             "Both evaluate at the final size. Intervals are 95 % t-intervals over seeds; each comparison is a "
             "paired t-test over the seeds both modes share, with the verdict of docs/statistics.md (`tied within "
             "noise` says these seeds cannot tell, not that the two are equal).", ""]
    for _, g in df.groupby(SETTING, sort=True):
        lines += _section(g)
    machines = sorted({f"{m}, {int(c)} CPUs" for m, c in zip(df.machine, df.cpus, strict=True)})
    threads = sorted({int(t) for t in df.threads})
    load = (f"load average {df.load_average.min():.1f}-{df.load_average.max():.1f} during the runs"
            if len(df) and math.isfinite(df.load_average.max()) else "load not recorded")
    lines += Provenance(
        hardware=f"{'; '.join(machines)}; {'/'.join(map(str, threads))} torch thread(s) per run; {load} (equal "
                 "time is measured per seed on this shared machine: the ratio above says how equal it came out)",
        torch=", ".join(sorted(set(df.torch.astype(str)))),
        seeds=", ".join(str(s) for s in sorted(set(df.seed))) + " (both modes of a seed share data, initialisation "
              "and batch order)",
        data="CIFAR-10 (cifar10-jpeg.tar.gz): a fraction of the training pool drawn with the run's seed, the 10,000 "
             "test images",
        reproduce="`EFFNAS_CIFAR10_JPEG=PATH OMP_NUM_THREADS=1 python bench/progressive.py` (resumable; "
                  "`--seeds 0 1 2 3 4` extends it)",
        regenerate="python bench/results/progressive.py").block()
    return {"progressive/report.md": "\n".join(lines)}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
