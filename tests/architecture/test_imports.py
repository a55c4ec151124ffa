"""The architecture as tests: one import namespace, one-way imports, no cycle between two files.

The layer contracts themselves are import-linter's (pyproject.toml, ``lint-imports`` in ``make test``);
these tests add what a contract cannot say (docs/architecture.md).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("search_spaces", "nas", "scaling", "experiments")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_strongly_connected_finds_a_cycle() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(g) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_files() -> None:
    """Every import counts, inside functions too (they are dependencies all the same)."""
    graph = grimp.build_graph("effnas", include_external_packages=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    cycles = strongly_connected(edges)
    assert not cycles, "import cycles between files: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_experiments_top_holds_only_subpackages() -> None:
    top = ROOT / "experiments"
    loose = sorted(p.name for p in top.iterdir()
                   if p.name not in ("__init__.py", "__pycache__") and not (p / "__init__.py").is_file())
    assert loose == [], f"experiments/ should hold only __init__.py and sub-packages, found {loose}"


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines (split them by concern): {long}"


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_code_imports_only_the_effnas_namespace() -> None:
    """``import experiments`` would find a user's own folder first: every import says ``effnas.``."""
    files = [p for d in (*PACKAGES, "tests", "bench") for p in (ROOT / d).rglob("*.py")]
    files += [ROOT / "effnas" / "__init__.py", ROOT / "effnas" / "__main__.py"]
    bare = {str(p.relative_to(ROOT)) for p in files if _imported_names(p) & set(PACKAGES)}
    assert not bare, f"imports of the bare package names (write effnas.<package>): {sorted(bare)}"


def test_effnas_imports_beside_a_users_own_packages(tmp_path: Path) -> None:
    """A user's project with its own experiments/, nas/ and scaling/ packages (most ML projects have an
    experiments/ folder) still gets effnas's API, the facade's jobs included, and its own packages stay
    its own."""
    for name in ("experiments", "nas", "scaling"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"MINE = {name!r}\n")
    (tmp_path / "experiments" / "config.py").write_text("raise ImportError('the user config module')\n")
    code = ("import experiments, nas, scaling, effnas\n"
            "from effnas.experiments.config import load_config\n"
            "assert (experiments.MINE, nas.MINE, scaling.MINE) == ('experiments', 'nas', 'scaling')\n"
            "cfg = load_config('demo')\n"
            "print(cfg.name)\n"
            "t = effnas.family(cfg, coefficients=(1.2, 1.1, 1.15), base='tiny', phis=[0, 1])\n"
            "print(len(t), effnas.spec('tiny').name)\n"
            "assert (experiments.MINE, nas.MINE, scaling.MINE) == ('experiments', 'nas', 'scaling')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["demo", "5", "tiny"], r.stdout


#: The ``effnas`` facade imports everything lazily by design (``import effnas`` loads no torch).
FACADE = "effnas/__init__.py"
#: The mark of an inner import with a reason, as a trailing comment on the statement.
LAZY = "lazy:"


def inner_imports(path: Path) -> list[tuple[int, ast.Import | ast.ImportFrom]]:
    """Every ``import`` inside a function of ``path`` (nested functions and methods included), once."""
    found: dict[int, ast.Import | ast.ImportFrom] = {}
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.update((n.lineno, n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return sorted(found.items())


def test_imports_inside_functions_say_why() -> None:
    """An import inside a function is for an optional or heavy dependency only (ray, onnx, onnxruntime,
    playwright, matplotlib, fvcore, kornia, simplejpeg, PIL, sklearn, mlxtend, tensorboard, torch in a
    module that must stay torch-free, or an effnas module that pulls one of those in), and says so with a
    trailing ``# lazy: <reason>`` comment on the statement, e.g. ``import ray  # lazy: Ray is slow to
    import``. Everything else, the standard library always, is imported at the top of the module."""
    files = [p for d in (*PACKAGES, "bench") for p in sorted((ROOT / d).rglob("*.py"))]
    files.append(ROOT / "effnas" / "__main__.py")
    bad = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel == FACADE:
            continue
        lines = path.read_text().splitlines()
        for lineno, node in inner_imports(path):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            stdlib = any(n.split(".")[0] in sys.stdlib_module_names for n in names)
            said = any(LAZY in line for line in lines[lineno - 1:node.end_lineno])
            if stdlib or not said:
                why = "the standard library belongs at the top" if stdlib else f"no '# {LAZY} <reason>' comment"
                bad.append(f"{rel}:{lineno}: {lines[lineno - 1].strip()} ({why})")
    assert not bad, "imports inside functions (move them to the top of the module):\n" + "\n".join(bad)


def test_inner_imports_are_found(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef f():\n    import json\n\n    def g():\n        from x import (a,\n    b)\n")
    assert [(n, node.end_lineno) for n, node in inner_imports(f)] == [(4, 4), (7, 8)]


#: Folders that are one concern however many modules they hold: one module per sub-command.
ONE_CONCERN = ("experiments/cli/commands",)


def test_no_package_past_a_dozen_modules() -> None:
    """A package past a dozen modules splits its concerns into sub-packages (docs/architecture.md)."""
    big = {}
    for pkg in PACKAGES:
        for d in [ROOT / pkg, *(p.parent for p in (ROOT / pkg).rglob("__init__.py"))]:
            rel = d.relative_to(ROOT).as_posix()
            n = len([p for p in d.glob("*.py") if p.name != "__init__.py"])
            if n > 12 and rel not in ONE_CONCERN:
                big[rel] = n
    assert not big, f"packages past a dozen modules (split them into sub-packages by concern): {big}"
