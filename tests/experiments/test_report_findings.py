"""The report's Findings (experiments/report/findings.py): sentences computed from a run's files,
checked against the values the stats module computes from the same files."""

from __future__ import annotations

import dataclasses
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.report.escape import md_text
from effnas.experiments.report.findings import findings
from effnas.experiments.report.markdown import write_report
from effnas.nas import Objective, SearchConfig, SurrogateTrainer, get_space, reevaluate, run_search
from effnas.nas.reevaluate import write_search_results
from effnas.scaling import Coefficients, family, grid_search, matched_baselines, plot_curves
from effnas.scaling.analysis.compare import compare_methods, verdict_lines
from effnas.scaling.rungs import accuracy
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.stats import BETTER, TIED, TOO_FEW, compare, interval, noise_floor
from effnas.search_spaces.counts import counts

#: The demo's base network (efficientnet_nano, 16 px).
NANO = ss.get("efficientnet_nano")
#: Grid points within cost tolerance at phi 1 on NANO.
POINTS = [Coefficients(1.0, 1.0, 1.4), Coefficients(1.4, 1.2, 1.0), Coefficients(1.4, 1.0, 1.2)]
#: Seed-to-seed spread of the TEST evaluators' accuracy (a fraction).
NOISE = 0.01
CONFIG = {"name": "findings", "train": {"model": "efficientnet_nano"}, "search": {"reevaluate": 3}}


def _offset(seed: int) -> float:
    return NOISE * math.sin(3.0 * seed + 1.0)


def noisy_surrogate(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """A TEST trainer, not training: the surrogate's seeded accuracy of the architecture plus an
    offset per training seed, so that a re-evaluation with another seed differs as a training would."""
    out = SurrogateTrainer()(config)
    return {**out, "val_accuracy": out["val_accuracy"] + _offset(int(config.get("seed", 0)))}


class Closed:
    """A TEST evaluator, not training: accuracy grows with the log of the input's pixels
    (``by="resolution"``) or of the parameters (``by="params"``), plus an offset per seed."""

    def __init__(self, by: str) -> None:
        self.by = by

    def __call__(self, config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        spec = NetworkSpec.from_dict(config["model"])
        res = config.get("resolution") or spec.resolution
        c = counts(spec, res)
        x = res / 16 if self.by == "resolution" else c.params / 1.6e5
        acc = 0.5 + 0.2 * math.log(x) + _offset(int(config["seed"]))
        return {"status": "completed", "val_accuracy": acc, "test_accuracy": acc - 0.01, "params": c.params,
                "macs": c.macs, "resolution": res, "num_classes": spec.num_classes, "train_seconds": 0.0,
                "images_per_second": 0.0}


def _search(out: Path, *, top: int) -> None:
    cfg = SearchConfig(space=get_space("tiny"), objective=Objective(target=1.5e6), strategy="random", trials=6,
                       prune=False, storage=None, train={"epochs": 1, "seed": 0}, reevaluate=top)
    study = run_search(cfg, noisy_surrogate, progress=lambda *a: None)
    write_search_results(study, out, cfg.objective, reevaluate(cfg, study, noisy_surrogate))


def _family(run: Path, coefficients: Coefficients, by: str, *, phis: list[int], seeds: tuple[int, ...]) -> None:
    """family.csv of the compound members and their single-dimension baselines (the real builders),
    each "trained" by :class:`Closed`, and the curves and fits of ``plot_curves``."""
    members = family(NANO, phis, coefficients=coefficients)
    rows = []
    for m in members + matched_baselines(NANO, members):
        for seed in seeds:
            r = Closed(by)({"model": m.spec.to_dict(), "resolution": m.spec.resolution, "seed": seed})
            rows.append({**m.row(), "seed": seed, "status": "completed", "val_accuracy": r["val_accuracy"],
                         "test_accuracy": r["test_accuracy"]})
    (run / "family").mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(run / "family" / "family.csv", index=False)
    plot_curves(table, run / "curves", metric="test_accuracy")


def _run(run: Path, by: str, *, family_seeds: tuple[int, ...] = (0, 1), top: int = 3) -> Coefficients:
    """A run directory from the real writers: search (re-evaluated), grid (two seeds), family, curves."""
    _search(run / "search", top=top)
    res = grid_search(NANO, Closed(by), candidates=POINTS, train_config={"dataset": "test", "epochs": 1},
                      out_dir=run / "grid", seeds=(0, 1))
    _family(run, res.best, by, phis=[0, 1, 2], seeds=family_seeds)
    return res.best


def _one(sentences: list[str], start: str) -> str:
    found = [s for s in sentences if s.startswith(start)]
    assert len(found) == 1, (start, sentences)
    return found[0]


@pytest.fixture(scope="module")
def resolution_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    run = tmp_path_factory.mktemp("findings") / "run"
    picked = _run(run, "resolution")
    assert picked.as_tuple() == (1.0, 1.0, 1.4)  # resolution pays: the grid picks resolution-only coefficients
    return run, findings(run, config=CONFIG, stages={}, baseline=NetworkSpec.load(run / "search" / "best_spec.json"))


def test_the_baseline_finding_is_the_reevaluations_winner_with_its_verdicts(resolution_run) -> None:
    run, sentences = resolution_run
    text = _one(sentences, "Baseline: ")
    reeval = json.loads((run / "search" / "reevaluation.json").read_text())
    runs = pd.read_csv(run / "search" / "reevaluation.csv")
    trials = pd.read_csv(run / "search" / "trials.csv").set_index("number")
    w = reeval["winner"]
    mine = runs[runs.trial == w]
    spec = NetworkSpec.load(run / "search" / "best_spec.json")
    assert text.startswith(f"Baseline: the search picked trial #{w} ({spec.name}, "
                           f"{trials.loc[w, 'macs'] / 1e6:.2f} M MACs) by its mean reward (accuracy x (MACs/T)^w) "
                           f"{interval(mine.reward).text()}; its validation accuracy after 1 epoch (%): "
                           f"{interval(mine.accuracy).text()}, over seeds 0, 1")
    assert interval(mine.reward).n == 2 and "[" in interval(mine.reward).text()  # two runs: an interval
    floor = noise_floor([g.reward.tolist() for _, g in runs.groupby("trial")])
    assert floor is not None and f"noise floor sd {100 * floor.sd:.2f} points ({floor.df} df)" in text
    verdicts = []
    for c in reeval["candidates"][1:]:
        cmp = compare(mine.reward.tolist(), runs[runs.trial == c["trial"]].reward.tolist(), floor=floor)
        # the same verdict as the re-evaluation's (runner-up minus winner there, winner minus runner-up here)
        assert {BETTER: "worse", TIED: TIED}[cmp.verdict] == c["verdict"]
        assert (f"#{c['trial']} {100 * cmp.diff:+.1f} [{100 * cmp.low:+.1f}, {100 * cmp.high:+.1f}] points, "
                f"{cmp.verdict}") in text
        verdicts.append(cmp.verdict)
    head = ("distinguishable from every runner-up" if set(verdicts) == {BETTER}
            else f"not distinguishable from {verdicts.count(TIED)} of 2 runners-up")
    assert f"against 2 runners-up ({'noise floor'}" in text and head in text


def test_the_grid_finding_compares_the_pick_with_the_runner_up(resolution_run) -> None:
    run, sentences = resolution_run
    text = _one(sentences, "Grid (")
    grid = pd.read_csv(run / "grid" / "grid.csv")
    coef = json.loads((run / "grid" / "coefficients.json").read_text())
    runs = grid.assign(acc=accuracy(grid)).dropna(subset=["acc"]).drop_duplicates(["network", "seed"])
    by_net = {int(n): g.sort_values("seed") for n, g in runs.groupby("network")}
    win = int(grid[grid.picked.astype(str) == "True"].network.iloc[0])
    other = max((n for n in by_net if n != win), key=lambda n: by_net[n].acc.mean())
    a, b = by_net[win].acc, by_net[other].acc
    floor = noise_floor([g.acc.tolist() for g in by_net.values()])
    assert floor is not None and floor.sd == pytest.approx(coef["noise_floor"]["sd"])  # what the tie set used
    cmp = compare(a.tolist(), b.tolist(), seeds_a=[0, 1], seeds_b=[0, 1], floor=floor)
    r = grid[grid.network == other].iloc[0]
    assert (f"picked (1, 1, 1.4) {interval(a).text()} against the runner-up "
            f"({r.alpha:g}, {r.beta:g}, {r.gamma:g}) (the other network with the highest mean) "
            f"{interval(b).text()}: picked minus runner-up {100 * cmp.diff:+.1f} [{100 * cmp.low:+.1f}, "
            f"{100 * cmp.high:+.1f}] points, {cmp.verdict}") in text
    assert cmp.verdict == BETTER  # 0.2 log(22/16) = 6.4 points ahead, seed noise 1 point
    tied = grid.drop_duplicates(["alpha", "beta", "gamma"]).dropna(subset=["run_dir"])
    assert f"noise floor sd {100 * floor.sd:.2f} points ({floor.df} df, {floor.groups} networks)" in text
    n_tied = int(tied.tied_with_best.astype(str).eq("True").sum())
    assert n_tied == 1  # the others are worse
    assert f"; {n_tied} of {len(tied)} trained points tied with the best within noise" in text
    assert text.endswith(f"picked by the rule: {coef['picked_by']}.")


def test_compound_equals_resolution_only_when_alpha_and_beta_are_one(resolution_run) -> None:
    run, sentences = resolution_run
    text = _one(sentences, "Compound equals resolution-only here: alpha = 1 and beta = 1")
    fam = pd.read_csv(run / "family" / "family.csv").drop_duplicates(["method", "phi"]).set_index(["method", "phi"])
    same = [phi for phi in (1, 2) if all(fam.loc[("compound", phi), k] == fam.loc[("resolution", phi), k]
                                         for k in ("blocks", "params", "macs", "resolution"))]
    assert same == [2]  # at phi 1 the compound input is 22 px, resolution-only's 21 px (the same MACs)
    c, r = fam.loc[("compound", 1)], fam.loc[("resolution", 1)]
    assert c.macs == r.macs and (c.resolution, r.resolution) == (22, 21)
    assert "compound scaling grows only the resolution (gamma = 1.4 per phi), and builds the same networks as " \
           "resolution-only at phi 2 (they differ at phi 1 (resolution 22 vs 21)" in text
    assert text.endswith("The compound curve lies on (or next to) the resolution-only curve, and at phi 2 compound "
                         "against resolution-only compares a network with itself.")
    assert not any(s.startswith(("Compound equals depth", "Compound equals width")) for s in sentences)
    # a family of the official table does not use the grid's coefficients: nothing to say of them
    official = findings(run, config={**CONFIG, "family": {"official": True}}, stages={})
    assert not any(s.startswith("Compound equals") for s in official) and len(official) == len(sentences) - 1
    # the verdicts say which comparison is of a network with itself
    assert "resolution-only at equal MACs (test accuracy, A - B with its 95 % interval) (the same networks as " \
           "compound at phi 2)" in _one(sentences, "Compound against resolution-only")


def test_the_verdict_findings_are_the_reports_comparisons(resolution_run) -> None:
    run, sentences = resolution_run
    fam = pd.read_csv(run / "family" / "family.csv")
    table = compare_methods(fam, metric="test_accuracy")
    for b in ("depth", "resolution", "width"):
        text = _one(sentences, f"Compound against {b}-only at equal MACs (test accuracy")
        t = table[table.b == b]
        assert f"at the largest phi, {verdict_lines(t[t.phi == 2])[0]}; over phi 1, 2: " in text
        assert "so the paper's claim (compound beats" in text


def test_the_fit_findings_give_status_and_r2(resolution_run) -> None:
    run, sentences = resolution_run
    fits = json.loads((run / "curves" / "fits.json").read_text())
    fam = pd.read_csv(run / "family" / "family.csv")
    text = _one(sentences, "Fits of error = a (x / x0)^-b + c against macs")
    for method, f in fits["macs"].items():
        runs = pd.concat([fam[fam.method == method], fam[(fam.method == "compound") & (fam.phi == 0)]]) \
            if method != "compound" else fam[fam.method == "compound"]
        y = 1 - runs.test_accuracy.to_numpy()
        pred = f["a"] * np.power(runs.macs.to_numpy() / f["x0"], -f["b"]) + f["c"]
        r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        assert len(runs) == f["n_points"] == 6
        status = {"determined": "determined (drawn with its 90 % band)",
                  "at bound": f"at a bound ({', '.join(f['at_bound'])}; drawn dashed, no band)"}[f["status"]]
        assert f"{method} {status}, R² {round(r2, 2) + 0.0:.2f}, RMSE {100 * f['rmse']:.1f} points, n = 6 runs" in text
    assert "Fits of error = a (x / x0)^-b + c against params" in " ".join(sentences)


def test_the_findings_come_first_in_both_reports(resolution_run) -> None:
    run, sentences = resolution_run
    md, htm = write_report(run, config=CONFIG, stages={"search": {"seconds": 1.0}})
    text, page = md.read_text(), htm.read_text()
    assert text.index("## Findings") < text.index("## Stages") < text.index("## Baseline search")
    body = text.split("## Findings")[1].split("## Stages")[0]
    assert [line[2:] for line in body.splitlines() if line.startswith("- ")] == [md_text(s) for s in sentences]
    assert page.index("<h2>Findings</h2>") < page.index("<h2>Stages</h2>")
    assert all(f"<li>{html.escape(s)}</li>" in page for s in sentences)


def test_no_compound_equals_when_two_dimensions_scale_and_one_seed_is_undetermined(tmp_path: Path) -> None:
    run = tmp_path / "run"
    picked = _run(run, "params", family_seeds=(0,), top=0)
    assert picked.as_tuple() == (1.4, 1.2, 1.0)  # parameters pay: the widest and deepest point
    sentences = findings(run, config={**CONFIG, "search": {"reevaluate": 0}}, stages={})
    assert not any(s.startswith("Compound equals") or "coincide" in s for s in sentences)
    assert _one(sentences, "Baseline: ").endswith("Not re-evaluated (search.reevaluate = 0): with one run per "
                                                  "candidate, whether it stands out from the runners-up is not known.")
    assert "(n = 1)" in _one(sentences, "Baseline: ")
    fits = _one(sentences, "Fits of error = a (x / x0)^-b + c against macs")
    assert fits.count("undetermined (not drawn), n = 3 runs") == 4  # 3 sizes x 1 run each: no fit is determined
    for b in ("depth", "resolution", "width"):
        assert f"n 1/1: {TOO_FEW}" in _one(sentences, f"Compound against {b}-only")


@pytest.mark.parametrize("phis,tail", [
    ([0, 1], "Compound equals resolution-only here: at phi 1 they build the same network"),
    ([0, 1, 2], "Compound and resolution-only coincide: at phi 1 they build the same network"),
])
def test_compound_equals_a_single_dimension_when_the_networks_are_the_same(tmp_path: Path, phis: list[int],
                                                                           tail: str) -> None:
    # alpha 1.2 adds no block at phi 1 on nano: compound (1.2, 1, 1.3) is resolution-only's 21 px network there
    run = tmp_path / "run"
    (run / "grid").mkdir(parents=True)
    Coefficients(1.2, 1.0, 1.3).save(run / "grid" / "coefficients.json")
    _family(run, Coefficients(1.2, 1.0, 1.3), "resolution", phis=phis, seeds=(0, 1))
    text = _one(findings(run, config=CONFIG, stages={}), tail)
    assert "(blocks, params, macs, resolution equal in family/family.csv)" in text
    assert ("not at phi 2 (blocks 11 vs 8, params 218336 vs 160598, macs 3961088 vs 3382016, resolution 26 vs 32)"
            in text) == (phis == [0, 1, 2])


def test_an_estimator_search_says_score_never_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "run" / "search"
    assert main(["search", "--space", "tiny", "--target-macs", "1.5M", "--strategy", "random", "--dataset", "digits",
                 "--estimator", "proxy:synflow", "--trials", "3", "--reevaluate", "2", "--set",
                 "search.train.batch_size=16", "--set", "train.threads=1", "--quiet", "--out", str(out)]) == 0
    text = _one(findings(tmp_path / "run", config={"search": {"estimator": "proxy:synflow"}}, stages={}), "Baseline")
    runs = pd.read_csv(out / "reevaluation.csv")
    w = json.loads((out / "reevaluation.json").read_text())["winner"]
    assert (f"by its mean reward (score x (MACs/T)^w) {interval(runs[runs.trial == w].reward).text(scale=1, digits=3)}"
            f"; its score (synflow proxy score (rank-normalised); a score ranks candidates, it is not an accuracy): "
            f"{interval(runs[runs.trial == w].score).text(scale=1, digits=3)}") in text
    assert "accuracy (%)" not in text and "points" not in text  # a score is no percentage


def test_a_skipped_search_says_train_model_stood_in(tmp_path: Path) -> None:
    NANO.save(tmp_path / "baseline.json")
    sentences = findings(tmp_path, config={"train": {"model": "efficientnet_nano"}, "search": {"trials": 0}},
                         stages={"search": {"status": "skipped"}}, baseline=NANO)
    assert sentences == [f"Baseline: no search ran (search.trials = 0), so train.model = efficientnet_nano stands in "
                         f"for it: {NANO.name}, {counts(NANO).macs / 1e6:.2f} M MACs at 16 px, chosen by the config, "
                         "not by a search."]
    # a name with markup stays text in both reports
    evil = dataclasses.replace(NANO, name="<script>*x*</script>")
    md, htm = write_report(tmp_path, config={"search": {"trials": 0}}, stages={"search": {"status": "skipped"}},
                           baseline=evil)
    findings_md = md.read_text().split("## Findings")[1].split("## Stages")[0]
    assert "&lt;script&gt;\\*x\\*&lt;/script&gt;, " in findings_md and "<script>" not in findings_md
    assert "<li>Baseline: no search ran (search.trials = 0), so the given baseline stands in for it: " \
           "&lt;script&gt;*x*&lt;/script&gt;, " in htm.read_text()


def test_missing_stages_have_no_finding(tmp_path: Path) -> None:
    assert findings(tmp_path, config={}, stages={}) == []
    md, _ = write_report(tmp_path, config={}, stages={})
    assert "## Findings" not in md.read_text()
