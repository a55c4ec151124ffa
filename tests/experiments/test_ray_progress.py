"""Progress under Ray: the driver hears every trial's start, epochs and end (a Tune callback), and a
family trained with --workers 2 prints the same lines as in this process. Real local Ray: slow."""

from __future__ import annotations

import io
import re
import sys
from typing import Any

import pytest

from effnas.experiments.cli.main import main
from effnas.experiments.cluster.ray_backend import executor, run_configs
from effnas.search_spaces.common.progress import Console, RunBoard


def epochs_trainer(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """Two epochs of a real (cheap) computation: the MACs of the config's model, reported per epoch."""
    import effnas.search_spaces as ss
    from effnas.search_spaces.counts import counts

    macs = counts(ss.get(config["model"]), config["resolution"]).macs
    for epoch in (1, 2):
        if on_epoch is not None:
            on_epoch({"epoch": epoch, "train_loss": 1.0 / epoch, "val_accuracy": 0.25 * epoch})
    return {"status": "completed", "val_accuracy": 0.5, "macs": macs}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def started(self, index: int) -> None:
        self.events.append(("started", index))

    def epoch(self, index: int, record: dict[str, Any]) -> None:
        self.events.append(("epoch", index, record["epoch"], record["val_accuracy"]))

    def finished(self, index: int, metrics: dict[str, Any]) -> None:
        self.events.append(("finished", index, metrics["status"], metrics["macs"]))


@pytest.mark.slow
def test_the_driver_hears_each_trial_start_epochs_and_end() -> None:
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers get this module's trainer
    configs = [{"model": "tiny", "resolution": r} for r in (16, 24, 32)]
    rec = Recorder()
    out = run_configs(epochs_trainer, configs, workers=2, cpus_per_trial=1, events=rec)
    for i, result in enumerate(out):
        mine = [e for e in rec.events if e[1] == i]
        assert mine == [("started", i), ("epoch", i, 1, 0.25), ("epoch", i, 2, 0.5),
                        ("finished", i, "completed", result["macs"])]
    # the executor of the stages passes the board through to the same callback
    board_out = io.StringIO()
    board = RunBoard(Console(board_out, live=False), workers=2)
    board.begin(["r16", "r24"], epochs=2)
    executor(2, cpus_per_trial=1)(epochs_trainer, configs[:2], events=board)
    lines = board_out.getvalue().splitlines()
    assert sorted(line for line in lines if line.startswith("[")) == [line for line in lines if line.startswith("[")]
    assert len([line for line in lines if "epoch 2/2  loss 0.500  val 50.0 %" in line]) == 2
    first = r"\[1/2\] r(16|24)  val 50\.0 %  (<1|\d+) s \| ETA (<1|\d+) s"  # a quiet machine: '<1 s'
    assert any(re.fullmatch(first, line) for line in lines), lines


@pytest.mark.slow
def test_a_family_with_two_workers_prints_the_same_lines(tmp_path, capsys) -> None:
    args = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0",
            "--no-baselines", "--train", "--dataset", "digits", "--epochs", "1", "--seeds", "2", "--data-fraction",
            "0.3", "--workers", "2", "--cpus-per-trial", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert re.search(r"^2 runs x 1 epoch, about (<1|\d+) s on this machine \(measured: \d+ img/s for the base tiny, "
                     r"2 runs at a time\)$", err, re.M), err
    assert len(re.findall(r"^  compound phi0 seed[01]  epoch 1/1  loss \d\.\d{3}  val \d+\.\d %$", err, re.M)) == 2
    assert re.search(r"^\[1/2\] compound phi0 seed[01]  val \d+\.\d %  (<1|\d+) s \| ETA (<1|\d+) s$", err, re.M), err
    assert re.search(r"^\[2/2\] compound phi0 seed[01]  val \d+\.\d %  \d+ s \| 2 runs in \d+ s$", err, re.M), err


@pytest.mark.slow
def test_ctrl_c_on_a_ray_family_says_resume_and_resume_finishes(tmp_path) -> None:
    """SIGINT to `effnas family --workers 2` once a run has printed an epoch: exit 130 with one line naming
    --resume (no traceback, no "Tuner.restore", no trial reported as failed); --resume then finishes every run."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "effnas", "family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma",
           "1.15", "--phis", "0-1", "--no-baselines", "--train", "--dataset", "digits", "--epochs", "6", "--seeds",
           "2", "--workers", "2", "--cpus-per-trial", "1", "--yes", "--out", str(tmp_path / "fam")]
    env = {**os.environ, "PYTHONPATH": str(root)}
    log = tmp_path / "err.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 300
        while "epoch 1/6" not in log.read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    text = log.read_text()
    assert text.strip().splitlines()[-1] == "effnas: interrupted; finished results are kept (re-run with --resume)"
    assert "Traceback" not in text and "Tuner.restore" not in text and "raised" not in text, text[-3000:]
    subprocess.run([*cmd, "--resume"], cwd=root, env=env, check=True, capture_output=True, timeout=600)
    df = pd.read_csv(tmp_path / "fam" / "family.csv")
    assert len(df) == 4 and set(df.status) == {"completed"} and set(df.epochs_completed) == {6}
