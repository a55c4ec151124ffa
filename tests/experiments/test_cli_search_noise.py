"""``effnas search --reevaluate K`` / ``--noise-floor SD``: the keys flow from flags, ``--set`` and TOML
into the search, and the re-evaluation writes its verdicts (effnas.nas.reevaluate, effnas.nas.pruning)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.main import build_parser, main
from effnas.experiments.pipeline import plan
from effnas.nas import NoiseFloorPruner, SearchConfig
from effnas.nas.pruning import DEFAULT_NOISE_FLOOR
from effnas.nas.reevaluate import ATTR
from effnas.nas.study import make_pruner

TINY = ["--space", "tiny", "--target-macs", "1.5M", "--strategy", "random"]


def _settings(argv: list[str], tmp_path: Path) -> SearchConfig:
    args = build_parser().parse_args(["search", *argv, "--out", str(tmp_path / "o")])
    return plan.resolve_search(c.experiment(args), tmp_path / "o").settings


def test_the_keys_flow_from_flags_set_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("[search]\nspace = \"tiny\"\nreevaluate = 3\nnoise_floor = 0.05\n")
    default = _settings(TINY, tmp_path)
    assert (default.reevaluate, default.noise_floor) == (0, DEFAULT_NOISE_FLOOR)
    for argv in (["--reevaluate", "3", "--noise-floor", "0.05"],
                 ["--set", "search.reevaluate=3", "--set", "search.noise_floor=0.05"],
                 ["--config", str(toml)]):
        s = _settings([*TINY, *argv], tmp_path)
        assert (s.reevaluate, s.noise_floor) == (3, 0.05), argv
        pruner = make_pruner(s)
        assert isinstance(pruner, NoiseFloorPruner) and pruner.noise_floor == 0.05  # what every trial's pruner uses


@pytest.mark.parametrize("args,needle", [
    (["--reevaluate", "-1"], "search.reevaluate must be a finite number >= 0"),
    (["--noise-floor", "0.7"], "search.noise_floor must be at most 0.5"),
    (["--noise-floor", "-0.1"], "search.noise_floor must be a finite number >= 0"),
    (["--set", "search.reevaluate=2.5"], "search.reevaluate"),
])
def test_bad_values_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                        needle: str) -> None:
    assert main(["search", *TINY, "--trainer", "surrogate", "--trials", "1", "--quiet", "--out",
                 str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("effnas: error: ") and needle in err[-1], err


def test_reevaluate_rescores_a_proxy_search_on_real_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Zero-cost proxy scores on digits: re-scored with seed 1 (another minibatch, initialisation and
    reference sample), written as a score, with the verdicts in the summary, the file and on stderr."""
    out = tmp_path / "run"
    assert main(["search", *TINY, "--dataset", "digits", "--estimator", "proxy:synflow", "--trials", "2",
                 "--reevaluate", "2", "--set", "search.train.batch_size=16", "--json", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    line = summary["reevaluation"]["line"]
    assert line.startswith("re-evaluated top 2 (seeds 0, 1; reward of the score): winner #")
    assert line in captured.err and captured.err.count("re-evaluated 1/2: trial") == 1
    rows = list(csv.DictReader(open(out / "reevaluation.csv")))
    assert len(rows) == 4 and "score" in rows[0] and "accuracy" not in rows[0]
    assert [r["seed"] for r in rows] == ["0", "1", "0", "1"]
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    for r in rows:
        if r["run"] == "search":  # the search's own run is the trial's
            assert float(r["reward"]) == pytest.approx(study.trials[int(r["trial"])].user_attrs["reward"])
    assert summary["best_trial"] == summary["reevaluation"]["winner"] == int(rows[0]["trial"])
    assert summary["best_reward"] == pytest.approx(float(rows[0]["mean_reward"]))
    assert json.loads((out / "reevaluation.json").read_text())["line"] == line
    # The run report shows the re-evaluation (the search directory of a run is run/search).
    from effnas.experiments.report.markdown import write_report  # lazy: the report is this test's last step

    (tmp_path / "r").mkdir()
    (out).rename(tmp_path / "r" / "search")
    md, _ = write_report(tmp_path / "r", config={"name": "t"}, stages={})
    assert "### Is the winner distinguishable?" in md.read_text() and line in md.read_text()


def test_a_resumed_search_reuses_its_reevaluations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["search", *TINY, "--trainer", "surrogate", "--trials", "3", "--reevaluate", "2", "--quiet", "--json",
            "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    assert len(study.user_attrs[ATTR]) == 2 and summary["best_runs"] == 2
    assert main([*argv, "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["reevaluation"] == summary["reevaluation"]
    assert len(optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
               .user_attrs[ATTR]) == 2


@pytest.mark.slow
def test_reevaluate_retrains_real_candidates_on_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real training (one short epoch on a fifth of digits) and a second seed: the seeds differ."""
    out = tmp_path / "real"
    assert main(["search", *TINY, "--dataset", "digits", "--trials", "3", "--epochs", "1", "--data-fraction", "0.2",
                 "--reevaluate", "2", "--set", "train.threads=1", "--quiet", "--json", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "reevaluation.csv")))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"completed"} and "accuracy" in rows[0]
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "noise floor sd" in summary["reevaluation"]["line"]
