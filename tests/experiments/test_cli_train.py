from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from effnas.experiments.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def effnas(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "effnas", *args], capture_output=True, text=True,
                          env=ENV, cwd=ROOT, timeout=timeout)


def epochs_of(out: Path) -> list[int]:
    p = out / "epochs.jsonl"
    return [json.loads(x)["epoch"] for x in p.read_text().splitlines()] if p.is_file() else []


def test_cli_diverged_run_exits_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--model", "tiny", "--dataset", "digits", "--lr", "1e6", "--epochs", "2",
               "--resolution", "16", "--threads", "1", "--out", str(tmp_path), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.strip() == f"effnas: run diverged at epoch 1 (non-finite loss; lower --lr); results in {tmp_path}"
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "diverged"


def test_cli_trains_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--model", "tiny", "--dataset", "digits", "--epochs", "1", "--resolution", "16",
               "--data-fraction", "0.3", "--threads", "1", "--out", str(tmp_path)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "tiny on digits at 16 px: test accuracy" in captured.out
    assert "img/s" in captured.err  # the progress bar
    assert main(["train", "--model", "tiny", "--dataset", "digits", "--epochs", "1", "--resolution", "16",
                 "--data-fraction", "0.3", "--threads", "1", "--out", str(tmp_path), "--quiet"]) == 0
    assert "already completed; not retrained" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "cifar10:/no/such/dir"], "cifar10 directory '/no/such/dir' does not exist"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--dataset", "digits", "--resume"], "--resume needs --out"),
    (["--dataset", "digits", "--epochs", "0"], "train.epochs must be a finite number > 0"),
    (["--dataset", "digits", "--config", "paper", "--set", "train.lr=-1"], "train.lr must be"),
])
def test_cli_bad_input_is_one_line_exit_2(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "tiny", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_cli_bad_input_in_a_real_process_has_no_traceback() -> None:
    r = effnas("train", "--model", "tiny", "--dataset", "cifar100:/no/such/dir")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("effnas: error: cifar100 directory '/no/such/dir' does not exist")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_records_every_epoch_once(tmp_path: Path) -> None:
    """Really kill a training process (SIGKILL) in the middle of an epoch, then --resume it."""
    out = tmp_path / "run"
    args = ["train", "--model", "tiny", "--dataset", "digits", "--epochs", "6", "--batch-size", "32",
            "--resolution", "24", "--threads", "1", "--out", str(out), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "effnas", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(epochs_of(out)) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first = epochs_of(out)
        assert first, "the run never finished an epoch"
        t_epoch = json.loads((out / "epochs.jsonl").read_text().splitlines()[0])["seconds"]
        time.sleep(min(0.4 * t_epoch, 2.0))  # into the next epoch
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    killed_at = epochs_of(out)
    assert killed_at == list(range(1, len(killed_at) + 1)) and len(killed_at) < 6

    r = effnas("train", *args[1:], "--resume")
    assert r.returncode == 0, r.stderr
    assert epochs_of(out) == [1, 2, 3, 4, 5, 6]
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "completed" and m["epochs_completed"] == 6
    assert not list(out.glob(".*.tmp"))


@pytest.mark.slow
def test_cli_tiny_on_digits_reaches_95_percent(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    r = effnas("train", "--model", "tiny", "--dataset", "digits", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    print(f"tiny/digits: test {m['test_accuracy']:.4f} in {time.perf_counter() - t0:.1f} s wall")
    assert m["test_accuracy"] >= 0.95


@pytest.mark.slow
def test_small_mbconv_on_mnist5k_reaches_95_percent(tmp_path: Path) -> None:
    from effnas.experiments.train.loop import train_fn

    m = train_fn({"model": "tiny", "dataset": "mnist5k", "resolution": 28, "epochs": 15, "quiet": True, "threads": 1,
                  "out_dir": str(tmp_path)})
    print(f"tiny/mnist5k: test {m['test_accuracy']:.4f} in {m['train_seconds']:.1f} s training")
    assert m["status"] == "completed" and m["test_accuracy"] >= 0.95
