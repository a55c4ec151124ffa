from __future__ import annotations

import csv
import json
import math
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import effnas.search_spaces as ss
from effnas.nas import (
    Objective,
    SearchConfig,
    SearchFailed,
    SurrogateTrainer,
    finished,
    get_space,
    open_study,
    run_search,
    write_results,
)
from effnas.search_spaces.common.errors import UserError

optuna.logging.set_verbosity(optuna.logging.WARNING)
QUIET = lambda *a: None  # noqa: E731


def _cfg(tmp_path, **kw: Any) -> SearchConfig:
    """In-memory storage unless a test needs a file (SQLite commits cost ~20 ms each here)."""
    base: dict[str, Any] = dict(space=get_space("tiny"), objective=Objective(target=1.5e6), strategy="random",
                                trials=4, storage=None)
    base.update(kw)
    base["train"] = {"epochs": base.pop("epochs", 2), **base.get("train", {})}
    return SearchConfig(**base)


def test_search_records_candidates_and_csv_reward_matches(tmp_path) -> None:
    cfg = _cfg(tmp_path, trials=4, prune=False)
    study = run_search(cfg, SurrogateTrainer(seed=1), progress=QUIET)
    summary = write_results(study, tmp_path / "out", cfg.objective)
    assert summary["trials"] == 4 and summary["completed"] == 4
    for t in study.trials:
        a = t.user_attrs
        spec = ss.NetworkSpec.from_dict(json.loads(a["spec"]))
        assert a["blocks"] == " ".join(ss.encode_block(s) for s in spec.stages)
        assert a["strategy"] == "random" and a["status"] == "completed"
        assert a["params"] == ss.cost.count_params(ss.build(spec))
        assert t.value == pytest.approx(a["reward"])
    a = study.trials[0].user_attrs
    assert a["macs"] == ss.cost.macs(ss.NetworkSpec.from_dict(json.loads(a["spec"])))
    rows = list(csv.DictReader(open(tmp_path / "out" / "trials.csv")))
    assert {"number", "state", "strategy", "spec", "accuracy", "macs", "params", "latency_ms", "reward"} <= set(rows[0])
    for r in rows:
        assert float(r["reward"]) == pytest.approx(float(r["accuracy"]) * (float(r["macs"]) / 1.5e6) ** -0.07)
    best = ss.NetworkSpec.load(tmp_path / "out" / "best_spec.json")
    assert best.stages == ss.NetworkSpec.from_dict(json.loads(
        max(study.trials, key=lambda t: t.value).user_attrs["spec"])).stages
    front = json.loads((tmp_path / "out" / "pareto.json").read_text())["front"]
    assert front and (tmp_path / "out" / "pareto.png").stat().st_size > 0


class FlakyTrainer:
    """Fails (as train_fn reports an out-of-memory error), diverges (NaN accuracy) or succeeds, in turn."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, config: dict, *, on_epoch: Any = None) -> dict:
        self.calls += 1
        if self.calls % 3 == 1:
            return {"status": "failed", "val_accuracy": None, "error": "RuntimeError: out of memory"}
        if self.calls % 3 == 2:
            return {"status": "diverged", "val_accuracy": float("nan"), "error": "loss is nan at epoch 1"}
        return SurrogateTrainer()(config, on_epoch=on_epoch)


def test_failed_and_diverged_trials_are_recorded_and_the_study_goes_on(tmp_path) -> None:
    study = run_search(_cfg(tmp_path, trials=3, prune=False, max_failed_share=1.0), FlakyTrainer(), progress=QUIET)
    states = [(t.state, t.user_attrs["status"]) for t in study.trials]
    assert states == [(TrialState.FAIL, "failed"), (TrialState.FAIL, "diverged"), (TrialState.COMPLETE, "completed")]
    assert "out of memory" in study.trials[0].user_attrs["error"]
    assert study.trials[1].user_attrs["error"] == "loss is nan at epoch 1"


def test_hard_constraint_rejects_before_training(tmp_path) -> None:
    calls: list[int] = []

    def trainer(config: dict, *, on_epoch: Any = None) -> dict:
        calls.append(ss.cost.macs(ss.NetworkSpec.from_dict(config["model"])))
        return SurrogateTrainer()(config, on_epoch=on_epoch)

    study = run_search(_cfg(tmp_path, trials=6, objective=Objective(target=1.0e6, constraint="hard"), prune=False),
                       trainer, progress=QUIET)
    rejected = [t for t in study.trials if t.user_attrs["status"] == "rejected"]
    assert rejected and all(t.user_attrs["macs"] > 1.0e6 and t.state == TrialState.PRUNED for t in rejected)
    assert len(calls) == 6 - len(rejected) and all(m <= 1.0e6 for m in calls)


def test_pruner_stops_weak_candidates_from_per_epoch_reward(tmp_path) -> None:
    epochs_run: list[int] = []

    def trainer(config: dict, *, on_epoch: Any = None) -> dict:
        seen = []
        out = SurrogateTrainer()(config, on_epoch=lambda r: seen.append(r) or on_epoch(r))
        epochs_run.append(len(seen))
        return out

    # the surrogate's candidates differ by about a point: at a floor of 0 (the median rule) that is
    # enough; at the default floor it is noise (tests/nas/test_noise.py)
    study = run_search(_cfg(tmp_path, trials=8, epochs=3, noise_floor=0.0), trainer, progress=QUIET)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.user_attrs["status"] == "pruned" for t in pruned)
    assert min(epochs_run) < 3
    for t in pruned:  # the reward of a pruned trial is that of the epoch it stopped at
        a = t.user_attrs
        assert a["reward"] == pytest.approx(a["accuracy"] * (a["macs"] / 1.5e6) ** -0.07)


def test_resume_marks_interrupted_trials_and_counts_each_once(tmp_path) -> None:
    db = str(tmp_path / "study.journal")  # the SQLite case: tests/experiments/test_cli_search.py (SIGKILL)
    run_search(_cfg(tmp_path, trials=2, prune=False, storage=db), SurrogateTrainer(), progress=QUIET)
    study = open_study(_cfg(tmp_path, trials=2, resume=True, storage=db))
    study.ask()  # a trial a killed process left RUNNING
    before = {t.number: t.value for t in study.trials if t.state == TrialState.COMPLETE}
    study = run_search(_cfg(tmp_path, trials=3, resume=True, prune=False, storage=db), SurrogateTrainer(),
                       progress=QUIET)
    assert len(finished(study)) == 3 and len(study.trials) == 4
    assert study.trials[2].state == TrialState.FAIL and study.trials[2].user_attrs["status"] == "interrupted"
    assert {n: study.trials[n].value for n in before} == before


def test_study_errors(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'study.db'}"
    open_study(_cfg(tmp_path, storage=db))
    with pytest.raises(ValueError, match="already exists.*--resume"):
        open_study(_cfg(tmp_path, storage=db))
    with pytest.raises(ValueError, match="no study 'other'"):
        open_study(_cfg(tmp_path, study_name="other", resume=True, storage=db))
    with pytest.raises(ValueError, match="different objective"):
        open_study(_cfg(tmp_path, resume=True, objective=Objective(target=2e6), storage=db))


@pytest.mark.parametrize("url", ["sqlite:////nonexistent/dir/x.db", "nosuchdb://x", "plainname"])
def test_bad_storage_is_one_line(tmp_path, url: str) -> None:
    with pytest.raises(ValueError, match="cannot open storage") as e:
        open_study(_cfg(tmp_path, storage=url))
    assert "\n" not in str(e.value)


def test_journal_storage_and_pareto_mode(tmp_path) -> None:
    obj = Objective(target=1.5e6, mode="pareto")
    cfg = _cfg(tmp_path, trials=3, strategy="nsga2", objective=obj, storage=str(tmp_path / "s.journal"),
               population_size=2)
    study = run_search(cfg, SurrogateTrainer(), progress=QUIET)
    assert len(study.directions) == 2 and all(len(t.values) == 2 for t in study.trials)
    write_results(study, tmp_path / "o", obj)
    front = json.loads((tmp_path / "o" / "pareto.json").read_text())["front"]
    pts = [(t.values[0], t.values[1]) for t in study.trials]
    for f in front:  # nothing dominates a front member
        assert not any(a >= f["accuracy"] and c <= f["macs"] and (a, c) != (f["accuracy"], f["macs"]) for a, c in pts)
    assert math.isfinite(front[0]["reward"])


def test_trainer_config_is_the_train_dict_plus_the_candidate(tmp_path) -> None:
    cfg = _cfg(tmp_path, resolution=24, train={"dataset": "shapes", "epochs": 3, "lr": 0.1})
    spec = cfg.spec({})
    assert cfg.trainer_config(spec) == {"dataset": "shapes", "epochs": 3, "lr": 0.1, "model": spec.to_dict(),
                                        "resolution": 24}
    for key in ("model", "resolution", "out_dir"):
        with pytest.raises(ValueError, match=f"train must not set '{key}'"):
            _cfg(tmp_path, train={key: 1})


def test_resume_must_agree_on_the_train_dict(tmp_path) -> None:
    db = str(tmp_path / "s.journal")
    open_study(_cfg(tmp_path, storage=db, train={"dataset": "digits", "epochs": 2}))
    open_study(_cfg(tmp_path, storage=db, resume=True, train={"dataset": "digits", "epochs": 2}))
    with pytest.raises(ValueError, match="different train.epochs"):
        open_study(_cfg(tmp_path, storage=db, resume=True, train={"dataset": "digits", "epochs": 3}))


class RaisingTrainer:
    """Trains two candidates, then raises ``error`` (a bug or a bad config in the trainer)."""

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def __call__(self, config: dict, *, on_epoch: Any = None) -> dict:
        self.calls += 1
        if self.calls == 3:
            raise self.error
        return SurrogateTrainer()(config, on_epoch=on_epoch)


@pytest.mark.parametrize("error", [TypeError("unsupported operand"), KeyError("val_acc"),
                                   ValueError("unknown training config key 'lrr'")])
def test_an_exception_from_the_trainer_stops_the_search(tmp_path, error: Exception) -> None:
    db = str(tmp_path / "s.journal")
    trainer = RaisingTrainer(error)
    with pytest.raises(type(error)) as e:
        run_search(_cfg(tmp_path, trials=4, prune=False, storage=db), trainer, progress=QUIET)
    assert e.value is error and trainer.calls == 3  # not two more failed trials
    study = open_study(_cfg(tmp_path, trials=4, resume=True, storage=db))
    states = [(t.state, t.user_attrs["status"]) for t in study.trials]
    assert states == [(TrialState.COMPLETE, "completed")] * 2 + [(TrialState.FAIL, "error")]
    assert study.trials[2].user_attrs["error"].startswith(type(error).__name__)
    assert len(finished(study)) == 2  # the errored trial does not count: a resume re-runs its slot
    study = run_search(_cfg(tmp_path, trials=4, resume=True, prune=False, storage=db), SurrogateTrainer(),
                       progress=QUIET)
    assert len(finished(study)) == 4 and len(study.trials) == 5


def test_more_failures_than_the_share_stop_the_search_naming_the_errors(tmp_path) -> None:
    def oom(config: dict, *, on_epoch: Any = None) -> dict:
        return {"status": "failed", "val_accuracy": None, "error": "RuntimeError: out of memory"}

    with pytest.raises(SearchFailed, match=r"3 of 4 trials failed \(max_failed_share 0.5\): trials 0, 1, 2 "
                                           r"failed: RuntimeError: out of memory") as e:
        run_search(_cfg(tmp_path, trials=4, max_failed_share=0.5), oom, progress=QUIET)
    assert len(e.value.study.trials) == 3
    with pytest.raises(ValueError, match="max_failed_share must be in"):
        _cfg(tmp_path, max_failed_share=1.5)


class _EpochTrainer:
    """Reports ``epochs`` epochs of a seeded accuracy (each candidate's own) and stops when told."""

    def __call__(self, config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        import random

        acc = random.Random(json.dumps(config["model"], sort_keys=True)).uniform(0.1, 0.9)
        for epoch in range(1, config["epochs"] + 1):
            if on_epoch is not None and on_epoch({"epoch": epoch, "val_accuracy": acc * epoch / config["epochs"]}):
                return {"status": "pruned", "val_accuracy": acc * epoch / config["epochs"]}
        return {"status": "completed", "val_accuracy": acc, "test_accuracy": acc}


@pytest.mark.parametrize("epochs,pruned", [(1, False), (3, True)])
def test_a_candidate_is_never_pruned_after_its_last_epoch(tmp_path, epochs: int, pruned: bool) -> None:
    cfg = _cfg(tmp_path, strategy="random", trials=16, train={"epochs": epochs})
    study = run_search(cfg, _EpochTrainer(), progress=QUIET)
    states = [t.state for t in study.trials]
    assert (TrialState.PRUNED in states) is pruned
    assert states.count(TrialState.COMPLETE) >= (16 if not pruned else 1)


def test_a_resumed_study_fills_trainer_keys_added_since_with_their_defaults(tmp_path) -> None:
    """A study stored before the trainer had ``new_key`` resumes when the key is at its default
    (``train_defaults``), and not with another value."""
    from effnas.nas import Objective, SearchConfig, get_space, open_study

    base = dict(space=get_space("tiny"), objective=Objective(target=2e6), storage=str(tmp_path / "s.journal"),
                train={"epochs": 1})
    open_study(SearchConfig(**base))
    new = {**base, "train": {"epochs": 1, "new_key": False}, "resume": True}
    with pytest.raises(ValueError, match="created with a different"):
        open_study(SearchConfig(**new))
    assert open_study(SearchConfig(**new, train_defaults={"new_key": False, "other": 1})) is not None
    with pytest.raises(ValueError, match="created with a different"):
        open_study(SearchConfig(**{**new, "train": {"epochs": 1, "new_key": True}}, train_defaults={"new_key": False}))


@pytest.mark.parametrize(("objective", "names"), [
    (Objective(target=1.5e6), ["reward"]),
    (Objective(target=1.5e6, mode="pareto"), ["accuracy", "macs"]),
    (Objective(target=5.0, metric="latency", mode="pareto"), ["accuracy", "latency_ms"]),
])
def test_a_study_names_its_values_for_the_dashboard(tmp_path, objective: Objective, names: list[str]) -> None:
    """optuna-dashboard labels a study's objective values by the names stored in it."""
    storage = optuna.storages.InMemoryStorage()
    open_study(_cfg(tmp_path, objective=objective), storage=storage)
    assert optuna.load_study(study_name="search", storage=storage).metric_names == names
    # A study created before effnas named its values gets the names when it is resumed.
    optuna.create_study(study_name="old", storage=storage, directions=objective.directions)
    assert optuna.load_study(study_name="old", storage=storage).metric_names is None
    open_study(_cfg(tmp_path, objective=objective, study_name="old", resume=True), storage=storage)
    assert optuna.load_study(study_name="old", storage=storage).metric_names == names


@pytest.mark.parametrize("pruner,cls", [("median", optuna.pruners.MedianPruner),
                                        ("asha", optuna.pruners.SuccessiveHalvingPruner),
                                        ("hyperband", optuna.pruners.HyperbandPruner)])
def test_multi_fidelity_pruners_stop_trials_at_their_rungs(tmp_path, pruner: str, cls: type) -> None:
    """search.pruner: Optuna's pruners with epochs as the resource; a stopped trial ran fewer epochs than asked,
    and with asha it stopped at a rung (1 or 3 epochs of 9, reduction factor 3)."""
    from effnas.experiments.config.choices import SEARCH_PRUNERS
    from effnas.nas.study import ETA, PRUNERS, make_pruner

    assert PRUNERS == SEARCH_PRUNERS and ETA == 3
    cfg = _cfg(tmp_path, trials=18, epochs=9, pruner=pruner)
    assert isinstance(make_pruner(cfg), cls)
    if pruner == "hyperband":
        assert make_pruner(cfg)._max_resource == 9 and make_pruner(cfg)._min_resource == 1
    epochs_run: list[int] = []

    def trainer(config: dict, *, on_epoch: Any = None) -> dict:
        seen: list[Any] = []
        out = SurrogateTrainer()(config, on_epoch=lambda r: seen.append(r) or on_epoch(r))
        epochs_run.append(len(seen))
        return out

    study = run_search(cfg, trainer, progress=QUIET)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and min(epochs_run) < 9 and len(finished(study)) == 18
    if pruner == "asha":
        assert set(epochs_run) <= {1, 3, 9}
    assert study.user_attrs["settings"]["pruner"] == pruner  # a resume with another pruner is refused


def test_a_pruner_that_cannot_act_is_refused(tmp_path) -> None:
    with pytest.raises(UserError, match="pruning is off"):
        _cfg(tmp_path, prune=False, pruner="asha")
    with pytest.raises(UserError, match="unknown pruner 'bohb'"):
        _cfg(tmp_path, pruner="bohb")
    with pytest.raises(UserError, match="a two-objective .* does not have"):
        _cfg(tmp_path, pruner="asha", objective=Objective(target=1.5e6, mode="pareto"))
    with pytest.raises(UserError, match="an estimator's scores"):
        _cfg(tmp_path, pruner="hyperband", train={"estimator": "proxy:synflow"})
    with pytest.raises(UserError, match="a benchmark table's lookups"):
        _cfg(tmp_path, pruner="median", space=get_space("nasbench201"), objective=Objective(target=5.0,
                                                                                             metric="latency"),
             train={"dataset": "cifar10"})


def test_a_study_resumes_only_with_its_pruner(tmp_path) -> None:
    db = str(tmp_path / "study.journal")
    run_search(_cfg(tmp_path, trials=2, storage=db, pruner="asha"), SurrogateTrainer(), progress=QUIET)
    with pytest.raises(UserError, match="different pruner"):
        open_study(_cfg(tmp_path, trials=3, storage=db, resume=True))
    assert len(finished(open_study(_cfg(tmp_path, trials=3, storage=db, resume=True, pruner="asha")))) == 2
