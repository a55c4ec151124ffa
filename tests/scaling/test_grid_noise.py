"""A grid that knows its noise: duplicate networks trained once, successive halving within a
stated budget, and the tie set with its pick rule (docs/scaling.md)."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import load_config
from effnas.experiments.pipeline import plan
from effnas.experiments.report.markdown import write_report
from effnas.scaling import Coefficients, candidate_table, grid_candidates, grid_search, schedule, tie_set
from effnas.scaling.grid import network_key
from effnas.scaling.rungs import NO_NOISE_RULE, PICK_RULE
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.stats import TIED, WORSE, compare, noise_floor

#: The demo's base network (efficientnet_nano, 16 px, 10 classes).
DEMO = ss.get("efficientnet_nano")
CONFIG = {"dataset": "test", "epochs": 1}


def rows(t: pd.DataFrame, a: float, b: float, g: float) -> pd.DataFrame:
    return t[(t.alpha == a) & (t.beta == b) & (t.gamma == g)]


def test_points_that_build_the_same_network_are_trained_once(tmp_path, evaluator) -> None:
    # At phi 1 on the demo base alpha 1.2 adds no block: (1.2, 1, 1.3) builds the network of
    # (1, 1, 1.4), both brought to 20 px (from nominal 21 and 22 px); (1.4, 1.2, 1) is another network.
    cands = [Coefficients(1.0, 1.0, 1.4), Coefficients(1.2, 1.0, 1.3), Coefficients(1.4, 1.2, 1.0)]
    table, specs = candidate_table(DEMO, cands)
    assert table.resolution_nominal.tolist()[:2] == [22, 21] and table.resolution.tolist()[:2] == [20, 20]
    assert network_key(specs[0]) == network_key(specs[1]) != network_key(specs[2])
    assert table.same_network_as.tolist() == ["", "(1, 1, 1.4)", ""]
    assert table.points.tolist()[:2] == ["(1, 1, 1.4); (1.2, 1, 1.3)"] * 2
    # The key is the realised network: the name does not count, the resolution does.
    assert network_key(dataclasses.replace(specs[0], name="other")) == network_key(specs[0])
    assert network_key(dataclasses.replace(specs[0], resolution=21)) != network_key(specs[0])

    res = grid_search(DEMO, evaluator, candidates=cands, train_config=CONFIG, out_dir=tmp_path, seeds=(0, 1))
    assert len(evaluator.calls) == 4  # two networks x two seeds
    assert sorted(p.parent.name for p in tmp_path.glob("candidates/*/result.json")) == [
        "a1-b1-g1.4-seed0", "a1-b1-g1.4-seed1", "a1.4-b1.2-g1-seed0", "a1.4-b1.2-g1-seed1"]
    csv = pd.read_csv(tmp_path / "grid.csv", keep_default_na=False)
    assert len(csv) == 6 and len(res.table) == 6  # every point keeps its rows, with the shared result
    first, dup = rows(csv, 1.0, 1.0, 1.4), rows(csv, 1.2, 1.0, 1.3)
    assert dup.val_accuracy.tolist() == first.val_accuracy.tolist()
    assert dup.run_dir.tolist() == first.run_dir.tolist()
    assert set(dup.same_network_as) == {"(1, 1, 1.4)"} and set(first.same_network_as) == {""}
    assert res.spent() == {"runs": 4, "epochs": 4}


def test_halving_spends_what_its_schedule_states_within_the_budget(tmp_path, evaluator, make_evaluator) -> None:
    cands = grid_candidates(step=0.1)  # on tiny: 10 points within cost tolerance, 7 distinct networks
    res = grid_search(ss.get("tiny"), evaluator, candidates=cands, train_config=CONFIG, out_dir=tmp_path,
                      halving=True, eta=2, budget_epochs=30)
    s = res.schedule
    assert s is not None
    # 7 x 1 seed x 1 epoch + 4 x 2 seeds x 2 epochs = 23; a third rung (2 x 3 x 4 = 24) would pass 30.
    assert [(r.networks, r.seeds, r.epochs) for r in s.rungs] == [(7, (0,), 1), (4, (0, 1), 2)]
    assert len(evaluator.calls) == s.runs == 15
    assert sum(c["epochs"] for c in evaluator.calls) == s.epochs == 23 <= 30
    saved = json.loads((tmp_path / "coefficients.json").read_text())
    assert saved["schedule"]["spent"] == {"runs": 15, "epochs": 23} and saved["schedule"]["budget_epochs"] == 30
    assert saved["schedule"]["epochs"] == 23 and saved["schedule"]["eta"] == 2
    # Rung 1 trains rung 0's best four networks, in candidates/rung1/, each with seeds 0 and 1.
    t = res.table.dropna(subset=["run_dir"]).drop_duplicates("run_dir")
    r0 = t[t.rung == 0].set_index("network").val_accuracy
    promoted = set(t[t.rung == 1].network)
    assert len(promoted) == 4 and r0[list(promoted)].min() >= r0.drop(list(promoted)).max()
    assert all("/candidates/rung1/" in d for d in t[t.rung == 1].run_dir)
    assert all(sorted(g) == [0, 1] for _, g in t[t.rung == 1].groupby("network").seed)
    # The tie set is read off the last rung; the others were not promoted.
    points = res.table.drop_duplicates(["alpha", "beta", "gamma"]).dropna(subset=["run_dir"])
    assert set(points[points.last_rung == 0].vs_best) == {"not promoted past rung 0"}
    assert (points[points.last_rung == 1].n == 2).all() and saved["noise_floor"]["df"] == 4
    # --resume rereads every rung: nothing trains again, the same networks are promoted and picked.
    fresh = make_evaluator()
    again = grid_search(ss.get("tiny"), fresh, candidates=cands, train_config=CONFIG, out_dir=tmp_path, halving=True,
                        eta=2, budget_epochs=30, resume=True)
    assert fresh.calls == [] and again.best == res.best and again.spent() == res.spent()
    assert set(again.table[again.table.rung == 1].network) == promoted


def test_grid_keys_flow_from_toml_set_and_flags_and_each_changes_the_schedule(tmp_path, capsys) -> None:
    def rungs(cfg):
        s = plan.grid_plan(cfg, plan.base_spec(cfg)).schedule
        return [(r.networks, len(r.seeds), r.epochs) for r in s.rungs]

    demo = load_config("demo", overrides=["grid.step=0.1"])  # 6 points within cost tolerance, 3 networks
    assert rungs(demo) == [(3, 1, 2)]
    on = demo.with_values({"grid.halving": True})
    assert rungs(on) == [(3, 1, 2), (2, 2, 6)]
    assert rungs(on.with_values({"grid.eta": 2})) == [(3, 1, 2), (2, 2, 4)]
    assert rungs(on.with_values({"grid.rungs": 1})) == [(3, 1, 2)]
    assert rungs(on.with_values({"grid.budget_epochs": 20})) == [(3, 1, 2)]  # 6 + 24 would pass 20
    with pytest.raises(UserError, match="grid.budget_epochs = 5 is less than the first rung needs"):
        rungs(demo.with_values({"grid.budget_epochs": 5}))  # without halving: refused
    with pytest.raises(UserError, match="grid.eta acts with grid.halving = true"):
        demo.with_values({"grid.eta": 2})
    # The same typed keys from a TOML file, --set and the command's flags.
    toml = tmp_path / "g.toml"
    toml.write_text("[grid]\nstep = 0.1\nhalving = true\neta = 2\n")
    assert rungs(load_config(str(toml))) == [(3, 1, 10), (2, 2, 20)]
    assert rungs(load_config("demo", overrides=["grid.step=0.1", "grid.halving=true", "grid.rungs=1"])) == [(3, 1, 2)]
    assert main(["grid", "--config", "demo", "--step", "0.1", "--halving", "--eta", "2", "--budget-epochs", "100",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "building 3 distinct networks" in out
    assert ("schedule: rung 0: 3 networks x 1 seed x 2 epochs = 6 epochs; rung 1: 2 networks x 2 seeds x 4 epochs = "
            "16 epochs; at most 22 epochs in 7 runs (halving, eta 2; budget 100)") in out


def _runs(values: dict[int, list[float]], rung: dict[int, int] | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"network": n, "rung": (rung or {}).get(n, 0), "seed": s, "status": "completed",
                          "val_accuracy": v} for n, vs in values.items() for s, v in enumerate(vs)])


#: Points: network 0 is built by two points, 1 and 2 by one each.
POINTS = pd.DataFrame({"alpha": [1.0, 1.2, 1.4, 2.0], "beta": [1.0, 1.0, 1.2, 1.0], "gamma": [1.4, 1.3, 1.0, 1.0],
                       "product": [1.96, 2.028, 2.016, 2.0], "macs": [200, 200, 190, 100], "network": [0, 0, 1, 2]})


def test_the_tie_set_uses_the_noise_floor_and_the_rule_picks_the_cheapest_tied_point() -> None:
    values = {0: [0.80, 0.82, 0.81], 1: [0.81, 0.79, 0.80], 2: [0.60, 0.62, 0.61]}
    ties = tie_set(_runs(values), POINTS, target=2.0)
    floor = noise_floor(values.values())
    assert ties.floor == floor and floor is not None and floor.df == 6
    # The stats module's verdicts, with the floor: network 1 is tied with the best, network 2 worse.
    assert compare(values[1], values[0], floor=floor).verdict == TIED
    assert compare(values[2], values[0], floor=floor).verdict == WORSE
    p = ties.points.set_index(["alpha", "beta", "gamma"])
    assert p.tied_with_best.tolist() == [True, True, True, False]
    assert p.vs_best.tolist() == ["best", "best", TIED, WORSE]
    # The best network's point closest to the target product names the best; the pick is the tied
    # point with the fewest realised MACs.
    assert ties.best == Coefficients(1.2, 1.0, 1.3) and ties.picked == Coefficients(1.4, 1.2, 1.0)
    assert ties.rule == PICK_RULE and p.picked.tolist() == [False, False, True, False]
    assert p.n.tolist() == [3, 3, 3, 3] and p.mean_accuracy.iloc[0] == pytest.approx(0.81)
    assert p.ci_low.iloc[0] < 0.81 < p.ci_high.iloc[0]
    line = ties.lines()[0]
    assert line.startswith("best (1.2, 1, 1.3): 81.0 [") and line.endswith(
        "(n = 3); tied within noise: (1.4, 1.2, 1), the best's network's 1 other point; picked by rule: (1.4, 1.2, 1)")
    assert {tuple(c.as_tuple()) for c in ties.tied} == {(1.0, 1.0, 1.4), (1.2, 1.0, 1.3), (1.4, 1.2, 1.0)}


def test_without_a_noise_estimate_nothing_is_called_tied_and_the_highest_mean_is_picked() -> None:
    ties = tie_set(_runs({0: [0.80], 1: [0.81], 2: [0.60]}), POINTS, target=2.0)
    assert ties.floor is None and ties.rule == NO_NOISE_RULE
    assert ties.points.tied_with_best.map(repr).tolist() == ["None", "None", "True", "None"]
    assert ties.picked == ties.best == Coefficients(1.4, 1.2, 1.0)
    assert "tied within noise: unknown" in ties.lines()[0]


def test_only_the_last_rung_is_compared() -> None:
    # Network 2 stopped at rung 0 with one run: it is neither compared nor part of the floor.
    runs = pd.concat([_runs({0: [0.5], 1: [0.4], 2: [0.3]}),
                      _runs({0: [0.80, 0.82], 1: [0.70, 0.71]}, rung={0: 1, 1: 1})], ignore_index=True)
    ties = tie_set(runs, POINTS, target=2.0)
    assert ties.final_rung == 1 and ties.floor is not None and ties.floor.groups == 2
    assert ties.points.tied_with_best.tolist() == [True, True, False, False]
    assert ties.points.vs_best.tolist() == ["best", "best", WORSE, "not promoted past rung 0"]
    assert ties.points.n.tolist() == [2, 2, 2, 1] and ties.points.last_rung.tolist() == [1, 1, 1, 0]


def test_the_grid_writes_intervals_ties_rule_and_floor(tmp_path, evaluator) -> None:
    cands = grid_candidates(step=0.1)
    res = grid_search(ss.get("tiny"), evaluator, candidates=cands, train_config=CONFIG,
                      out_dir=tmp_path / "grid", seeds=(0, 1))
    csv = pd.read_csv(tmp_path / "grid" / "grid.csv")
    trained = csv.dropna(subset=["run_dir"])
    assert {"n", "mean_accuracy", "ci_low", "ci_high", "tied_with_best", "vs_best", "picked"} <= set(csv)
    assert (trained.n == 2).all() and (trained.ci_low < trained.mean_accuracy).all()
    assert trained[trained.picked].drop_duplicates(["alpha", "beta", "gamma"]).shape[0] == 1
    saved = json.loads((tmp_path / "grid" / "coefficients.json").read_text())
    assert saved["picked_by"] == PICK_RULE and saved["noise_floor"]["groups"] == 7
    assert [saved[k] for k in ("alpha", "beta", "gamma")] == list(res.best.as_tuple())
    tied = {tuple(t) for t in saved["tied_with_best"]}
    flagged = trained[trained.tied_with_best.astype(str) == "True"].drop_duplicates(["alpha", "beta", "gamma"])
    assert tied == {tuple(r) for r in flagged[["alpha", "beta", "gamma"]].itertuples(index=False)}
    assert res.best.as_tuple() in tied
    lines = res.lines()
    assert lines[0].startswith("schedule: rung 0: 7 networks x 2 seeds x 1 epoch = 14 epochs")
    assert lines[1].startswith("best (") and "tied within noise:" in lines[1] and "picked by rule:" in lines[1]
    assert saved["summary"] == lines
    # The report reads the files: the same lines, and a row per point with its interval and flags.
    md, _ = write_report(tmp_path, config={"name": "grid"}, stages={})
    text = md.read_text().split("## Compound-coefficient grid search")[1].split("\n## ")[0]
    assert lines[1].split(":")[0] in text and "tied within noise" in text and "noise floor: sd" in text
    header = next(line for line in text.splitlines() if line.startswith("|   alpha"))
    assert all(c in header for c in ("ci_low", "ci_high", "tied_with_best", "picked", "same_network_as"))
    assert "| yes " in text and "| no " in text


def test_a_schedule_without_networks_or_over_budget_is_refused() -> None:
    with pytest.raises(UserError, match="no network to train"):
        schedule(0, epochs=1, seeds=[0])
    with pytest.raises(UserError, match="first rung needs"):
        schedule(4, epochs=2, seeds=[0, 1], budget_epochs=15)
    assert schedule(4, epochs=2, seeds=[0, 1], budget_epochs=16).epochs == 16


@pytest.mark.slow
def test_effnas_grid_with_halving_trains_on_digits(tmp_path, capsys) -> None:
    """The real trainer on the embedded digits: 4 networks for 1 epoch, the best 2 for 3 epochs
    with seeds 0 and 1; what is spent is what the schedule stated, and the summary is printed."""
    assert main(["grid", "--base", "tiny", "--dataset", "digits", "--step", "0.2", "--epochs", "1", "--halving",
                 "--budget-epochs", "20", "--set", "train.threads=1", "--set", "data.data_fraction=0.2",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("schedule: rung 0: 4 networks x 1 seed x 1 epoch = 4 epochs; rung 1: 2 networks x 2 seeds x 3 epochs = "
            "12 epochs; at most 16 epochs in 8 runs (halving, eta 3; budget 20); spent 16 epochs in 8 runs") in out
    assert "tied within noise:" in out and "noise floor: sd" in out
    saved = json.loads((tmp_path / "coefficients.json").read_text())
    assert saved["schedule"]["spent"] == {"runs": 8, "epochs": 16} and saved["noise_floor"]["groups"] == 2
    runs = [json.loads(p.read_text()) for p in tmp_path.glob("candidates/**/result.json")]
    assert sorted(r["metrics"]["epochs_completed"] for r in runs) == [1] * 4 + [3] * 4
