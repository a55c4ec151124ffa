"""Per-image transforms of streamed images: the papers' crops, flip and per-image policies.

An :class:`ImageTransform` turns one decoded RGB uint8 ``(H, W, 3)`` image at native size into a
uint8 ``(R, R, 3)`` image at the run's resolution ``R``. Geometry, per data set:

* ``inception`` (sets of large images, e.g. ImageNet): training takes the Inception random-resized
  crop (area 8-100 %, aspect ratio 3/4-4/3, 10 attempts, then the evaluation crop: the TF
  EfficientNet rule) resized to ``R`` plus a flip; evaluation takes a centred square of side
  ``crop_pct x`` the shorter side and resizes it to ``R``. ``crop_pct`` defaults to
  ``R / (R + 32)``: ``CROP_PADDING = 32`` of the TF EfficientNet preprocessing
  (tensorflow/tpu ``models/official/efficientnet/preprocessing.py``, ``_decode_and_center_crop``),
  0.875 at 224 px and 0.949 at B7's 600 px. Both resizes are bicubic (antialiased by Pillow).
* ``small`` (e.g. CIFAR's 32 px): the image is resized to ``R`` (identity at native size);
  training adds the CIFAR pad-crop (``R // 8`` zero pixels) and a flip.

All randomness of one image comes from ``numpy.random.default_rng((seed, epoch, index))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from experiments.augment import PerImagePolicy

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


def _resize(img: np.ndarray, box: tuple[int, int, int, int], resolution: int) -> np.ndarray:
    top, left, ch, cw = box
    if (top, left, ch, cw) == (0, 0, img.shape[0], img.shape[1]) and ch == cw == resolution:
        return img
    from PIL import Image

    out = Image.fromarray(img).resize((resolution, resolution), Image.Resampling.BICUBIC,
                                      box=(left, top, left + cw, top + ch))
    return np.asarray(out)


def _pad_crop(img: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    padded = np.zeros((h + 2 * pad, w + 2 * pad, 3), dtype=np.uint8)
    padded[pad:pad + h, pad:pad + w] = img
    oy, ox = int(rng.integers(0, 2 * pad + 1)), int(rng.integers(0, 2 * pad + 1))
    return padded[oy:oy + h, ox:ox + w]


@dataclass(frozen=True)
class ImageTransform:
    """One image (RGB uint8 ``(H, W, 3)``, native size) -> uint8 ``(R, R, 3)`` at ``resolution``.

    ``geometry``: ``inception`` or ``small`` (module docstring). ``crop``: ``rrc`` (Inception
    random-resized crop), ``pad`` (CIFAR pad-crop) or ``none`` (the evaluation geometry).
    ``flip``: random horizontal flip. ``policy``: ``autoaugment`` / ``randaugment`` drawn per
    image, or None. ``seed``: with the epoch and the image's index, all its randomness.
    """

    resolution: int
    geometry: str = "inception"
    crop: str = "none"
    flip: bool = False
    policy: str | None = None
    crop_pct: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {self.geometry!r}: expected one of {', '.join(GEOMETRIES)}")
        if self.crop not in ("rrc", "pad", "none"):
            raise ValueError(f"unknown crop {self.crop!r}: expected rrc, pad or none")
        if self.crop_pct is not None and not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")

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
        parts += [self.policy] if self.policy else []
        return "+".join(parts) + f"@{r}"

    def __call__(self, img: np.ndarray, epoch: int, index: int) -> Tensor:
        """uint8 ``(R, R, 3)`` (height, width, channel: a batch of these is a channels_last
        ``(N, 3, R, R)`` batch after one ``permute``, without a copy)."""
        rng = np.random.default_rng((self.seed, epoch, index))
        h, w = img.shape[:2]
        r, pct = self.resolution, eval_crop_pct(self.resolution, self.crop_pct)
        if self.geometry == "small":
            img = _resize(img, (0, 0, h, w), r)
            if self.crop == "pad":
                img = _pad_crop(img, max(1, r // 8), rng)
        elif self.crop == "rrc":
            img = _resize(img, inception_box(h, w, rng, pct), r)
        elif self.crop == "pad":
            img = _pad_crop(_resize(img, centre_box(h, w, pct), r), max(1, r // 8), rng)
        else:
            img = _resize(img, centre_box(h, w, pct), r)
        if self.flip and rng.random() < 0.5:
            img = img[:, ::-1]
        img = np.ascontiguousarray(img)
        x = torch.from_numpy(img if img.flags.writeable else img.copy())
        if self.policy is not None:
            x = _policy(self.policy)(x.permute(2, 0, 1), seed=int(rng.integers(2**62))).permute(1, 2, 0)
        return x.contiguous()


_POLICIES: dict[str, PerImagePolicy] = {}


def _policy(name: str) -> PerImagePolicy:
    """One policy object per process (built lazily in each worker)."""
    if name not in _POLICIES:
        _POLICIES[name] = PerImagePolicy(name)
    return _POLICIES[name]
