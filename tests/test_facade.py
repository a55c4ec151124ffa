"""``import effnas``: each facade function on tiny real inputs (model ``tiny``, ``digits``, one epoch, a
fifth of the training split), and docs/python.md's examples run as doctests."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import effnas
from effnas.experiments.config import ExperimentConfig
from effnas.scaling import Coefficients, GridResult
from effnas.search_spaces import NetworkSpec

ROOT = Path(__file__).resolve().parents[1]
#: One thread, a fifth of digits' training split: a run of ``tiny`` takes about a second.
FAST = ["train.threads=1", "run.workers=1", "data.data_fraction=0.2"]


def test_import_effnas_is_light() -> None:
    code = "import sys, effnas; print(sorted({'torch', 'pandas', 'optuna', 'ray'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_names() -> None:
    assert set(effnas.__all__) <= set(dir(effnas))
    assert issubclass(effnas.UserError, ValueError)
    assert effnas.scaling.PAPER == Coefficients(1.2, 1.1, 1.15)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        effnas.nope  # noqa: B018


def test_load_config() -> None:
    cfg = effnas.load_config("demo", overrides=["family.seeds=3"])
    assert isinstance(cfg, ExperimentConfig) and cfg.family.seeds == (0, 1, 2)
    assert effnas.load_config(cfg) is cfg
    assert effnas.load_config() == ExperimentConfig()
    with pytest.raises(effnas.UserError, match="did you mean 'search.trials'"):
        effnas.load_config("demo", overrides=["search.trails=3"])


def test_spec_and_build() -> None:
    spec = effnas.spec("tiny", num_classes=7, resolution=16)
    assert isinstance(spec, NetworkSpec) and (spec.num_classes, spec.resolution) == (7, 16)
    assert effnas.spec(spec, resolution=20).resolution == 20
    assert effnas.build(spec)(torch.zeros(2, 3, 16, 16)).shape == (2, 7)
    with pytest.raises(effnas.UserError):
        effnas.spec("no_such_model")


def test_train(tmp_path: Path) -> None:
    m = effnas.train(model="tiny", dataset="digits", epochs=1, out=tmp_path / "run", quiet=True, overrides=FAST)
    assert (m["status"], m["model"], m["epochs_completed"]) == ("completed", "tiny", 1)
    assert (tmp_path / "run" / "metrics.json").is_file()
    again = effnas.train(model="tiny", dataset="digits", epochs=1, out=tmp_path / "run", quiet=True, overrides=FAST)
    assert again["reused"] and again["val_accuracy"] == m["val_accuracy"]
    # A spec object, nothing written.
    spec = effnas.spec("tiny", resolution=16)
    m = effnas.train(model=spec, dataset="digits", epochs=1, quiet=True, overrides=FAST)
    assert m["status"] == "completed" and m["resolution"] == 16


def test_search(tmp_path: Path) -> None:
    r = effnas.search(space="tiny", trainer="surrogate", strategy="random", trials=3, out=tmp_path, quiet=True)
    assert isinstance(r.trials, pd.DataFrame) and len(r.trials) == 3
    assert {"number", "status", "accuracy", "macs", "reward", "spec"} <= set(r.trials.columns)
    assert isinstance(r.best, NetworkSpec) and r.summary["completed"] == 3
    # The study continues: three more trials.
    r = effnas.search(space="tiny", trainer="surrogate", strategy="random", trials=6, out=tmp_path, quiet=True,
                      resume=True)
    assert len(r.trials) == 6


def test_grid_then_family_from_its_coefficients(tmp_path: Path) -> None:
    tiny = [*FAST, "grid.step=0.2", "grid.tolerance=0.02"]
    g = effnas.grid(base="tiny", dataset="digits", epochs=1, seeds=1, out=tmp_path / "grid", overrides=tiny)
    assert isinstance(g, GridResult) and isinstance(g.best, Coefficients)
    assert sorted(g.table["status"]) == ["completed", "completed", "out_of_tolerance"]
    t = effnas.family(coefficients=tmp_path / "grid" / "coefficients.json", base="tiny", phis=[0, 1],
                      dataset="digits", epochs=1, seeds=[0], train=True, out=tmp_path / "family",
                      overrides=[*tiny, "family.single_dimension=false"])
    assert t[["method", "phi", "seed", "status"]].values.tolist() == [["compound", 0, 0, "completed"],
                                                                      ["compound", 1, 0, "completed"]]
    assert (tmp_path / "family" / "family.csv").is_file()


def test_family_cost_table(tmp_path: Path) -> None:
    t = effnas.family(coefficients=(1.2, 1.1, 1.15), base="tiny", phis=[0, 1], dataset="digits", out=tmp_path)
    assert t[["method", "phi"]].values.tolist() == [["compound", 0], ["compound", 1], ["depth", 1], ["width", 1],
                                                    ["resolution", 1]]
    assert {"params", "macs", "macs_ratio", "within_tolerance"} <= set(t.columns)
    assert (tmp_path / "members.csv").is_file() and any((tmp_path / "specs").iterdir())
    official = effnas.family(official=True, phis=[0, 1], overrides=["family.single_dimension=false"])
    assert list(official["method"]) == ["official", "official"]
    with pytest.raises(effnas.UserError, match="official=True"):
        effnas.family(base="tiny")
    with pytest.raises(effnas.UserError, match="far from the target"):
        effnas.family(coefficients=(1.5, 1.3, 1.3), base="tiny")


def test_scale_backbone(tmp_path: Path) -> None:
    t = effnas.scale_backbone("resnet18", phi=1, out=tmp_path)
    assert sorted(t["method"]) == ["base", "compound", "depth", "resolution", "width"]
    assert (tmp_path / "networks.csv").is_file()
    with pytest.raises(effnas.UserError, match="needs out"):
        effnas.scale_backbone("tiny", train=True)


def test_run(tmp_path: Path) -> None:
    toy = [*FAST, "search.trials=2", "search.space=tiny", "search.trainer=surrogate", "search.estimator=train",
           "search.strategy=random", "data.dataset=digits", "family.phis=[0,1]", "family.seeds=[0]",
           "family.single_dimension=false", "grid.step=0.2", "grid.tolerance=0.02", "grid.epochs=1",
           "family.epochs=1"]
    r = effnas.run("demo", out=tmp_path / "run", quiet=True, overrides=toy)
    assert r.report == tmp_path / "run" / "report.md" and r.report.is_file()
    assert list(r.family["status"]) == ["completed", "completed"] and r.failed.empty


def test_docs_python_md(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/python.md's examples, run in a scratch directory (they write ``runs/...``)."""
    monkeypatch.chdir(tmp_path)
    r = doctest.testfile(str(ROOT / "docs" / "python.md"), module_relative=False,
                         optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert r.attempted > 10 and r.failed == 0
