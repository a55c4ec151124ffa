"""The console board of a batch of runs: the finished-run line with its ETA, the status line of the
runs in flight on a terminal, plain epoch lines elsewhere."""

from __future__ import annotations

import io
import re

from effnas.search_spaces.common.progress import Console, RunBoard, eta, eta_by_cost, run_line


def _board(live: bool, workers: int = 1) -> tuple[RunBoard, io.StringIO]:
    out = io.StringIO()
    board = RunBoard(Console(out, live=live), workers=workers)
    board.begin(["phi0 seed0", "phi0 seed1", "phi1 seed0", "phi1 seed1"], done=1, epochs=3)
    return board, out


def test_plain_lines_without_a_terminal_count_and_give_an_eta() -> None:
    board, out = _board(live=False, workers=2)
    board.started(0)
    board.epoch(0, {"epoch": 1, "train_loss": 2.0, "val_accuracy": 0.25})
    board.started(1)
    board.finished(0, {"status": "completed", "val_accuracy": 0.5})
    board.finished(1, {"status": "oom"})
    board.finished(1, {"status": "completed", "val_accuracy": 0.9})  # a retried trial's report: not counted again
    board.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "  phi0 seed0  epoch 1/3  loss 2.000  val 25.0 %"
    # 5 runs, 1 finished earlier: the first finished run is [2/5]; 3 left at 2 workers are 2 rounds.
    assert re.fullmatch(r"\[2/5\] phi0 seed0  val 50\.0 %  <1 s \| ETA <1 s", lines[1]), lines[1]
    assert lines[2].startswith("[3/5] phi0 seed1  oom  <1 s | ETA") and len(lines) == 3


def test_a_terminal_gets_a_status_line_of_the_runs_in_flight() -> None:
    board, out = _board(live=True)
    board.started(2)
    board.epoch(2, {"epoch": 2, "val_accuracy": 0.5})
    assert out.getvalue().endswith("\r\x1b[Krunning 1: phi1 seed0 epoch 2/3  val 50.0 %")
    board.started(3)
    board.finished(2, {"status": "completed", "val_accuracy": 0.625, "train_seconds": 3.0})
    # the status line is cleared, the finished line written on a line of its own, the status redrawn
    tail = out.getvalue().split("val 50.0 % · phi1 seed1 starting", 1)[1]
    assert re.fullmatch(r"\r\x1b\[K\[2/5\] phi1 seed0  val 62\.5 %  <1 s \| ETA <1 s\n"
                        r"\r\x1b\[Krunning 1: phi1 seed1 starting", tail), tail
    board.close()
    assert out.getvalue().endswith("starting\r\x1b[K")  # the status line is gone; the cursor at a fresh line


def test_eta_is_the_mean_time_of_finished_runs_per_round_of_workers() -> None:
    assert eta([10.0, 20.0], remaining=4, workers=2) == 30.0
    assert eta([10.0], remaining=3, workers=2) == 20.0  # 2 rounds
    assert eta([10.0], remaining=0) == 0.0
    board, out = _board(live=False)
    board.finished(3, {"status": "completed", "train_seconds": 120.0})  # never seen starting: its own time
    assert out.getvalue().strip() == "[2/5] phi1 seed1  2 min | ETA 6 min"


def test_with_costs_the_eta_weighs_the_runs_left_by_their_cost() -> None:
    """A family whose small members finish first: counting runs alike would promise the large ones
    the small ones' pace (the CIFAR-10 budget run said 'ETA 8 min' for 12 min of phi 2)."""
    assert eta_by_cost([60.0, 60.0], [1.0, 1.0], [4.0, 4.0], workers=2) == 240.0
    assert eta_by_cost([60.0], [1.0], [4.0, 1.0, 1.0], workers=2) == 240.0  # the largest run left is the floor
    assert eta_by_cost([60.0], [1.0], [1.0, 1.0, 1.0, 1.0], workers=2) == 120.0
    assert eta_by_cost([], [], [1.0]) != eta_by_cost([], [], [1.0])  # NaN: nothing finished to go by
    out = io.StringIO()
    board = RunBoard(Console(out, live=False), workers=2)
    board.begin(["phi0 seed0", "phi0 seed1", "phi2 seed0", "phi2 seed1"], costs=[1.6e6, 1.6e6, 6.4e6, 6.4e6])
    board.finished(0, {"status": "completed", "train_seconds": 240.0})
    board.finished(1, {"status": "completed", "train_seconds": 240.0})
    assert out.getvalue().splitlines()[-1] == "[2/4] phi0 seed1  4 min | ETA 16 min"  # not 4 min
    uncosted = io.StringIO()
    board = RunBoard(Console(uncosted, live=False), workers=2)
    board.begin(["a", "b", "c"], costs=[1.0, 0.0, 2.0])  # a cost that is not positive: runs counted alike
    board.finished(0, {"status": "completed", "train_seconds": 60.0})
    assert uncosted.getvalue().strip() == "[1/3] a  60 s | ETA 60 s"  # 2 left, 2 workers: one round


def test_the_last_run_says_how_long_the_batch_took() -> None:
    out = io.StringIO()
    board = RunBoard(Console(out, live=False))
    board.begin(["a"])
    board.finished(0, {"status": "completed", "val_accuracy": 0.1, "train_seconds": 5})
    assert out.getvalue() == "[1/1] a  val 10.0 %  5 s | 1 run in <1 s\n"
    assert run_line(1, 2, "b", accuracy=float("nan")) == "[1/2] b"
