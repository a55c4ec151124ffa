"""Streaming image folders: an index of files, per-image decoding, the size survey, archives.

An ImageFolder is never decoded into memory as a whole. :func:`index_imagefolder` lists the
files and labels (no pixels); :class:`~effnas.experiments.data.files.streamloader.StreamLoader` reads each file in
worker processes or threads, decodes it (:func:`decode`: ``simplejpeg``, i.e. libjpeg-turbo,
for JPEG, faster than Pillow (docs/data.md); a YCbCr or grey JPEG at the
DCT reduction its crop allows, see :func:`encoded`; Pillow for PNG, CMYK, palette and alpha
images) and applies an :class:`~effnas.experiments.data.files.transforms.ImageTransform` to it: the papers' crop
taken **from its native pixels** at the run's resolution, a flip, and AutoAugment / RandAugment
drawn for that one image.

The geometry (``inception`` or ``small``) is chosen per data set from the median shorter side
of a sample (:func:`survey`, :data:`SMALL_SIDE`); see :mod:`effnas.experiments.data.files.transforms` and
``docs/data.md``.

"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from effnas.experiments.data.files.transforms import Encoded
from effnas.search_spaces.common.errors import UserError, first_line

LAYOUT = ("PATH/train/<class>/*.jpg|*.png with PATH/val/<class>/ or PATH/test/<class>/, "
          "or PATH/<class>/ directly (a test split is then carved)")
#: Image files, compared lower-cased (ImageNet's ``.JPEG`` counts).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
EVAL_SPLITS = ("val", "test")  #: names of the evaluation split next to ``train/``, in order of preference
SMALL_SIDE = 64  #: sets whose median shorter side is at most this many pixels get the CIFAR geometry
STATS_IMAGES = 512  #: images decoded for the normalisation statistics and the size survey
STATS_SIDE = 64  #: the statistics are taken on images reduced to about this shorter side


class BadImage(ValueError):
    """A file that cannot be decoded (skipped and counted, or an error with ``data.strict``)."""


@dataclass(frozen=True, eq=False)
class FileSplit:
    """Files (paths relative to ``root``, as a bytes array: no per-entry Python objects for
    workers to touch) and their int64 labels. Holds no pixels, unless ``pixels`` (an
    :class:`effnas.experiments.data.files.decoded.DecodedImages` memory map) holds them decoded: image ``i`` is
    then ``pixels[rows[i]]``. With ``spans`` (int64 ``(N, 2)``: offset and size) the files are
    members of tar shards (:mod:`effnas.experiments.data.files.shards`): ``paths[i]`` is ``SHARD.tar/MEMBER``."""

    root: str
    paths: np.ndarray
    labels: Tensor
    pixels: Any = None
    rows: np.ndarray | None = None
    spans: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.paths.dtype.kind == "S" and self.labels.dtype == torch.int64
        assert len(self.paths) == len(self.labels)
        assert (self.pixels is None) == (self.rows is None)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Tensor) -> FileSplit:
        idx = index.numpy()
        rows = None if self.rows is None else self.rows[idx]
        spans = None if self.spans is None else self.spans[idx]
        return FileSplit(self.root, self.paths[idx], self.labels[index], self.pixels, rows, spans)

    def path(self, i: int) -> str:
        return os.path.join(self.root, os.fsdecode(self.paths[i]))

    def read(self, i: int) -> np.ndarray:
        """Image ``i``, RGB uint8 ``(H, W, 3)`` at native size: from the decoded cache, or decoded now."""
        if self.rows is not None:
            return np.asarray(self.pixels[int(self.rows[i])])
        return decode(self.path(i), self._bytes(i))

    def fetch(self, i: int) -> np.ndarray | Encoded:
        """Image ``i`` for a transform: as :meth:`read`, except that a JPEG simplejpeg decodes
        (YCbCr or grey) is returned :class:`~effnas.experiments.data.files.transforms.Encoded`, for the transform to
        decode at the size its crop needs."""
        if self.rows is not None:
            return self.read(i)
        path, data = self.path(i), self._bytes(i)
        return encoded(path, data) or decode(path, data)

    def _bytes(self, i: int) -> bytes:
        if self.spans is not None:
            offset, size = (int(v) for v in self.spans[i])
            with open(self.path(i).rsplit("/", 1)[0], "rb") as f:
                f.seek(offset)
                return f.read(size)
        with open(self.path(i), "rb") as f:
            return f.read()


# ---------------------------------------------------------------- index


def _class_dirs(root: Path) -> list[str]:
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise UserError(f"imagefolder directory {str(root)!r} has no class subdirectories: expected {LAYOUT}")
    return names


def _list_split(root: Path, classes: list[str]) -> FileSplit:
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        cdir = root / name
        if not cdir.is_dir():
            raise UserError(f"imagefolder split {str(root)!r} lacks class directory {name!r}: "
                             f"every split needs the same classes")
        files = sorted(e.name for e in os.scandir(cdir)
                       if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file())
        if not files:
            raise UserError(f"class directory {str(cdir)!r} has no image files "
                             f"({', '.join(sorted(IMAGE_SUFFIXES))}, any case): expected {LAYOUT}")
        paths += [f"{name}/{f}" for f in files]
        labels += [label] * len(files)
    return FileSplit(str(root), np.array([os.fsencode(p) for p in paths]), torch.tensor(labels, dtype=torch.int64))


def index_imagefolder(root: str | Path) -> tuple[FileSplit, FileSplit | None, tuple[str, ...]]:
    """(training files, evaluation files or None, class names) of an ImageFolder tree.

    Layouts: ``PATH/train`` with ``PATH/val`` or ``PATH/test`` (``val`` preferred when both
    exist), or the class directories directly under ``PATH`` (evaluation ``None``: the caller
    carves a test split). Class names are the sorted subdirectory names of the training split.

    Raises:
        UserError: a missing directory, ``train/`` without ``val/``/``test/``, a class missing
            from or extra in the evaluation split, or a class without image files.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"imagefolder directory {str(root)!r} does not exist: expected {LAYOUT}")
    if (root / "train").is_dir():
        evals = [root / s for s in EVAL_SPLITS if (root / s).is_dir()]
        if not evals:
            raise UserError(f"imagefolder directory {str(root)!r} has train/ but neither val/ nor test/: "
                             f"expected {LAYOUT}")
        classes = _class_dirs(root / "train")
        extra = sorted(set(_class_dirs(evals[0])) - set(classes))
        if extra:
            raise UserError(f"imagefolder split {str(evals[0])!r} has class {extra[0]!r} that train/ lacks: "
                             f"every split needs the same classes")
        return _list_split(root / "train", classes), _list_split(evals[0], classes), tuple(classes)
    classes = _class_dirs(root)
    return _list_split(root, classes), None, tuple(classes)


def looks_like_imagefolder(root: str | Path) -> bool:
    """True when ``root`` has a ``train/`` directory (the ImageFolder layout of a named set)."""
    return (Path(root) / "train").is_dir()


# ---------------------------------------------------------------- decoding


def decode(path: str, data: bytes | None = None) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` at native size: simplejpeg for RGB/grey JPEG, else Pillow
    (PNG, CMYK JPEG, palette, alpha). Raises :class:`BadImage` naming a file that cannot be decoded.
    ``data``: the file's bytes when already read (a member of a tar shard, named by ``path``)."""
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
    if data[:3] == b"\xff\xd8\xff":
        import simplejpeg  # lazy: the JPEG decoder loads in the processes that decode

        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB")
        except ValueError:  # CMYK/YCCK or a recoverable libjpeg warning: Pillow decides below
            pass
    from PIL import Image  # lazy: Pillow loads in the processes that decode

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadImage(f"cannot decode image {path!r} ({type(e).__name__}: {e}): fix or remove the file "
                       f"(or leave data.strict off to skip it)") from e


#: JPEG colour spaces (``simplejpeg.decode_jpeg_header``) decoded to RGB with DCT scaling; others
#: (CMYK, YCCK, Adobe RGB) go through :func:`decode` at full size.
SCALABLE_JPEG = frozenset({"YCbCr", "Gray"})


def encoded(path: str, data: bytes) -> Encoded | None:
    """The JPEG ``data`` (of file ``path``) undecoded, with its size from the header, or None when
    it is not a JPEG that simplejpeg decodes to RGB (:data:`SCALABLE_JPEG`)."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    import simplejpeg  # lazy: the JPEG decoder loads in the processes that decode

    try:
        h, w, colour, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    return Encoded(h, w, functools.partial(_decode_reduced, path, data, h, w)) if colour in SCALABLE_JPEG else None


def _decode_reduced(path: str, data: bytes, h: int, w: int, k: int) -> np.ndarray:
    """RGB uint8 at ``ceil(h / k) x ceil(w / k)`` (libjpeg's DCT scaling by ``1/k``), or at full
    size through :func:`decode` when ``k`` is 1 or libjpeg reports an error (:class:`BadImage`
    when Pillow cannot decode it either)."""
    if k > 1:
        import simplejpeg  # lazy: the JPEG decoder loads in the processes that decode

        try:
            out = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=-(-h // k), min_width=-(-w // k))
        except ValueError:
            out = None
        if out is not None and out.shape[:2] in ((-(-h // k), -(-w // k)), (h, w)):
            return out
    out = decode(path, data)
    if out.shape[:2] != (h, w):
        raise BadImage(f"image {path!r} decodes to {out.shape[1]}x{out.shape[0]} pixels but its header says {w}x{h}: "
                       "fix or remove the file (or leave data.strict off to skip it)")
    return out


def _reduced(img: np.ndarray, side: int) -> np.ndarray:
    k = min(img.shape[0], img.shape[1]) // side
    return img if k < 2 else img[: img.shape[0] // k * k, : img.shape[1] // k * k].reshape(
        img.shape[0] // k, k, img.shape[1] // k, k, 3).mean((1, 3))


class Survey(NamedTuple):
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    side: int  #: median shorter side
    nbytes: float  #: mean decoded bytes of an image (H x W x 3)


def survey(split: FileSplit, *, n: int = STATS_IMAGES, seed: int = 0) -> Survey:
    """Mean, std, median shorter side and mean decoded size from ``n`` images drawn with ``seed``
    (files that cannot be decoded are passed over: the loader skips or rejects them).

    Mean and standard deviation are per channel in [0, 1] units, over the pixels of each image
    block-averaged to about :data:`STATS_SIDE` px (cheap for large images; the mean is unchanged
    and the spread barely)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(split), size=min(n, len(split)), replace=False)
    s1, s2, count, sides, nbytes = np.zeros(3), np.zeros(3), 0, [], []
    for i in pick:
        try:
            img = split.read(int(i))
        except BadImage:
            continue
        sides.append(min(img.shape[:2]))
        nbytes.append(img.size)
        px = _reduced(img, STATS_SIDE).reshape(-1, 3).astype(np.float64) / 255
        s1 += px.sum(0)
        s2 += (px * px).sum(0)
        count += len(px)
    if not count:
        raise UserError(f"none of {len(pick)} sampled images under {split.root!r} can be decoded: "
                         f"check the files (effnas data info)")
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean * mean, 1e-6))
    m, s = mean.tolist(), std.tolist()
    return Survey((m[0], m[1], m[2]), (s[0], s[1], s[2]), int(np.median(sides)), float(np.mean(nbytes)))


# ---------------------------------------------------------------- archives


#: Archives of image folders accepted as a data set's ``PATH`` (unpacked by :func:`unpack`).
ARCHIVES = (".tar.gz", ".tgz", ".tar")


def unpack(archive: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Unpack a ``.tar.gz`` ImageFolder once into ``cache_dir`` (default ``$EFFNAS_CACHE`` or
    ``~/.cache/effnas``)/``data/<archive stem>-<size>``, and return the directory it holds.

    The marker ``.unpacked`` records the archive's path, size and modification time: another
    archive of the same name and size, or a changed one, is unpacked again. Each process
    extracts into its own temporary directory and renames it into place, so two processes that
    unpack at once never write into the copy the other reads."""
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"archive {str(archive)!r} does not exist: give the path of a .tar.gz ImageFolder")
    base = Path(cache_dir or os.environ.get("EFFNAS_CACHE") or Path.home() / ".cache" / "effnas")
    stem = archive.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    st = archive.stat()
    dest = base / "data" / f"{stem}-{st.st_size}"
    stamp = json.dumps({"archive": str(archive.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    done = dest / ".unpacked"
    if not (done.is_file() and done.read_text() == stamp):
        tmp = dest.parent / f".{dest.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError) as e:  # not an archive, truncated, a member refused
            shutil.rmtree(tmp, ignore_errors=True)
            why = ("not a readable tar archive" if isinstance(e, tarfile.ReadError)
                   else first_line(e))
            raise UserError(f"cannot unpack {str(archive)!r} ({why}): give a .tar.gz (or .tar) of an image "
                             "folder") from e
        (tmp / ".unpacked").write_text(stamp)
        if not (done.is_file() and done.read_text() == stamp):  # nobody finished meanwhile: replace the stale copy
            shutil.rmtree(dest, ignore_errors=True)
            try:
                os.rename(tmp, dest)
            except OSError:  # another process renamed its copy in first: use that one
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    tops = [p for p in dest.iterdir() if p.is_dir()]
    return tops[0] if len(tops) == 1 else dest
