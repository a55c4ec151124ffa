"""A registry of named architectures. Registering a name twice is an error."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.spec import NetworkSpec
from effnas.search_spaces.zoo import BUILTIN

_REGISTRY: dict[str, Callable[[], NetworkSpec]] = {}
_loaded: list[bool] = []


def register(name: str, factory: Callable[[], NetworkSpec]) -> None:
    """Register ``factory`` (returning a fresh :class:`NetworkSpec`) under ``name``."""
    _ensure_loaded()
    if name in _REGISTRY:
        raise UserError(f"model name {name!r} is already registered: choose another name")
    _REGISTRY[name] = factory


def get(name: str, *, num_classes: int | None = None, resolution: int | None = None) -> NetworkSpec:
    """The spec registered as ``name``, optionally for another class count or resolution."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}: run 'effnas models list' to see the {len(_REGISTRY)} names")
    spec = _REGISTRY[name]()
    changes: dict[str, int] = {}
    if num_classes is not None:
        changes["num_classes"] = num_classes
    if resolution is not None:
        changes["resolution"] = resolution
    if changes:
        spec = dataclasses.replace(spec, **changes)  # type: ignore[arg-type]
    return spec


def names() -> list[str]:
    _ensure_loaded()
    return list(_REGISTRY)


def _ensure_loaded() -> None:
    """The built-in models (:data:`effnas.search_spaces.zoo.BUILTIN`) join the registry on its first use, so
    a user's model registered under a built-in name is refused."""
    if not _loaded:
        _loaded.append(True)
        for name, factory in BUILTIN.items():
            register(name, factory)


def load_spec(ref: str, *, num_classes: int | None = None, resolution: int | None = None) -> NetworkSpec:
    """A registered model name, or the path of a spec JSON file (as written by ``effnas export``)."""
    try:
        is_file = ref.endswith(".json") or Path(ref).is_file()
    except OSError:  # not a usable path (e.g. a name too long for the file system): a model name then
        is_file = False
    if is_file:
        spec = NetworkSpec.load(ref)
        changes: dict[str, int] = {}
        if num_classes is not None:
            changes["num_classes"] = num_classes
        if resolution is not None:
            changes["resolution"] = resolution
        return dataclasses.replace(spec, **changes) if changes else spec  # type: ignore[arg-type]
    return get(ref, num_classes=num_classes, resolution=resolution)
