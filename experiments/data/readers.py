"""Readers for the CIFAR-10/100 python pickles (ImageFolder trees stream:
:mod:`effnas.experiments.data.files.imagefolder`).

Every reader returns uint8 arrays ``(N, C, H, W)`` with int64 labels and never downloads
anything. A missing path, a wrong layout, a corrupt file or an empty class raises a one-line
``ValueError`` naming the path and the expected layout.

CIFAR pickles are read with a restricted unpickler that only admits the numpy array
reconstruction globals, so a hostile file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from effnas.search_spaces.common.errors import UserError

CIFAR10_LAYOUT = "data_batch_1..data_batch_5 and test_batch (the python-pickle layout of cifar-10-batches-py)"
CIFAR100_LAYOUT = "train, test and meta (the python-pickle layout of cifar-100-python)"

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _unpickle(path: Path, layout: str) -> dict[Any, Any]:
    try:
        with path.open("rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except Exception as e:  # any decoding problem is a corrupt file to the user
        raise UserError(f"cannot read {str(path)!r} as a CIFAR pickle ({type(e).__name__}: {e}); "
                         f"expected {layout}") from e
    if not isinstance(obj, dict):
        raise UserError(f"{str(path)!r} holds a {type(obj).__name__}, not a dict: expected {layout}")
    return obj


def _get(d: dict[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    return None


def _cifar_arrays(path: Path, label_key: str, layout: str) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path, layout)
    data, labels = _get(d, "data"), _get(d, label_key)
    if data is None or labels is None:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in d)
        raise UserError(f"{str(path)!r} has keys {keys}, not 'data' and {label_key!r}: expected {layout}")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise UserError(f"{str(path)!r}: 'data' must be uint8 (N, 3072) with N labels, got {data.dtype} "
                         f"{data.shape} and {len(labels)} labels: expected {layout}")
    return data.reshape(-1, 3, 32, 32), labels


def _need_dir(root: Path, what: str, layout: str) -> None:
    if not root.is_dir():
        raise UserError(f"{what} directory {str(root)!r} does not exist: expected {layout}")


def _need_files(root: Path, names: list[str], what: str, layout: str) -> None:
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise UserError(f"{what} directory {str(root)!r} lacks {missing[0]}: expected {layout}")


def _names(meta: dict[Any, Any], key: str, n: int) -> tuple[str, ...]:
    names = _get(meta, key)
    if names is None or len(names) != n:
        return tuple(str(i) for i in range(n))
    return tuple(x.decode() if isinstance(x, bytes) else str(x) for x in names)


def _check_labels(labels: np.ndarray, n: int, path: Path, layout: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= n):
        raise UserError(f"{str(path)!r} has labels outside 0..{n - 1}: expected {layout}")


def check_layout(name: str, root: str | Path) -> None:
    """The layout checks of the readers without reading any image: the directory exists, and the
    CIFAR pickles are there (unless it is an image folder). One line naming what is expected."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{name} directory {str(root)!r} does not exist: give the directory of the data set "
                         f"(--dataset {name}:PATH)")
    if name in ("imagefolder", "shards") or (root / "train").is_dir():
        return  # image folders and shards are indexed (and checked) when loaded
    if name == "cifar10":
        _need_files(root, [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"], "cifar10", CIFAR10_LAYOUT)
    elif name == "cifar100":
        _need_files(root, ["train", "test", "meta"], "cifar100", CIFAR100_LAYOUT)


def read_cifar10(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(train images, train labels, test images, test labels, class names) of a CIFAR-10 directory."""
    root = Path(root)
    _need_dir(root, "cifar10", CIFAR10_LAYOUT)
    batches = [f"data_batch_{i}" for i in range(1, 6)]
    _need_files(root, [*batches, "test_batch"], "cifar10", CIFAR10_LAYOUT)
    parts = [_cifar_arrays(root / b, "labels", CIFAR10_LAYOUT) for b in batches]
    xtr, ytr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    xte, yte = _cifar_arrays(root / "test_batch", "labels", CIFAR10_LAYOUT)
    for y, b in ((ytr, batches[0]), (yte, "test_batch")):
        _check_labels(y, 10, root / b, CIFAR10_LAYOUT)
    meta_path = root / "batches.meta"
    meta = _unpickle(meta_path, CIFAR10_LAYOUT) if meta_path.is_file() else {}
    return xtr, ytr, xte, yte, _names(meta, "label_names", 10)


def read_cifar100(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(train images, train fine labels, test images, test fine labels, class names) of CIFAR-100."""
    root = Path(root)
    _need_dir(root, "cifar100", CIFAR100_LAYOUT)
    _need_files(root, ["train", "test", "meta"], "cifar100", CIFAR100_LAYOUT)
    xtr, ytr = _cifar_arrays(root / "train", "fine_labels", CIFAR100_LAYOUT)
    xte, yte = _cifar_arrays(root / "test", "fine_labels", CIFAR100_LAYOUT)
    for y, b in ((ytr, "train"), (yte, "test")):
        _check_labels(y, 100, root / b, CIFAR100_LAYOUT)
    meta = _unpickle(root / "meta", CIFAR100_LAYOUT)
    return xtr, ytr, xte, yte, _names(meta, "fine_label_names", 100)
