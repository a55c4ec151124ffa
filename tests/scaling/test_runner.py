from __future__ import annotations

import pandas as pd
import pytest

import effnas.search_spaces as ss
from effnas.scaling import family, read_result, run_jobs, train_members
from effnas.scaling.family import member_jobs
from effnas.scaling.runner import Job

CONFIG = {"dataset": "test", "epochs": 2}


def test_failed_members_are_retried_and_finished_ones_are_not(tmp_path, make_evaluator) -> None:
    members = family(ss.get("tiny"), range(3))
    flaky = make_evaluator(fail_on={"phi2-seed1"})
    t = train_members(members, flaky, train_config=CONFIG, out_dir=tmp_path, seeds=(0, 1))
    assert len(flaky.calls) == 6
    assert t.status.tolist().count("failed") == 1 and "injected failure" in t.error.dropna().iloc[0]
    assert read_result(tmp_path / "members/phi2-seed1") is None
    csv = pd.read_csv(tmp_path / "family.csv")
    assert len(csv) == 6
    assert {"phi", "depth", "width", "resolution", "params", "macs", "val_accuracy", "seed"} <= set(csv)
    mtime = (tmp_path / "members/phi0-seed0/result.json").stat().st_mtime_ns

    healthy = make_evaluator()
    t2 = train_members(members, healthy, train_config=CONFIG, out_dir=tmp_path, seeds=(0, 1), resume=True)
    assert [c["out_dir"].rsplit("/", 2)[-2:] for c in healthy.calls] == [["members", "phi2-seed1"]]
    assert healthy.calls[0]["resume"] is True
    assert set(t2.status) == {"completed"}
    assert (tmp_path / "members/phi0-seed0/result.json").stat().st_mtime_ns == mtime
    # The same accuracies come back from the store as were trained.
    assert t2.val_accuracy.iloc[0] == t.val_accuracy.iloc[0]


def test_a_raising_trainer_stops_the_batch_and_keeps_finished_runs(tmp_path, make_evaluator) -> None:
    """A trainer that raises (bad data, a bug) is not a run status: the batch stops with the error."""
    members = family(ss.get("tiny"), range(3))

    class Buggy:
        def __init__(self) -> None:
            self.inner = make_evaluator()

        def __call__(self, config, *, on_epoch=None):
            if "phi1-" in config["out_dir"]:
                raise TypeError("a bug")
            return self.inner(config, on_epoch=on_epoch)

    with pytest.raises(TypeError, match="a bug"):
        train_members(members, Buggy(), train_config=CONFIG, out_dir=tmp_path)
    assert read_result(tmp_path / "members/phi0-seed0") is not None
    assert read_result(tmp_path / "members/phi1-seed0") is None


def test_a_run_directory_of_another_config_is_refused(tmp_path, evaluator) -> None:
    members = family(ss.get("tiny"), [0])
    train_members(members, evaluator, train_config=CONFIG, out_dir=tmp_path)
    with pytest.raises(ValueError, match="different 'epochs'"):
        train_members(members, evaluator, train_config={**CONFIG, "epochs": 3}, out_dir=tmp_path, resume=True)


def test_executor_receives_all_pending_configs_in_order(tmp_path, evaluator) -> None:
    seen: list[list[str]] = []

    def executor(trainer, configs):
        seen.append([c["out_dir"] for c in configs])
        return [trainer(c) for c in reversed(configs)][::-1]

    spec = ss.get("tiny")
    jobs = [Job(f"j{i}", spec, seed=i, info={"i": i}) for i in range(3)]
    t = run_jobs(jobs, evaluator, train_config=CONFIG, out_dir=tmp_path, executor=executor)
    assert len(seen) == 1 and [p.rsplit("/", 1)[-1] for p in seen[0]] == ["j0", "j1", "j2"]
    assert t.i.tolist() == [0, 1, 2] and t.seed.tolist() == [0, 1, 2]
    assert t.val_accuracy.nunique() == 3  # seeds differ


def test_duplicate_keys_refused(tmp_path, evaluator) -> None:
    spec = ss.get("tiny")
    with pytest.raises(ValueError, match="duplicate run keys"):
        run_jobs([Job("a", spec), Job("a", spec)], evaluator, train_config=CONFIG, out_dir=tmp_path)


def test_a_key_added_to_the_trainer_later_counts_with_its_default(tmp_path, evaluator) -> None:
    """A run stored before the trainer had ``new_key``: resuming with the key at its default reuses
    the run (nothing trained again); with another value, or no default known, it is another config."""
    jobs = [Job("m", family(ss.get("tiny"), [0])[0].spec, 0)]
    run_jobs(jobs, evaluator, train_config=CONFIG, out_dir=tmp_path)
    new = {**CONFIG, "new_key": False}
    with pytest.raises(ValueError, match="different 'new_key'"):
        run_jobs(jobs, evaluator, train_config=new, out_dir=tmp_path, resume=True)
    again = run_jobs(jobs, evaluator, train_config=new, out_dir=tmp_path, resume=True, defaults={"new_key": False})
    assert len(evaluator.calls) == 1 and again.iloc[0]["status"] == "completed"
    with pytest.raises(ValueError, match="different 'new_key'"):
        run_jobs(jobs, evaluator, train_config={**CONFIG, "new_key": True}, out_dir=tmp_path, resume=True,
                 defaults={"new_key": False})


class _Recorder:
    """A RunProgress that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def begin(self, labels, *, done=0, epochs=None, costs=None) -> None:
        self.events.append(("begin", list(labels), done, epochs))
        self.costs = costs

    def started(self, index) -> None:
        self.events.append(("started", index))

    def epoch(self, index, record) -> None:
        self.events.append(("epoch", index, record["epoch"]))

    def finished(self, index, metrics) -> None:
        self.events.append(("finished", index, metrics["status"]))

    def close(self) -> None:
        self.events.append(("close",))


def test_progress_hears_each_run_start_epoch_and_end_in_order(tmp_path, make_evaluator) -> None:
    """The sequential executor tells the progress every run's start, each epoch and its end, by the
    run's index among those trained now; finished runs of an earlier call are counted as done."""

    class TwoEpochs:
        def __init__(self) -> None:
            self.inner = make_evaluator(fail_on={"phi1-seed0"})

        def __call__(self, config, *, on_epoch=None):
            for e in (1, 2):
                assert on_epoch is not None and on_epoch({"epoch": e, "val_accuracy": 0.1 * e}) is False
            return self.inner(config, on_epoch=on_epoch)

    members = family(ss.get("tiny"), range(2))
    rec = _Recorder()
    jobs_kw = dict(train_config={**CONFIG, "epochs": 2}, out_dir=tmp_path)
    jobs = member_jobs(members, (0, 1))
    # seed-major: a family stopped part-way has whole curves with fewer seeds
    assert [j.label for j in jobs] == ["compound phi0 seed0", "compound phi1 seed0", "compound phi0 seed1",
                                       "compound phi1 seed1"]
    run_jobs(jobs, TwoEpochs(), progress=rec, **jobs_kw)
    assert rec.events[0] == ("begin", [j.label for j in jobs], 0, 2) and rec.events[-1] == ("close",)
    assert rec.costs == [j.info["macs"] for j in jobs] and rec.costs[1] > rec.costs[0]  # phi 1 costs more: the ETA
    assert rec.events[1:6] == [("started", 0), ("epoch", 0, 1), ("epoch", 0, 2), ("finished", 0, "completed"),
                               ("started", 1)]
    assert ("finished", 1, "failed") in rec.events and len(rec.events) == 2 + 4 * 4
    rec2 = _Recorder()
    run_jobs(jobs, TwoEpochs(), progress=rec2, resume=True, **jobs_kw)  # phi1-seed0 failed: trained again
    assert rec2.events[0] == ("begin", ["compound phi1 seed0"], 3, 2)
