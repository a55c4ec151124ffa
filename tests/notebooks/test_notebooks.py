"""The notebooks in ``notebooks/``: committed clean, importing only the public API, and executed end to
end against two small real runs, which they compare without writing into them.

The runs are built once per module the way ``effnas run`` lays them out: ``A/search`` and ``B/search``
from surrogate-trained searches (no data, seconds), ``A/family`` from a family phi = 0...2 of the
``tiny`` model really trained for one epoch on digits with two seeds (three sizes, so the power law
is fitted), ``B/family`` the same family at phi = 0, 1 trained with another recipe (on 30 % of
the data), ``A/curves`` from ``effnas curves``; and a bare search directory scored by a zero-cost
proxy (its value is a score, never an accuracy). Each notebook then runs in a fresh kernel
(nbclient) with its parameters given as environment variables, as a user would point it at runs.
About a minute by default on two shared cores; the Optuna-study and pooled-families variants are
``slow``.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from effnas.experiments.cli.commands.export import export_spec  # noqa: E402
from effnas.experiments.cli.main import main  # noqa: E402
from effnas.scaling import load_results  # noqa: E402
from effnas.scaling.analysis.compare import compare_families  # noqa: E402
from effnas.search_spaces import NetworkSpec, build  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["pareto_front", "scaling_curves"]
FAMILY = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--train", "--dataset",
          "digits", "--epochs", "1", "--seeds", "2", "--set", "train.threads=1", "--no-baselines"]
#: What the notebooks may import: the facade, effnas.nas, effnas.scaling, and libraries.
PUBLIC = re.compile(r"^(effnas|effnas\.(nas|scaling)(\..*)?|os|pathlib|json|tempfile|warnings|itertools|pandas|numpy|"
                    r"optuna|matplotlib(\..*)?)$")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    a, b, proxy = root / "A", root / "B", root / "proxy"
    assert main(["search", "--space", "tiny", "--trainer", "surrogate", "--strategy", "random", "--trials", "5",
                 "--quiet", "--out", str(a / "search")]) == 0
    assert main(["search", "--space", "tiny", "--trainer", "surrogate", "--strategy", "random", "--seed", "1",
                 "--trials", "4", "--quiet", "--out", str(b / "search")]) == 0
    assert main(["search", "--space", "tiny", "--dataset", "digits", "--estimator", "proxy:synflow", "--strategy",
                 "random", "--trials", "4", "--target-macs", "1.5M", "--set", "search.train.batch_size=16",
                 "--set", "train.threads=1", "--quiet", "--out", str(proxy)]) == 0
    assert main([*FAMILY, "--phis", "0-2", "--out", str(a / "family")]) == 0
    assert main([*FAMILY, "--phis", "0-1", "--set", "data.data_fraction=0.3", "--out", str(b / "family")]) == 0
    assert main(["curves", str(a / "family"), "--out", str(a / "curves")]) == 0
    return {"A": a, "B": b, "proxy": proxy}


def listing(*dirs: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``dirs`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for d in dirs for p in [d, *sorted(d.rglob("*"))]}


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
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=240,
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


#: Probe: click legend entry LABEL (a prefix) of the notebook's figure, then hover the first point
#: of entry POINT; what became of both.
INTERACT = """
import json
from matplotlib.backend_bases import MouseEvent, PickEvent
label = next(l for l in groups if l.startswith({label!r}))
text = next(t for ax in fig.axes for t in ax.get_legend().get_texts() if t.get_text() == label)
click = MouseEvent("button_press_event", fig.canvas, 0, 0)
fig.canvas.callbacks.process("pick_event", PickEvent("pick_event", fig.canvas, click, text))
ax, x, y, tip, _ = next(t for t in tips if t[4].startswith({point!r}))
px, py = ax.transData.transform((x, y))
fig.canvas.callbacks.process("motion_notify_event", MouseEvent("motion_notify_event", fig.canvas, px, py))
seen = {{"hidden": [a.get_visible() for a in groups[label]], "tip": tip, "note": notes[ax].get_text(),
        "note_shown": notes[ax].get_visible(), "ylabels": [a.get_ylabel() for a in fig.axes]}}
"""


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean_parametrised_and_public(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}.ipynb: code cells {dirty} have outputs or execution counts; clear them"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []) and 'os.environ.get("EFFNAS_RUN_DIRS")' in first.source
    assert nb.cells[0].cell_type == "markdown" and sum(c.cell_type == "markdown" for c in nb.cells) >= len(code)
    imported = set()
    for c in code:
        for node in ast.walk(ast.parse(c.source)):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(str(node.module))
    private = sorted(m for m in imported if not PUBLIC.match(m))
    assert not private, f"{name}.ipynb imports {private}: use the effnas facade, effnas.nas or effnas.scaling"


@pytest.mark.slow  # over 10 s: the default suite stays under 10 min (make test-slow runs it)
def test_pareto_front_notebook_compares_searches_and_exports_their_best(runs: dict[str, Path], tmp_path: Path) -> None:
    before = listing(*runs.values())
    probe = INTERACT.format(label="B:", point="A:") + (
        "seen['panels'] = [[list(k), v] for k, v in panels.items()]\n"
        "seen['chosen'] = {n: int(r['number']) for n, r in chosen.items()}\nprint(json.dumps(seen))")
    nb = execute("pareto_front", tmp_path, probe=probe, EFFNAS_OUT_DIR=str(tmp_path / "export"),
                 EFFNAS_RUN_DIRS=os.pathsep.join(str(runs[k]) for k in ("A", "B", "proxy")))
    assert listing(*runs.values()) == before, "the notebook wrote into a run directory"
    seen = json.loads(nb.cells[-1].outputs[-1].text)
    # Searches that trained share an axis; the proxy's scores get their own, labelled as what they are.
    assert seen["panels"] == [[["accuracy", "macs"], ["A", "B"]], [["score", "macs"], ["proxy"]]]
    labels = {k: json.loads(((runs[k] / "search" if k != "proxy" else runs[k]) / "pareto.json").read_text())["label"]
              for k in runs}
    assert labels["proxy"] == "synflow proxy score (rank-normalised)" and labels["A"].startswith("validation accuracy")
    assert seen["ylabels"] == [labels["A"], labels["proxy"]]
    text = "".join(outputs(nb, "stream"))
    assert f"proxy: 4 trials from {runs['proxy']}; score: {labels['proxy']}" in text
    for key in ("A", "B", "proxy"):
        search = runs[key] / "search" if key != "proxy" else runs[key]
        front = json.loads((search / "pareto.json").read_text())["front"]
        best = max(front, key=lambda r: r["reward"])["number"]
        assert seen["chosen"][key] == best and f"{key}: trial {best} (highest reward on the front)" in text
        spec = NetworkSpec.load(tmp_path / "export" / f"{key}_trial{best}_spec.json")
        assert spec == export_spec(f"sqlite:///{search / 'study.db'}", "search", best) == \
            NetworkSpec.load(search / "best_spec.json")
        build(spec)
        assert f"--trial {best} -o" in text
    assert len(outputs(nb, "image/png")) == 1  # the fronts, one panel per kind of value
    # Clicking B in the legend hides B; hovering a trial of A shows its numbers.
    assert seen["hidden"] == [False] * len(seen["hidden"]) and len(seen["hidden"]) >= 3
    assert seen["note_shown"] and seen["note"] == seen["tip"] and seen["tip"].startswith("A, trial ")


@pytest.mark.slow  # another kernel (~10 s); the default run keeps the run-directory path
def test_pareto_front_notebook_reads_an_optuna_study_with_a_macs_budget(runs: dict[str, Path], tmp_path: Path) -> None:
    search = runs["A"] / "search"
    front = json.loads((search / "pareto.json").read_text())["front"]
    cheapest = front[0]
    storage = f"sqlite:///{search / 'study.db'}"
    before = listing(runs["A"])
    nb = execute("pareto_front", tmp_path, EFFNAS_STORAGE=storage, EFFNAS_STUDY="search",
                 EFFNAS_MACS_BUDGET=str(cheapest["macs"]))
    assert listing(runs["A"]) == before, "the notebook wrote into the run directory"
    text = "".join(outputs(nb, "stream"))
    assert f"study search: 5 trials from {storage}; accuracy: validation accuracy" in text
    assert f"trial {cheapest['number']} (highest accuracy within {cheapest['macs']:,.0f} macs)" in text
    wrote = re.search(r"wrote (\S+_spec\.json)", text)
    assert wrote is not None and not Path(wrote.group(1)).resolve().is_relative_to(runs["A"].resolve())
    assert NetworkSpec.load(wrote.group(1)) == export_spec(storage, "search", cheapest["number"])


def test_scaling_curves_notebook_overlays_two_runs_and_compares_them(runs: dict[str, Path], tmp_path: Path) -> None:
    before = listing(*runs.values())
    probe = INTERACT.format(label="family: compound", point="A: compound") + (
        "seen.update(fits={r: {a: {m: f.to_dict() for m, f in per.items() if not isinstance(f, str)} "
        "for a, per in axes_.items()} for r, axes_ in fits.items()}, "
        "extrapolation=pd.DataFrame(rows).to_dict(orient='records'), "
        "points=points[['run', 'method', 'phi', 'n', 'mean', 'ci_low', 'ci_high']].to_dict(orient='records'), "
        "between=between[['phi', 'a', 'b', 'diff', 'verdict']].to_dict(orient='records'))\n"
        "print(json.dumps(seen))")
    nb = execute("scaling_curves", tmp_path, probe=probe, EFFNAS_EXTRAPOLATE="3",
                 EFFNAS_RUN_DIRS=os.pathsep.join([str(runs["A"]), str(runs["B"] / "family")]))
    assert listing(*runs.values()) == before, "the notebook wrote into a run directory"
    assert len(outputs(nb, "image/png")) == 1  # both runs on the MACs and the params panels
    text = "".join(outputs(nb, "stream"))
    assert "A: verdicts on test_accuracy (A - B in points, 95 % interval" in text
    assert "test_accuracy (%): mean [95 % t-interval over seeds]" in text
    # Three sizes leave two below the largest phi: the held-out check says why it is not made.
    assert "A            macs   compound   not checked: the fit to phi <= 1 failed" in text
    seen = json.loads(nb.cells[-1].outputs[-1].text)
    # A's points, with their 95 % t-interval over the two seeds, are effnas curves' curves.csv.
    csv = pd.read_csv(runs["A"] / "curves" / "curves.csv")
    mine = [p for p in seen["points"] if p["run"] == "A"]
    assert [p["n"] for p in mine] == [2, 2, 2] == csv["n"].tolist()
    for key in ("mean", "ci_low", "ci_high"):
        assert [p[key] for p in mine] == pytest.approx(csv[key].tolist())
    assert [(p["phi"], p["n"]) for p in seen["points"] if p["run"] == "family"] == [(0, 2), (1, 2)]
    # A's fits are those effnas curves wrote to fits.json; B's two sizes are not fitted.
    written = json.loads((runs["A"] / "curves" / "fits.json").read_text())
    for axis in ("macs", "params"):
        assert set(seen["fits"]["A"][axis]) == set(written[axis]) == {"compound"} and not seen["fits"]["family"][axis]
        for key in ("a", "b", "c", "x0", "n_points"):
            assert seen["fits"]["A"][axis]["compound"][key] == pytest.approx(written[axis]["compound"][key], rel=1e-6,
                                                                              abs=1e-9)
    ext = seen["extrapolation"]
    assert len(ext) == 6 and {r["run"] for r in ext} == {"A"}
    assert sorted(r["times_largest"] for r in ext if r["axis"] == "macs") == pytest.approx([1.0, 2.0, 3.0])
    # Between the runs: the family member for member at the phis both have, computed by the library.
    expected = compare_families(load_results([str(runs["A"] / "family")]), load_results([str(runs["B"] / "family")]),
                                labels=("A", "family"), metric="test_accuracy")
    assert [(r["phi"], r["verdict"]) for r in seen["between"]] == list(zip(expected["phi"], expected["verdict"],
                                                                         strict=True))
    assert [r["diff"] for r in seen["between"]] == pytest.approx(expected["diff"].tolist())
    assert "phi 0  A - family: " in text and "phi 1  A - family: " in text
    # Clicking B's compound in the legend hides it; hovering A's first point shows its interval.
    # (B is given as its family directory, so it is named "family".)
    assert not any(seen["hidden"]) and seen["note_shown"] and seen["note"] == seen["tip"]
    assert seen["tip"].startswith("A: compound phi 0\ntest_accuracy (%) ") and seen["tip"].endswith(" macs")


@pytest.mark.slow
def test_scaling_curves_notebook_pools_two_family_directories(runs: dict[str, Path], tmp_path: Path) -> None:
    more = tmp_path / "more"
    assert main([*FAMILY[:-1], "--phis", "0-2", "--baselines", "--baseline-phis", "1", "--seeds", "1",
                 "--out", str(more)]) == 0
    probe = ("import json; print(json.dumps({'runs': list(runs), 'n': points.groupby('method')['n'].max().to_dict(), "
             "'matched': sorted(matched_comparison(df, metric=METRIC).query('phi == 1')['method'])}))")
    nb = execute("scaling_curves", tmp_path, probe=probe,
                 EFFNAS_FAMILY_DIRS=os.pathsep.join([str(runs["A"] / "family"), str(more)]))
    seen = json.loads(nb.cells[-1].outputs[-1].text)
    assert seen["runs"] == ["family+more"]
    assert seen["n"] == {"compound": 3, "depth": 3, "width": 3, "resolution": 3}  # 2 + 1 seeds; phi 0 is shared
    assert seen["matched"] == ["compound", "depth", "resolution", "width"]
    assert len(outputs(nb, "image/png")) == 1
    assert "one run: nothing to compare it with" in "".join(outputs(nb, "stream"))
