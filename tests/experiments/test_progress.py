"""Live progress of the commands that train: the per-run lines of a real tiny family, the estimate
said (and asked about) before training, and the training bar's epochs."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest
import torch

import effnas.search_spaces as ss
from effnas.experiments.cli.commands import _progress as console
from effnas.experiments.cli.main import main
from effnas.experiments.data.datasets import BUILTIN_POOL, load_dataset, pool_size
from effnas.experiments.pipeline.estimate import ASK_ABOVE, EVAL_SHARE, Estimate, Work, estimate, stage_work
from effnas.experiments.pipeline.plan import family_plan
from effnas.experiments.pipeline.resolved import Runtime
from effnas.experiments.train.steps.progress import Progress

FAMILY = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0",
          "--no-baselines", "--train", "--dataset", "digits", "--epochs", "1", "--data-fraction", "0.3",
          "--set", "train.threads=1", "--set", "train.batch_size=64"]
RUN = re.compile(r"\[(\d)/2\] compound phi0 seed(\d)  val \d+\.\d %  (?:<1|\d+) s \| (ETA (?:<1|\d+) s|2 runs in "
                 r"(?:<1|\d+) s)")


def test_a_tiny_family_prints_a_line_per_run_and_per_epoch_without_carriage_returns(tmp_path, capsys) -> None:
    """A real family (tiny, digits, 1 epoch, 2 seeds) says its estimate, each run's epoch and a
    counted line per run with its ETA on stderr (not a terminal here: plain lines), and the results
    on stdout; a third seed resumed beside them with --quiet trains silently."""
    assert main([*FAMILY, "--seeds", "2", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert re.fullmatch(r"2 runs x 1 epoch, about (<1|\d+) s on this machine \(measured: [\d.]+ img/s for the base tiny"
                        r"( at batch \d+ of the runs' 64)?\)", lines[0]), lines[0]
    assert re.fullmatch(r"  compound phi0 seed0  epoch 1/1  loss \d\.\d{3}  val \d+\.\d %", lines[1]), lines[1]
    runs = [m.groups() for line in lines if (m := RUN.fullmatch(line))]
    assert [r[:2] for r in runs] == [("1", "0"), ("2", "1")]
    assert runs[0][2].startswith("ETA") and runs[1][2].startswith("2 runs in")
    assert len(lines) == 5 and "[1/2]" not in out and "compound     0" in out
    assert main([*FAMILY, "--seeds", "3", "--resume", "--quiet", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == "" and (tmp_path / "members" / "phi0-seed2" / "result.json").is_file()


class _Answer(io.StringIO):
    """A terminal's stdin that answers ``text``."""

    def isatty(self) -> bool:
        return True


def _estimate(seconds: float) -> Estimate:
    """An estimate of 26 runs x 30 epochs that takes ``seconds`` (at 100 img/s, 1 worker)."""
    images = seconds * 100 / 30 / 26  # per run and epoch, at the base's MACs
    train = round(images / (1 + EVAL_SHARE * 0.25))
    return Estimate((Work("family", 26, 30, 26 * 1000, train, round(train * 0.25), "digits"),), "b0", 1000, 100.0)


def test_the_estimate_says_runs_epochs_and_time_from_the_measured_base() -> None:
    est = _estimate(3 * 3600)
    assert est.text() == "26 runs x 30 epochs, about 3.0 h on this machine (measured: 100 img/s for the base b0)"
    assert est.long and not _estimate(ASK_ABOVE - 60).long
    two = Estimate(est.work, "b0", 1000, 100.0, workers=2)
    assert two.seconds == pytest.approx(est.seconds / 2) and "2 runs at a time" in two.text()
    unknown = Estimate((Work("family", 2, 3, 2000, None, None, "shards:/data"),), "b0", 1000, 100.0)
    assert unknown.seconds is None and "the size of shards:/data is not known" in unknown.text()
    small = Estimate(est.work, "b0", 1000, 100.0, batch=2, run_batch=128)  # a large base, measured at batch 2
    assert small.text().endswith("(measured: 100 img/s for the base b0 at batch 2 of the runs' 128)")


@pytest.mark.parametrize(("seconds", "stdin", "yes", "quiet", "goes", "said"), [
    (3 * 3600, "n\n", False, False, False, "continue with --yes or shrink with --epochs\ncontinue? [y/N] "),
    (3 * 3600, "y\n", False, True, True, "continue? [y/N] "),  # a question is asked even when quiet
    (3 * 3600, None, False, False, True, "(not asking: stdin is not a terminal; shrink with --epochs)\n"),
    (3 * 3600, "n\n", True, False, True, "about 3.0 h on this machine (measured: 100 img/s for the base b0)\n"),
    (60, "n\n", False, False, True, "about 60 s on this machine (measured: 100 img/s for the base b0)\n"),
    (60, "n\n", False, True, True, None),
])
def test_a_long_estimate_is_asked_about_only_on_a_terminal(seconds, stdin, yes, quiet, goes, said) -> None:
    out = io.StringIO()
    args = argparse.Namespace(yes=yes, quiet=quiet)
    stream = _Answer(stdin) if stdin is not None else io.StringIO("y\n")  # StringIO: not a terminal
    assert console.go_ahead(_estimate(seconds), args, shrink="--epochs", stdin=stream, stream=out) is goes
    assert (said in out.getvalue()) if said is not None else out.getvalue() == ""


def test_the_measured_estimate_is_cheap_and_follows_the_cost_model(tmp_path) -> None:
    from effnas.experiments.config.schema import load_config
    from effnas.scaling import PAPER

    cfg = load_config("demo", overrides=["data.dataset=digits", "train.model=tiny", "family.phis=[0,1]",
                                         "train.threads=1", "run.workers=1", "family.seeds=[0]"])
    base = ss.get("tiny")
    fp = family_plan(cfg, base, PAPER)
    w = stage_work("family", fp)
    est = estimate([w], base, fp.train_config, Runtime())
    assert w.runs == len(fp.jobs) and w.train == round((1438 - 144) * 0.8) and w.val == 144
    per_mac = 1 / (est.images_per_second * est.base_macs)
    assert est.seconds == pytest.approx(w.epochs * (w.train + w.val / 3) * w.macs * per_mac)
    assert estimate([stage_work("family", fp, out=tmp_path, resume=True)], base, fp.train_config,
                    Runtime()).runs == w.runs  # nothing finished there yet


def test_pool_sizes_known_without_loading_are_the_loaded_ones() -> None:
    assert pool_size("digits") == len(load_dataset("digits").pool) == BUILTIN_POOL["digits"]
    assert pool_size("cifar10:/nowhere") == 50_000 and pool_size("shards:/nowhere") is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist5k", "shapes"])
def test_pool_sizes_of_the_larger_builtin_sets(name: str) -> None:
    assert pool_size(name) == len(load_dataset(name).pool)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_training_bar_shows_validation_and_a_log_gets_a_line_per_epoch() -> None:
    record = {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.875, "seconds": 3.0, "images_per_second": 400.0}
    log = io.StringIO()
    p = Progress(10, "tiny 32px", end_epoch=3, stream=log)
    p.step(0, 5, 2, loss_sum=torch.tensor(1.0), correct=torch.tensor(1), seen=2, t0=0.0)
    p.epoch(record)
    p.close()
    assert log.getvalue() == "tiny 32px  epoch 2/3  loss 0.500  val 87.5 %  3 s  400 img/s\n"
    term = _Terminal()
    bar = Progress(10, "tiny 32px", end_epoch=3, stream=term)
    bar.epoch(record)
    bar.step(0, 5, 3, loss_sum=torch.tensor(1.0), correct=torch.tensor(1), seen=2, t0=0.0)
    bar.bar.refresh()
    bar.close()
    assert "\r" in term.getvalue() and "epoch 3/3 loss 0.500 acc 0.500" in term.getvalue()
    assert term.getvalue().rstrip().endswith("| val 87.5 %]")
    Progress(10, "quiet", end_epoch=3, enabled=False, stream=log).epoch(record)
    assert log.getvalue().count("\n") == 1


def test_quiet_builds_no_board() -> None:
    assert console.board(argparse.Namespace(quiet=True), Runtime()) is None
    assert console.board(argparse.Namespace(quiet=False), Runtime(workers=3)).workers == 3
    assert Path(console.__file__).name == "_progress.py"


def test_declining_a_long_estimate_on_a_terminal_trains_and_writes_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", _Answer("n\n"))
    args = [*FAMILY, "--epochs", "100000", "--seeds", "2", "--out", str(tmp_path / "f")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert re.search(r"^2 runs x 100000 epochs, about [\d.,]+ (h|days) on this machine .* — continue with --yes or "
                     r"shrink with --epochs, --seeds or --phis\ncontinue\? \[y/N\] effnas: error: nothing trained: "
                     r"the estimate was declined$", err.strip(), re.M), err
    assert not (tmp_path / "f" / "members").exists() and not (tmp_path / "f" / "specs").exists()
