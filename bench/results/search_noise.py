"""docs/results/search_noise/report.md from the files beside it: the noise a search's ranking lives in.

* ``cifar10.csv`` (``bench/search_noise.py``): six random candidates of the CIFAR-10 preset's search
  space, three seeds each, every proxy epoch's validation accuracy: the pooled seed-to-seed standard
  deviation per epoch (``stats.noise_floor``), the measurement behind ``search.noise_floor``'s default;
* ``cifar10_search/``, ``digits_search/`` (``effnas search ... --reevaluate 3``): ``trials.csv``,
  ``reevaluation.csv`` (the top three trained again with seed 1) and ``epochs.csv`` (every trial's
  per-epoch rewards, ``bench/replay_pruning.py``): the re-evaluation's intervals and verdicts,
  recomputed here with ``stats``, and which trials Optuna's median rule and the noise-floor rule stop
  when replayed on the recorded rewards.

    python bench/results/search_noise.py            # rewrite the page
    python bench/results/search_noise.py --check    # exit 1 when the committed page differs
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: replay_pruning

from _common import Provenance, iv, main, mark, pct, pval, table  # noqa: E402
from replay_pruning import replay  # noqa: E402

from effnas.nas.pruning import DEFAULT_NOISE_FLOOR  # noqa: E402
from effnas.search_spaces.common.stats import compare, interval, noise_floor  # noqa: E402

SCRIPT = "bench/results/search_noise.py"
PAGES = ["search_noise/report.md"]
#: What the runs' logs recorded (the CSVs hold no command line); machine: the 2-core project machine.
NOISE = {"command": "`OMP_NUM_THREADS=1 PYTHONPATH=. python bench/search_noise.py "
                    "experiments/config/presets/cifar10-cpu.toml --set "
                    "data.dataset=cifar10:/work/shared/data/cifar10-jpeg.tar.gz --candidates 6 --seeds 3 --out "
                    "docs/results/search_noise/cifar10.csv` (log: `cifar10.log`)",
         "recipe": "the preset's `[search.train]`: 2 epochs on 10 % of the 47,500-image training pool, "
                   "2,500 validation images, one torch thread"}
SEARCHES = {
    "cifar10_search": {
        "title": "CIFAR-10, the preset's search shortened to 12 trials", "classes": 10,
        "command": "`effnas search --config experiments/config/presets/cifar10-cpu.toml --set "
                   "data.dataset=cifar10:/work/shared/data/cifar10-jpeg.tar.gz --trials 12 --reevaluate 3 --out OUT` "
                   "(log: `cifar10_search/search.log`; 15 min)"},
    "digits_search": {
        "title": "digits, the tiny space, 8 TPE trials of 3 epochs", "classes": 10,
        "command": "`effnas search --space tiny --dataset digits --strategy tpe --trials 8 --epochs 3 "
                   "--target-macs 1.5M --reevaluate 3 --set train.threads=1 --out OUT` (log: "
                   "`digits_search/search.log`; 1 min 20 s; a second run reproduced every number)"},
}


def noise_section(results: Path) -> list[str]:
    runs = pd.read_csv(results / "search_noise" / "cifar10.csv")
    lines = ["## The noise floor (CIFAR-10, the preset's search recipe)", "",
             f"Six random candidates of the `cifar` space, three training seeds each, trained as the search trains "
             f"them ({NOISE['recipe']}); validation accuracy (%) after each epoch:", ""]
    rows, floors = [], {}
    for epoch, e in runs.groupby("epoch"):
        groups = [g["val_accuracy"].tolist() for _, g in e.groupby("candidate")]
        floor = noise_floor(groups)
        assert floor is not None
        floors[int(epoch)] = floor
        rows.append([int(epoch), f"{100 * floor.sd:.2f} ({floor.df} df)",
                     ", ".join(pct(sum(g) / len(g)) for g in groups),
                     f"{iv(interval(e['val_accuracy']))} (n = {len(e)})"])
    lines += table(["epoch", "noise floor sd (pooled, %)", "candidates' means", "all runs, mean [95 %]"], rows)
    first = floors[min(floors)]
    largest = max(floors, key=lambda k: floors[k].sd)
    lines += ["", f"The largest spread is after epoch {largest}: {100 * floors[largest].sd:.2f} points "
              f"({floors[largest].df} df). `search.noise_floor`'s default, {DEFAULT_NOISE_FLOOR} "
              f"(`effnas.nas.pruning.DEFAULT_NOISE_FLOOR`), is the first epoch's, {first.sd:.3f} to three decimals "
              f"(`tests/results/test_pages.py` keeps the two equal). With it the pruner compares trials at an epoch "
              f"only once the completed trials' median reward is {pct(1.959964 * 2 ** 0.5 * DEFAULT_NOISE_FLOOR)} "
              "points above chance, and stops one only when it is as far behind that median (docs/search.md, "
              "\"Pruning\").", ""]
    return lines


def search_section(results: Path, name: str) -> list[str]:
    s = SEARCHES[name]
    d = results / "search_noise" / name
    trials = pd.read_csv(d / "trials.csv")
    again = pd.read_csv(d / "reevaluation.csv")
    states = trials["state"].value_counts().to_dict()
    lines = [f"## Search: {s['title']}", "",
             f"{len(trials)} trials: " + ", ".join(f"{n} {k.lower()}" for k, n in sorted(states.items())) + ".", ""]
    stopped = replay(d / "epochs.csv", chance=1 / s["classes"], floor=DEFAULT_NOISE_FLOOR)
    runs = {int(t): g["reward"].tolist() for t, g in again.groupby("trial", sort=False)}
    floor = noise_floor(runs.values())
    assert floor is not None
    order = sorted(runs, key=lambda t: -sum(runs[t]) / len(runs[t]))
    winner = order[0]
    rows = []
    for t in order:
        g = again[again["trial"] == t]
        search, second = g[g["run"] == "search"].iloc[0], g[g["run"] == "reevaluation"].iloc[0]
        c = None if t == winner else compare(runs[t], runs[winner], floor=floor)
        rows.append([f"#{t}", f"{pct(search['accuracy'])} / {pct(search['reward'])}",
                     f"{pct(second['accuracy'])} / {pct(second['reward'])}",
                     f"{iv(interval(runs[t]))} (n = {len(runs[t])})",
                     "winner" if c is None else f"{pct(c.diff)}, {pval(c.p)}: {c.verdict}",
                     "yes" if t in stopped["median"] else "no"])
    lines += [f"The top three by reward trained again with seed 1 (`reevaluation.csv`); accuracy / reward (%); the "
              f"verdicts compare each runner-up's two rewards with the winner's with the pooled floor of the three, "
              f"{100 * floor.sd:.2f} points ({floor.df} df):", ""]
    lines += table(["trial", "search run (seed 0)", "re-evaluation (seed 1)", "mean reward [95 %]",
                    "minus the winner", "stopped by the median rule"], rows)
    n = len(trials)
    lines += ["", f"Replayed on the recorded per-epoch rewards (`epochs.csv`, `bench/replay_pruning.py`), Optuna's "
              f"median rule stops {len(stopped['median'])} of {n} trials ({_list(stopped['median'])}); the "
              f"noise-floor rule at {DEFAULT_NOISE_FLOOR} stops {len(stopped['noise floor'])} "
              f"({_list(stopped['noise floor'])}). The search ran with the noise-floor rule.", ""]
    return lines


def _list(trials: list[int]) -> str:
    return ", ".join(f"#{t}" for t in trials) if trials else "none"


def render(results: Path) -> dict[str, str]:
    lines = [mark(SCRIPT), "", "# A search's noise: the pruning floor and the top-3 re-evaluation", "",
             "How far a candidate's accuracy moves with the training seed during a short proxy training, and what "
             "that does to a search: which trials a median pruner stops, and whether the search's winner is "
             "distinguishable from its runners-up when they are trained again with another seed (docs/search.md, "
             "\"Pruning\" and \"Re-evaluation\"; rule: docs/statistics.md).", ""]
    lines += noise_section(results)
    for name in SEARCHES:
        lines += search_section(results, name)
    lines += Provenance(
        hardware="the 2-core project machine (x86_64), one torch thread per run, load average 5-6 from other jobs",
        torch="2.13.0+cpu (python 3.11.7), optuna 5.0.0",
        seeds="training seeds 0, 1, 2 (noise); searches: run.seed 0, re-evaluation seed 1",
        data="../shared/data/cifar10-jpeg.tar.gz (the real CIFAR-10 JPEGs); digits (embedded)",
        reproduce="; ".join([NOISE["command"], *(f"{s['command']}, then `PYTHONPATH=. python bench/replay_pruning.py "
                                                  f"--storage sqlite:///OUT/study.db --study STUDY --csv "
                                                  f"docs/results/search_noise/{k}/epochs.csv --classes {s['classes']}`"
                                                  for k, s in SEARCHES.items())]),
        regenerate=f"python {SCRIPT}").block()
    return {"search_noise/report.md": "\n".join(lines).rstrip("\n") + "\n"}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
