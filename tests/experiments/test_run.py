"""``effnas run``: the whole pipeline on embedded data at toy scale, resume, bad config."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from effnas.experiments.cli.main import main

TOY = [
    "--set", "search.trials=2", "--set", "search.space=tiny", "--set", "search.target=1.5e6",
    "--set", "search.train.epochs=1", "--set", "search.estimator=train", "--set", "search.strategy=random",
    "--set", "data.dataset=digits", "--set", "family.phis=[0,1]",
    "--set", "family.seeds=[0]", "--set", "family.baseline_phis=[1]", "--set", "grid.step=0.3",
    "--set", "grid.epochs=1", "--set", "family.epochs=1", "--set", "train.threads=1", "--set", "run.workers=1",
]


def _results(run: Path) -> dict[str, float]:
    return {str(p.relative_to(run)): p.stat().st_mtime for p in (run / "family").rglob("result.json")}


@pytest.mark.slow  # over 10 s: the default suite stays under 10 min (make test-slow runs it)
def test_run_end_to_end_then_resume_trains_nothing_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["run", "demo", *TOY, "--out", str(run)]) == 0
    for f in ("search/trials.csv", "search/best_spec.json", "baseline.json", "grid/grid.csv",
              "grid/coefficients.json", "family/family.csv", "curves/accuracy_vs_macs.png", "report.md",
              "report.html"):
        assert (run / f).exists(), f
    stages = json.loads((run / "stages.json").read_text())
    assert all(stages[s]["status"] == "done" for s in ("search", "grid", "family", "curves", "report"))
    before = _results(run)
    # phi 0, phi 1, and depth/width/resolution baselines at phi 1, one run per distinct network (a
    # baseline that builds the same network as a member shares its run: family.csv names it)
    table = pd.read_csv(run / "family" / "family.csv")
    shared = int(table["same_network_as"].notna().sum()) if "same_network_as" in table else 0
    assert len(table) == 5 and len(before) == 5 - shared
    # Re-running without --resume refuses to touch the finished run.
    assert main(["run", "demo", *TOY, "--out", str(run)]) == 2
    # With --resume every stage is skipped (the report is rewritten) and no run is trained again.
    assert main(["run", "demo", *TOY, "--out", str(run), "--resume"]) == 0
    assert _results(run) == before
    # A different config cannot resume this run.
    assert main(["run", "demo", *TOY, "--set", "family.epochs=2", "--out", str(run), "--resume"]) == 2


def test_plan_says_each_stage_and_prints_what_each_run_trains_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "demo", *TOY, "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "experiment demo into runs/demo (in this process)"
    assert lines[1].startswith("  search     2 trials of random in tiny, trainer train x 1 epoch, about ")
    assert lines[2].startswith("  grid       1 run: 1 of 1 candidates within the cost tolerance x 1 seed x 1 epoch, "
                               "about ")
    assert lines[3].startswith("  family     5 runs: 5 networks x 1 seed x 1 epoch, about ")
    assert re.fullmatch(r"  total      8 runs x 1 epoch, about (<1|\d+) (s|min) on this machine \(measured: "
                        r"[\d.]+ img/s for the base efficientnet_nano( at batch \d+ of the runs' 64)?\)",
                        lines[4]), lines[4]
    assert lines[5].endswith("effnas run demo --plan --json") and len(lines) == 6
    assert main(["run", "demo", *TOY, "--json"]) == 2 and "give it with --plan" in capsys.readouterr().err
    assert main(["run", "demo", *TOY, "--plan", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["search"]["candidate"]["epochs"] == 1 and d["search"]["trials"] == 2
    assert {r["epochs"] for r in d["grid"]["runs"]} == {1}
    assert len(d["family"]["runs"]) == 5 and {r["seed"] for r in d["family"]["runs"]} == {0}


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "effnas", "run", "demo", "--set", "search.trails=3",
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "did you mean 'search.trials'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_sigkill_during_family_then_resume_retrains_no_finished_member(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [sys.executable, "-m", "effnas", "run", "demo", *TOY, "--set", "family.seeds=[0,1]",
            "--set", "family.epochs=2", "--out", str(run)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and len(_results(run)) < 2:
            time.sleep(0.2)
        assert len(_results(run)) >= 2, "family stage never finished a member"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = _results(run)
    stages = json.loads((run / "stages.json").read_text())
    assert stages["family"]["status"] == "running"
    assert subprocess.run(args + ["--resume"], capture_output=True).returncode == 0
    after = _results(run)
    assert len(after) == 10  # (phi 0, phi 1, 3 baselines) x 2 seeds
    assert all(after[k] == v for k, v in finished.items())  # no finished member trained again
