"""The notebooks in ``notebooks/``: committed clean, and executed end to end against a small real run.

The run is built once per module the way ``effnas run`` lays it out: ``RUN/search`` from a
surrogate-trained search (no data, seconds), ``RUN/family`` from a family phi = 0...2 of the
``tiny`` model really trained for one epoch on digits with two seeds (three sizes, so the power
law is fitted), ``RUN/curves`` from ``effnas curves``. Each notebook then runs in a fresh kernel
(nbclient) with its parameters given as environment variables, as a user would point it at a run.
About 40 s by default on two shared cores; the Optuna-study and baselines variants are ``slow``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from effnas.experiments.cli.commands.export import export_spec  # noqa: E402
from effnas.experiments.cli.main import main  # noqa: E402
from effnas.search_spaces import NetworkSpec, build  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["pareto_front", "scaling_curves"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    assert main(["search", "--space", "tiny", "--trainer", "surrogate", "--strategy", "random", "--trials", "5",
                 "--quiet", "--out", str(run / "search")]) == 0
    assert main(["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-2",
                 "--train", "--dataset", "digits", "--epochs", "1", "--seeds", "2", "--set", "train.threads=1",
                 "--no-baselines", "--out", str(run / "family")]) == 0
    assert main(["curves", str(run / "family"), "--out", str(run / "curves")]) == 0
    return run


def execute(name: str, cwd: Path, *, probe: str = "", **params: str) -> Any:
    """Run ``notebooks/NAME.ipynb`` in a new kernel with ``EFFNAS_*`` variables (and the code
    ``probe`` appended as a last cell, to read the notebook's variables); the executed notebook."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    if probe:
        nb.cells.append(nbformat.v4.new_code_cell(probe))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EFFNAS_")}
    env.update(params)
    # The kernel imports this checkout's packages, and draws figures inline whatever MPLBACKEND says.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb


def outputs(nb: Any, kind: str) -> list[Any]:
    """Every output of the code cells whose data has MIME type ``kind`` (``stream`` for text)."""
    found = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if kind == "stream" and o.output_type == "stream":
                found.append(o.text)
            elif kind in o.get("data", {}):
                found.append(o.data[kind])
    return found


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean_and_parametrised(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}.ipynb: code cells {dirty} have outputs or execution counts; clear them"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []) and 'os.environ.get("EFFNAS_RUN_DIR"' in first.source
    assert nb.cells[0].cell_type == "markdown" and sum(c.cell_type == "markdown" for c in nb.cells) >= len(code)


def test_pareto_front_notebook_exports_the_best_front_model(run_dir: Path, tmp_path: Path) -> None:
    nb = execute("pareto_front", tmp_path, EFFNAS_RUN_DIR=str(run_dir), EFFNAS_OUT_DIR=str(tmp_path / "export"))
    front = json.loads((run_dir / "search" / "pareto.json").read_text())["front"]
    best = max(front, key=lambda r: r["reward"])["number"]
    path = tmp_path / "export" / f"trial{best}_spec.json"
    spec = NetworkSpec.load(path)
    storage = f"sqlite:///{run_dir / 'search' / 'study.db'}"
    assert spec == export_spec(storage, "search", best) == NetworkSpec.load(run_dir / "search" / "best_spec.json")
    build(spec)
    assert (tmp_path / "export" / f"trial{best}_diagram.png").stat().st_size > 10_000
    assert len(outputs(nb, "image/png")) == 2  # the front and the diagram
    text = "".join(outputs(nb, "stream"))
    assert f"trial {best} (highest reward on the front)" in text and f"--trial {best} -o" in text


@pytest.mark.slow  # another kernel (~8 s); the default run keeps the run-directory path under a minute
def test_pareto_front_notebook_reads_an_optuna_study_with_a_macs_budget(run_dir: Path, tmp_path: Path) -> None:
    front = json.loads((run_dir / "search" / "pareto.json").read_text())["front"]
    cheapest = front[0]
    storage = f"sqlite:///{run_dir / 'search' / 'study.db'}"
    nb = execute("pareto_front", tmp_path, EFFNAS_RUN_DIR=str(run_dir / "search"), EFFNAS_STORAGE=storage,
                 EFFNAS_STUDY="search", EFFNAS_MACS_BUDGET=str(cheapest["macs"]))
    text = "".join(outputs(nb, "stream"))
    assert f"from study 'search' in {storage}" in text
    assert f"trial {cheapest['number']} (most accurate within {cheapest['macs']:,.0f} macs)" in text
    path = run_dir / "search" / "export" / f"trial{cheapest['number']}_spec.json"  # a bare search directory's
    assert NetworkSpec.load(path) == export_spec(storage, "search", cheapest["number"])


def test_scaling_curves_notebook_plots_and_fits(run_dir: Path, tmp_path: Path) -> None:
    probe = ("import json; print(json.dumps({'fits': {a: {m: f.to_dict() for m, f in per.items()} "
             "for a, per in fits.items()}, 'extrapolation': pd.DataFrame(rows).to_dict(orient='records'), "
             "'points': points[['method', 'phi', 'n', 'mean', 'ci_low', 'ci_high']].to_dict(orient='records')}))")
    nb = execute("scaling_curves", tmp_path, probe=probe, EFFNAS_RUN_DIR=str(run_dir), EFFNAS_EXTRAPOLATE="3")
    assert len(outputs(nb, "image/png")) == 1  # accuracy vs MACs and vs params, two panels
    text = "".join(outputs(nb, "stream"))
    assert "verdicts on test_accuracy (A - B in points, 95 % interval" in text and "test_accuracy (%): mean [95 % t-interval over seeds]" in text
    # Three sizes leave two below the largest phi: the held-out check says why it is not made.
    assert "macs   compound   not checked: the fit to phi <= 1 failed" in text
    seen = json.loads(nb.cells[-1].outputs[-1].text)
    # The notebook's points, with their 95 % t-interval over the two seeds, are effnas curves' curves.csv.
    csv = pd.read_csv(run_dir / "curves" / "curves.csv")
    assert [r["n"] for r in seen["points"]] == [2, 2, 2] == csv["n"].tolist()
    for key in ("mean", "ci_low", "ci_high"):
        assert [r[key] for r in seen["points"]] == pytest.approx(csv[key].tolist())
    # The notebook's fits are those effnas curves wrote to fits.json (three sizes, so compound is fitted).
    written = json.loads((run_dir / "curves" / "fits.json").read_text())
    for axis in ("macs", "params"):
        assert set(seen["fits"][axis]) == set(written[axis]) == {"compound"}
        for key in ("a", "b", "c", "x0", "n_points"):
            assert seen["fits"][axis]["compound"][key] == pytest.approx(written[axis]["compound"][key], rel=1e-6,
                                                                         abs=1e-9)
    # Extrapolated to 1x, 2x and 3x the largest member on both axes, with a band.
    ext = seen["extrapolation"]
    assert sorted(r["times_largest"] for r in ext if r["axis"] == "macs") == pytest.approx([1.0, 2.0, 3.0])
    assert len(ext) == 6 and all(0 <= r["predicted"] <= 1 and not r["band_low"] > r["band_high"] for r in ext)


@pytest.mark.slow
def test_scaling_curves_notebook_with_baselines_from_two_family_directories(run_dir: Path, tmp_path: Path) -> None:
    more = tmp_path / "more"
    assert main(["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-2",
                 "--baselines", "--baseline-phis", "1", "--train", "--dataset", "digits", "--epochs", "1",
                 "--seeds", "1", "--set", "train.threads=1", "--out", str(more)]) == 0
    probe = ("import json; print(json.dumps({'n': points.groupby('method')['n'].max().to_dict(), "
             "'matched': sorted(matched_comparison(df, metric=METRIC).query('phi == 1')['method'])}))")
    nb = execute("scaling_curves", tmp_path, probe=probe,
                 EFFNAS_FAMILY_DIRS=os.pathsep.join([str(run_dir / "family"), str(more)]))
    seen = json.loads(nb.cells[-1].outputs[-1].text)
    assert seen["n"] == {"compound": 3, "depth": 3, "width": 3, "resolution": 3}  # 2 + 1 seeds; phi 0 is shared
    assert seen["matched"] == ["compound", "depth", "resolution", "width"]
    assert len(outputs(nb, "image/png")) == 1
