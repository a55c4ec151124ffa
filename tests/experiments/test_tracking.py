"""``train.track``: per-epoch scalars of real runs, read back with TensorBoard's own reader (and
MLflow's client where the optional package is installed); a full disk stops the tracking, not
the run; anything else is not swallowed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import load_config
from effnas.experiments.train import loop
from effnas.experiments.train.steps import track
from effnas.experiments.train.steps.track import FINAL_TAGS, TAGS
from effnas.search_spaces.common.errors import UserError

#: tiny at 16 px on a quarter of digits: 2 epochs of 5 steps, one thread (about half a second).
FAST: dict[str, Any] = {"model": "tiny", "dataset": "digits", "resolution": 16, "epochs": 2, "batch_size": 64,
                        "data_fraction": 0.25, "quiet": True, "threads": 1}


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series TensorBoard reads from ``run_dir``: tag -> [(step, value)]."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def epochs(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "epochs.jsonl").read_text().splitlines()]


def test_a_run_writes_each_epochs_scalars_for_tensorboard(tmp_path: Path) -> None:
    run = tmp_path / "family" / "members" / "phi1-seed0"
    m = loop.train_fn({**FAST, "out_dir": str(run)})
    assert m["status"] == "completed"
    assert [p.name.endswith(".effnas") for p in run.glob("events.out.tfevents.*")] == [True]
    loop.train_fn({**FAST, "epochs": 1, "out_dir": str(tmp_path / "grid/candidates/a1.2-b1.1-g1.15-seed0")})
    root = EventMultiplexer().AddRunsFromDirectory(str(tmp_path))  # tensorboard --logdir tmp_path
    assert sorted(root.Runs()) == ["family/members/phi1-seed0", "grid/candidates/a1.2-b1.1-g1.15-seed0"]
    got, lines = scalars(run), epochs(run)
    assert set(got) == set(TAGS.values()) | set(FINAL_TAGS.values())
    for key, tag in TAGS.items():  # the same numbers as epochs.jsonl, at the epochs' steps
        assert got[tag] == [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in lines], tag
    assert got["accuracy/test"] == [(2, pytest.approx(m["test_accuracy"], rel=1e-6))]
    acc = EventAccumulator(str(run))
    acc.Reload()
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text)["model"] == "tiny" and json.loads(text)["out_dir"] == str(run)


def test_track_none_writes_no_events(tmp_path: Path) -> None:
    args = ["train", "--model", "tiny", "--dataset", "digits", "--resolution", "16", "--epochs", "1", "--threads", "1",
            "--quiet", "--set", "data.data_fraction=0.25"]
    assert main([*args, "--track", "none", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "metrics.json").is_file() and not list(tmp_path.glob("events.*"))


def test_a_resumed_run_continues_its_curves_and_drops_stale_points(tmp_path: Path) -> None:
    def crash_after_one(record: dict[str, Any]) -> bool:
        raise KeyboardInterrupt  # right after epoch 1's checkpoint and its scalars

    with pytest.raises(KeyboardInterrupt):
        loop.train_fn({**FAST, "out_dir": str(tmp_path)}, on_epoch=crash_after_one)
    first = next(track.event_files(tmp_path))
    with pytest.raises(KeyboardInterrupt):  # started afresh (no resume): the old run's curves go with its files
        loop.train_fn({**FAST, "out_dir": str(tmp_path)}, on_epoch=crash_after_one)
    assert not first.exists() and len(list(track.event_files(tmp_path))) == 1
    # An interrupted process may have logged past its last checkpoint: a stale point at epoch 2.
    with track.TensorBoard(tmp_path, start_epoch=1, config={}) as stale:
        stale.epoch({"epoch": 2, "val_accuracy": 123.0})
    assert [s for s, _ in scalars(tmp_path)["accuracy/val"]] == [1, 2]
    m = loop.train_fn({**FAST, "out_dir": str(tmp_path), "resume": True})
    assert m["status"] == "completed"
    got = scalars(tmp_path)["accuracy/val"]
    assert got == [(r["epoch"], pytest.approx(r["val_accuracy"], rel=1e-6)) for r in epochs(tmp_path)]
    assert got[1][1] != 123.0


def _swap_file(monkeypatch: pytest.MonkeyPatch, file: io.FileIO, epoch: int) -> None:
    """From ``epoch`` on, the event file's writes go to ``file``."""
    original = track.TensorBoard.epoch

    def epoch_(self: track.TensorBoard, record: dict[str, Any]) -> None:
        if record["epoch"] == epoch:
            self.file = file
        original(self, record)

    monkeypatch.setattr(track.TensorBoard, "epoch", epoch_)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_stops_the_tracking_not_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _swap_file(monkeypatch, io.FileIO("/dev/full", "ab"), epoch=2)  # every write: ENOSPC, from the kernel
    m = loop.train_fn({**FAST, "out_dir": str(tmp_path)})
    assert m["status"] == "completed" and m["epochs_completed"] == 2 and m["test_accuracy"] is not None
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("effnas: warning: No space left on device: ")
    assert "events.out.tfevents." in warning[0] and "tracking stopped at epoch 2; the run goes on" in warning[0]
    assert [s for s, _ in scalars(tmp_path)["accuracy/val"]] == [1]  # nothing after the failed write


def test_other_write_errors_are_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ro").write_bytes(b"")
    _swap_file(monkeypatch, io.FileIO(tmp_path / "ro", "rb"), epoch=1)  # not a full disk: a file error
    m = loop.train_fn({**FAST, "out_dir": str(tmp_path / "run")})
    assert m["status"] == "failed" and m["error"].startswith("UnsupportedOperation: ")  # like any file error of a run
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"

    def bug(self: track.Tracker, values: dict[str, float], step: int) -> None:
        raise TypeError("a bug in a tracker")

    monkeypatch.setattr(track.TensorBoard, "_write", bug)
    with pytest.raises(TypeError, match="a bug in a tracker"):
        loop.train_fn({**FAST, "epochs": 1, "out_dir": str(tmp_path / "bug")})


def test_mlflow_chosen_but_not_installed_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(UserError) as e:
        load_config("demo", overrides=["train.track=mlflow"])
    assert str(e.value) == ("train.track = 'mlflow' needs the mlflow package, which is not installed: pip install "
                            "mlflow, or use train.track = 'tensorboard' (in --set)")


def test_mlflow_tracks_a_run_and_its_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow")  # optional: not an effnas dependency
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    def interrupt(record: dict[str, Any]) -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.train_fn({**FAST, "out_dir": "runs/a", "track": "mlflow"}, on_epoch=interrupt)
    run_id = json.loads((tmp_path / "runs/a/mlflow.json").read_text())["run_id"]
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.status == "FAILED"  # the interrupt left the block with an exception
    m = loop.train_fn({**FAST, "out_dir": "runs/a", "track": "mlflow", "resume": True})
    assert json.loads((tmp_path / "runs/a/mlflow.json").read_text())["run_id"] == run_id  # the same MLflow run
    run = client.get_run(run_id)
    assert run.info.run_name == "runs/a" and run.info.status == "FINISHED" and run.data.params["model"] == "tiny"
    history = [(x.step, x.value) for x in client.get_metric_history(run_id, "accuracy/val")]
    assert history == [(r["epoch"], pytest.approx(r["val_accuracy"])) for r in epochs(tmp_path / "runs/a")]
    assert run.data.metrics["accuracy/test"] == pytest.approx(m["test_accuracy"])
    assert not list((tmp_path / "runs/a").glob("events.*"))



def test_a_full_mlflow_store_stops_the_tracking_not_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def full(self: Any, run_id: str, metrics: Any = (), **kw: Any) -> None:
        if metrics:  # the parameters are logged; the first epoch's metrics meet a full disk
            raise mlflow.exceptions.MlflowException("(sqlite3.OperationalError) database or disk is full")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", full)
    m = loop.train_fn({**FAST, "out_dir": str(tmp_path / "run"), "track": "mlflow"})
    assert m["status"] == "completed" and m["epochs_completed"] == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"effnas: warning: No space left on device: the MLflow store {uri}: MLflow tracking stopped at epoch 1; the "
        "run goes on (free some space to track the next runs)")
