"""Per-image transforms of streamed images: the papers' crops, flip and per-image policies.

An :class:`ImageTransform` turns one decoded RGB uint8 ``(H, W, 3)`` image at native size into a
uint8 ``(R, R, 3)`` image at the run's resolution ``R``. Geometry, per data set:

* ``inception`` (sets of large images, e.g. ImageNet): training takes the Inception random-resized
  crop (area 8-100 %, aspect ratio 3/4-4/3, 10 attempts, then the evaluation crop: the TF
  EfficientNet rule) resized to ``R`` plus a flip; evaluation takes a centred square of side
  ``crop_pct x`` the shorter side and resizes it to ``R``. ``crop_pct`` defaults to
  ``R / (R + 32)``: ``CROP_PADDING = 32`` of the TF EfficientNet preprocessing
  (tensorflow/tpu ``models/official/efficientnet/preprocessing.py``, ``_decode_and_center_crop``),
  0.875 at 224 px and 0.949 at B7's 600 px. Both resizes are bicubic, antialiased as Pillow's
  (torch's uint8 kernel); a JPEG is decoded at the largest DCT reduction (1/2, 1/4, 1/8) that
  leaves the crop at least ``R`` pixels a side (:class:`Encoded`, :func:`reduction`).
* ``small`` (e.g. CIFAR's 32 px): the image is resized to ``R`` (identity at native size);
  training adds the CIFAR pad-crop (``R // 8`` zero pixels) and a flip.

All randomness of one image comes from ``numpy.random.default_rng((seed, epoch, index))``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from effnas.experiments.data.augment import PerImagePolicy
from effnas.search_spaces.common.errors import UserError

CROP_PADDING = 32  #: TF EfficientNet evaluation: crop_pct = resolution / (resolution + 32)
RRC_SCALE = (0.08, 1.0)  #: Inception crop: share of the image area (Szegedy et al. 2015)
RRC_RATIO = (3 / 4, 4 / 3)  #: Inception crop: aspect ratio width / height
GEOMETRIES = ("inception", "small")


def eval_crop_pct(resolution: int, crop_pct: float | None = None) -> float:
    """The centre crop's share of the shorter side: ``crop_pct``, or the TF EfficientNet rule.

    >>> round(eval_crop_pct(224), 4), round(eval_crop_pct(600), 4), eval_crop_pct(224, 0.9)
    (0.875, 0.9494, 0.9)
    """
    return crop_pct if crop_pct is not None else resolution / (resolution + CROP_PADDING)


def centre_box(h: int, w: int, crop_pct: float) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centred square of side ``int(crop_pct * min(h, w))``
    (TF EfficientNet ``_decode_and_center_crop``: offsets ``(h - side + 1) // 2``)."""
    side = max(1, int(crop_pct * min(h, w)))
    return (h - side + 1) // 2, (w - side + 1) // 2, side, side


def inception_box(h: int, w: int, rng: np.random.Generator, crop_pct: float, *, attempts: int = 10) -> tuple[
        int, int, int, int]:
    """(top, left, height, width) of an Inception random-resized crop: area share uniform in
    :data:`RRC_SCALE`, log-uniform aspect ratio in :data:`RRC_RATIO`; after ``attempts`` misses
    the evaluation centre crop (as TF EfficientNet's ``_decode_and_random_crop``)."""
    area = h * w
    lo, hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
    for _ in range(attempts):
        target = area * rng.uniform(*RRC_SCALE)
        ratio = math.exp(rng.uniform(lo, hi))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    return centre_box(h, w, crop_pct)


def _crop(img: np.ndarray, box: tuple[int, int, int, int]) -> Tensor:
    """The ``box`` (top, left, height, width) of an ``(H, W, 3)`` uint8 image as a ``(3, h, w)``
    tensor view (copied from a read-only array, e.g. the decoded cache's memory map)."""
    top, left, ch, cw = box
    crop = img[top:top + ch, left:left + cw]
    return torch.from_numpy(crop if crop.flags.writeable else crop.copy()).permute(2, 0, 1)


def _resize(x: Tensor, resolution: int) -> Tensor:
    """uint8 ``(3, h, w)`` -> ``(3, R, R)``: antialiased bicubic (torch's uint8 kernel, which follows
    Pillow's ``BICUBIC``: mean absolute difference 0.01 levels on 224-px Inception crops of 500x375
    photos, in less CPU time than Pillow: docs/data.md, "Measured numbers behind the code's choices")."""
    if x.shape[1] == x.shape[2] == resolution:
        return x
    return F.interpolate(x[None], size=(resolution, resolution), mode="bicubic", antialias=True)[0]


def _pad_crop(img: Tensor, pad: int, rng: np.random.Generator) -> Tensor:
    c, h, w = img.shape
    padded = img.new_zeros((c, h + 2 * pad, w + 2 * pad))
    padded[:, pad:pad + h, pad:pad + w] = img
    oy, ox = int(rng.integers(0, 2 * pad + 1)), int(rng.integers(0, 2 * pad + 1))
    return padded[:, oy:oy + h, ox:ox + w]


def reduction(box: tuple[int, int, int, int], resolution: int) -> int:
    """The largest libjpeg DCT reduction (1, 2, 4 or 8) that leaves ``box`` at least ``resolution``
    pixels on both sides after its edges snap to the reduced pixels (:func:`_scaled`): decoding
    at ``1/k`` size never magnifies what a full decode would not.

    Only powers of two: libjpeg-turbo's other scales (5/8-7/8, a generic scaled IDCT) cost more
    CPU time than a full decode (docs/data.md, "Measured numbers behind the code's choices").

    >>> reduction((0, 0, 375, 500), 224), reduction((0, 0, 900, 1200), 224), reduction((0, 0, 16, 16), 1)
    (1, 4, 8)
    >>> reduction((5, 5, 100, 120), 224)  # a crop smaller than the output: full size, magnified
    1
    """
    side = min(box[2], box[3])
    return next((k for k in (8, 4, 2) if side >= k * (resolution + 1)), 1)


def _scaled(box: tuple[int, int, int, int], k: int, h: int, w: int) -> tuple[int, int, int, int]:
    """``box`` of the full image in the pixels of its ``1/k`` decode (``(h, w)``: the decode's size):
    decoded pixel ``j`` covers full pixels ``k j .. k j + k - 1``, so each edge moves to the nearest
    multiple of ``k`` full pixels (by at most ``k / 2``; a box of ``k (R + 1)`` full pixels keeps
    at least ``R``)."""
    if k == 1:
        return box
    top, left = round(box[0] / k), round(box[1] / k)
    bottom, right = min(h, round((box[0] + box[2]) / k)), min(w, round((box[1] + box[3]) / k))
    return top, left, bottom - top, right - left


@dataclass(frozen=True)
class Encoded:
    """An image read but not decoded: its size from the file's header and ``decode(k)``, which
    returns RGB uint8 at ``ceil(height / k) x ceil(width / k)`` (k = 1, 2, 4, 8: libjpeg's DCT
    scaling) or, when it cannot reduce, at full size. Lets :class:`ImageTransform` draw its crop
    on the full image and then decode only as many pixels as the crop needs."""

    height: int
    width: int
    decode: Callable[[int], np.ndarray]


@dataclass(frozen=True)
class ImageTransform:
    """One image (RGB uint8 ``(H, W, 3)``, native size) -> uint8 ``(R, R, 3)`` at ``resolution``.

    ``geometry``: ``inception`` or ``small`` (module docstring). ``crop``: ``rrc`` (Inception
    random-resized crop), ``pad`` (CIFAR pad-crop) or ``none`` (the evaluation geometry).
    ``flip``: random horizontal flip. ``policy``: ``autoaugment`` / ``randaugment`` drawn per
    image, or None; ``magnitude``: RandAugment's (None: its default). ``seed``: with the epoch and the
    image's index, all its randomness.
    """

    resolution: int
    geometry: str = "inception"
    crop: str = "none"
    flip: bool = False
    policy: str | None = None
    crop_pct: float | None = None
    seed: int = 0
    magnitude: float | None = None

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise UserError(f"unknown geometry {self.geometry!r}: expected one of {', '.join(GEOMETRIES)}")
        if self.crop not in ("rrc", "pad", "none"):
            raise UserError(f"unknown crop {self.crop!r}: expected rrc, pad or none")
        if self.crop_pct is not None and not 0.0 < self.crop_pct <= 1.0:
            raise UserError(f"crop_pct must be in (0, 1], got {self.crop_pct}")

    def describe(self) -> str:
        """e.g. ``'rrc(0.08-1)+flip+autoaugment@224'`` or ``'centre(0.875)@224'``."""
        r = self.resolution
        if self.crop == "rrc":
            parts = [f"rrc({RRC_SCALE[0]:g}-{RRC_SCALE[1]:g})"]
        elif self.geometry == "inception":
            parts = [f"centre({eval_crop_pct(r, self.crop_pct):.3f})"]
        else:
            parts = ["resize"] + ([f"pad{max(1, r // 8)}"] if self.crop == "pad" else [])
        parts += ["flip"] if self.flip else []
        if self.policy:
            parts.append(self.policy + (f"(m={self.magnitude:g})" if self.magnitude is not None else ""))
        return "+".join(parts) + f"@{r}"

    def box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the region of an ``h x w`` image resized to the resolution
        (drawn with ``rng`` for the Inception crop: the first draws of the image's generator)."""
        pct = eval_crop_pct(self.resolution, self.crop_pct)
        if self.geometry == "small":
            return 0, 0, h, w
        return inception_box(h, w, rng, pct) if self.crop == "rrc" else centre_box(h, w, pct)

    def __call__(self, img: np.ndarray | Encoded, epoch: int, index: int) -> Tensor:
        """uint8 ``(R, R, 3)`` (height, width, channel: a batch of these is a channels_last
        ``(N, 3, R, R)`` batch after one ``permute``, without a copy). ``img``: RGB uint8
        ``(H, W, 3)``, or an :class:`Encoded` JPEG, decoded here at the largest DCT reduction
        that still gives the crop at least ``R`` pixels a side (:func:`reduction`)."""
        rng = np.random.default_rng((self.seed, epoch, index))
        r = self.resolution
        h, w = (img.height, img.width) if isinstance(img, Encoded) else img.shape[:2]
        box = self.box(h, w, rng)
        if isinstance(img, Encoded):
            k = reduction(box, r)
            pixels = img.decode(k)
            k = k if pixels.shape[:2] != (h, w) else 1  # a decoder that could not reduce (shapes checked there)
            box, img = _scaled(box, k, *pixels.shape[:2]), pixels
        x = _resize(_crop(img, box), r)  # (3, R, R)
        if self.crop == "pad":
            x = _pad_crop(x, max(1, r // 8), rng)
        if self.flip and rng.random() < 0.5:
            x = x.flip(2)
        if self.policy is not None:
            x = _policy(self.policy, self.magnitude)(x.contiguous(), seed=int(rng.integers(2**62)))
        return x.permute(1, 2, 0).contiguous()


_POLICIES = threading.local()


def _policy(name: str, magnitude: float | None) -> PerImagePolicy:
    """One policy object per process and magnitude (built lazily in each worker)."""
    cache: dict[tuple[str, float | None], PerImagePolicy] = _POLICIES.__dict__.setdefault("by_name", {})
    if (name, magnitude) not in cache:
        cache[name, magnitude] = PerImagePolicy(name, magnitude=magnitude)
    return cache[name, magnitude]
