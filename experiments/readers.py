"""Readers for the image formats users have on disk: CIFAR-10/100 python pickles and ImageFolder.

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

CIFAR10_LAYOUT = "data_batch_1..data_batch_5 and test_batch (the python-pickle layout of cifar-10-batches-py)"
CIFAR100_LAYOUT = "train, test and meta (the python-pickle layout of cifar-100-python)"
IMAGEFOLDER_LAYOUT = "PATH/<class>/*.jpg|*.png, one subdirectory per class (optionally under PATH/train and PATH/test)"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: ImageFolder images are stored square at this side (pixels): big enough for the 16-64 px
#: proxy regime and for upsampling checks, small enough that 10k images take 0.5 GB.
IMAGEFOLDER_SIZE = 128

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
        raise ValueError(f"cannot read {str(path)!r} as a CIFAR pickle ({type(e).__name__}: {e}); "
                         f"expected {layout}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__}, not a dict: expected {layout}")
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
        raise ValueError(f"{str(path)!r} has keys {keys}, not 'data' and {label_key!r}: expected {layout}")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise ValueError(f"{str(path)!r}: 'data' must be uint8 (N, 3072) with N labels, got {data.dtype} "
                         f"{data.shape} and {len(labels)} labels: expected {layout}")
    return data.reshape(-1, 3, 32, 32), labels


def _need_dir(root: Path, what: str, layout: str) -> None:
    if not root.is_dir():
        raise ValueError(f"{what} directory {str(root)!r} does not exist: expected {layout}")


def _need_files(root: Path, names: list[str], what: str, layout: str) -> None:
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise ValueError(f"{what} directory {str(root)!r} lacks {missing[0]}: expected {layout}")


def _names(meta: dict[Any, Any], key: str, n: int) -> tuple[str, ...]:
    names = _get(meta, key)
    if names is None or len(names) != n:
        return tuple(str(i) for i in range(n))
    return tuple(x.decode() if isinstance(x, bytes) else str(x) for x in names)


def _check_labels(labels: np.ndarray, n: int, path: Path, layout: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"{str(path)!r} has labels outside 0..{n - 1}: expected {layout}")


def check_layout(name: str, root: str | Path) -> None:
    """The layout checks of the readers without reading any image (a missing directory or file,
    no class directories): one line naming what is expected."""
    root = Path(root)
    if name == "cifar10":
        _need_dir(root, "cifar10", CIFAR10_LAYOUT)
        _need_files(root, [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"], "cifar10", CIFAR10_LAYOUT)
    elif name == "cifar100":
        _need_dir(root, "cifar100", CIFAR100_LAYOUT)
        _need_files(root, ["train", "test", "meta"], "cifar100", CIFAR100_LAYOUT)
    elif name == "imagefolder":
        _need_dir(root, "imagefolder", IMAGEFOLDER_LAYOUT)
        split = (root / "train").is_dir() and (root / "test").is_dir()
        _class_dirs(root / "train" if split else root)
    else:
        raise ValueError(f"unknown on-disk dataset {name!r}: expected cifar10, cifar100 or imagefolder")


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


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise ValueError(f"imagefolder directory {str(root)!r} has no class subdirectories: "
                         f"expected {IMAGEFOLDER_LAYOUT}")
    return dirs


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
            return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    except Exception as e:  # Pillow raises several types for broken files
        raise ValueError(f"cannot read image {str(path)!r} ({type(e).__name__}): fix or remove the file") from None


def _read_classes(root: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(classes):
        cdir = root / name
        if not cdir.is_dir():
            raise ValueError(f"imagefolder split {str(root)!r} lacks class directory {name!r}: "
                             f"expected the same classes in train and test")
        files = sorted(p for p in cdir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise ValueError(f"class directory {str(cdir)!r} has no JPEG/PNG images: expected {IMAGEFOLDER_LAYOUT}")
        images += [_read_image(f, size) for f in files]
        labels += [label] * len(files)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def read_imagefolder(
    root: str | Path, *, size: int = IMAGEFOLDER_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, tuple[str, ...]]:
    """(train images, labels, test images or None, test labels or None, class names).

    Class names are the sorted subdirectory names. With ``PATH/train`` and ``PATH/test``
    subdirectories those are the splits; otherwise every class directory is under ``PATH``
    and the caller carves a test split. Images are converted to RGB and resized (bicubic) to
    ``size x size``.
    """
    root = Path(root)
    _need_dir(root, "imagefolder", IMAGEFOLDER_LAYOUT)
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = [p.name for p in _class_dirs(root / "train")]
        xtr, ytr = _read_classes(root / "train", classes, size)
        xte, yte = _read_classes(root / "test", classes, size)
        return xtr, ytr, xte, yte, tuple(classes)
    classes = [p.name for p in _class_dirs(root)]
    x, y = _read_classes(root, classes, size)
    return x, y, None, None, tuple(classes)
