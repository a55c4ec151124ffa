"""Progressive learning (``train.progressive_*``): a run in stages whose image size and regularisation
grow from small to large (EfficientNetV2, Tan & Le, ICML 2021, Section 4, Algorithm 1 and Table 6).

The keys (``[train]``; docs/training.md, "Progressive learning"):

* ``progressive_stages = M``: 1 (the default) trains as always; ``M >= 2`` splits ``train.epochs`` into M
  stages of (nearly) equal epochs: stage ``i`` (0-based) trains epochs ``i E // M + 1 .. (i + 1) E // M``
  (google/automl ``efficientnetv2/main_tf2.py``: ``start_epoch = int(stage / total_stages * epochs)``).
* ``progressive_min_size = S0``: the first stage's image size in pixels. The last stage trains at the
  run's own resolution ``Se`` (the spec's, ``data.resolution``, a family member's), which is also where
  validation and test evaluate. Stage ``i`` trains at ``S_i = int(S0 + (Se - S0) i / (M - 1))``
  (Algorithm 1; ``int()`` truncates as automl's ``image_size = int(ibase + ...)``). Unset: every stage at ``Se``.
* ``progressive_dropout``, ``progressive_randaug``, ``progressive_mixup = [first, last]``: the head's
  dropout, RandAugment's magnitude and mixup's alpha, interpolated linearly,
  ``first + (last - first) i / (M - 1)`` (Algorithm 1; automl: ``np.linspace(5, ram, total_stages)``).
  Unset: the run's own dropout, RandAugment at its fixed magnitude 9 (with ``augment = "randaugment"``),
  no mixup.

Table 6's EfficientNetV2-S: size 128 -> 300, RandAugment 5 -> 15, mixup 0 -> 0, dropout 0.1 -> 0.3, in 4
stages of 87 of 350 epochs (Section 5.1); as keys ``progressive_stages = 4``, ``progressive_min_size = 128``
with ``resolution = 300``, ``progressive_randaug = [5, 15]``, ``progressive_dropout = [0.1, 0.3]``.
Where automl's code departs from the paper (the rule here is the paper's): its image size steps with
``(i + 1) / M`` (the first stage is not S0: 171, 214, 257, 300 for V2-S), and it leaves dropout fixed
(``dp_list`` is computed and deleted). Magnitudes are kornia's RandAugment ``m`` (``0 < m < 30``, an
operation's strength is ``m / 30`` of its range), not TF's level (``level / 10`` of the range, so TF 15 is
kornia 45, past kornia's range): Table 6's numbers do not carry over one for one.

A one-stage run's :func:`stages` is the run itself (its size, no scheduled regularisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from effnas.search_spaces.block import MAX_RESOLUTION
from effnas.search_spaces.common.errors import UserError

#: kornia's RandAugment takes magnitudes strictly between 0 and this.
MAX_RANDAUG = 30.0
#: The regularisation keys, each ``[first, last]``.
RANGES = ("progressive_dropout", "progressive_randaug", "progressive_mixup")


class ProgressiveKeys(Protocol):
    """The ``[train]`` keys progressive learning reads (``TrainConfig`` has them)."""

    @property
    def epochs(self) -> int: ...
    @property
    def augment(self) -> str: ...
    @property
    def dropout(self) -> float | None: ...
    @property
    def progressive_stages(self) -> int: ...
    @property
    def progressive_min_size(self) -> int | None: ...
    @property
    def progressive_dropout(self) -> tuple[float, ...]: ...
    @property
    def progressive_randaug(self) -> tuple[float, ...]: ...
    @property
    def progressive_mixup(self) -> tuple[float, ...]: ...


def check(cfg: ProgressiveKeys) -> None:
    """The keys' one-line errors: values in range, pairs of two, nothing scheduled in one stage, no
    stage without an epoch, no key that would change nothing."""
    m = cfg.progressive_stages
    if m < 1:
        raise UserError(f"train.progressive_stages must be an integer >= 1 (1: no progressive learning), got {m}")
    given = [k for k in RANGES if getattr(cfg, k)] + (["progressive_min_size"] if cfg.progressive_min_size else [])
    if m == 1 and given:
        raise UserError(f"train.{given[0]} needs train.progressive_stages >= 2 (one stage trains at the run's own "
                         "size and regularisation): set progressive_stages, e.g. 4, or drop it")
    if m > 1 and not given:
        raise UserError(f"train.progressive_stages = {m} schedules nothing: give train.progressive_min_size and/or "
                         "progressive_dropout, progressive_randaug, progressive_mixup, or set progressive_stages = 1")
    if m > cfg.epochs:
        raise UserError(f"train.progressive_stages = {m} needs a run of at least as many epochs, got {cfg.epochs} "
                         "(train.epochs, or a stage's own epochs): each stage trains whole epochs; lower "
                         "progressive_stages or raise the epochs")
    size = cfg.progressive_min_size
    if size is not None and not 1 <= size <= MAX_RESOLUTION:
        raise UserError(f"train.progressive_min_size must be pixels in [1, {MAX_RESOLUTION}], got {size}")
    for key in RANGES:
        pair = getattr(cfg, key)
        if pair and len(pair) != 2:
            raise UserError(f"train.{key} must be [first, last] (two numbers), got {list(pair)}")
    for v in cfg.progressive_dropout:
        if not 0 <= v < 1:
            raise UserError(f"train.progressive_dropout values must be in [0, 1), got {v}")
    for v in cfg.progressive_randaug:
        if not 0 < v < MAX_RANDAUG:
            raise UserError(f"train.progressive_randaug values must be RandAugment magnitudes in (0, 30), got {v}")
    for v in cfg.progressive_mixup:
        if not (math.isfinite(v) and v >= 0):
            raise UserError(f"train.progressive_mixup values must be mixup alphas >= 0 (0: off), got {v}")
    if cfg.progressive_randaug and cfg.augment != "randaugment":
        raise UserError(f"train.progressive_randaug schedules RandAugment's magnitude, but train.augment is "
                         f"{cfg.augment!r}: set train.augment = 'randaugment'")
    if cfg.progressive_dropout and cfg.dropout is not None:
        raise UserError("train.dropout and train.progressive_dropout both set: give one (the schedule sets the "
                         "dropout of every stage)")


@dataclass(frozen=True)
class Stage:
    """Stage ``index`` of a run: epochs ``first_epoch .. last_epoch`` (1-based, inclusive) at ``size``
    pixels, with the head's ``dropout``, RandAugment's ``randaug`` magnitude (None: not scheduled) and
    mixup's ``mixup`` alpha (0: none)."""

    index: int
    first_epoch: int
    last_epoch: int
    size: int
    dropout: float | None = None
    randaug: float | None = None
    mixup: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.index, "first_epoch": self.first_epoch, "last_epoch": self.last_epoch,
                "image_size": self.size, "dropout": self.dropout, "randaug": self.randaug, "mixup": self.mixup}


def _at(pair: tuple[float, ...], i: int, m: int) -> float | None:
    """``pair``'s value at stage ``i`` of ``m`` (np.linspace's: the last exactly ``pair[1]``)."""
    if not pair:
        return None
    first, last = pair
    return float(last) if i == m - 1 else first + (last - first) * i / (m - 1)


def stages(cfg: ProgressiveKeys, resolution: int) -> tuple[Stage, ...]:
    """The stages of a run whose own (final, evaluation) resolution is ``resolution`` pixels.

    >>> from effnas.experiments.config.schema import TrainConfig
    >>> s = TrainConfig(epochs=350, augment="randaugment", progressive_stages=4, progressive_min_size=128,
    ...                 progressive_randaug=(5, 15), progressive_dropout=(0.1, 0.3))
    >>> [(x.first_epoch, x.last_epoch, x.size, round(x.randaug, 2)) for x in stages(s, 300)]
    [(1, 87, 128, 5.0), (88, 175, 185, 8.33), (176, 262, 242, 11.67), (263, 350, 300, 15.0)]
    >>> stages(TrainConfig(epochs=3), 32)
    (Stage(index=0, first_epoch=1, last_epoch=3, size=32, dropout=None, randaug=None, mixup=0.0),)
    """
    m, e, s0 = cfg.progressive_stages, cfg.epochs, cfg.progressive_min_size
    if s0 is not None and s0 > resolution:
        raise UserError(f"train.progressive_min_size = {s0} is above the run's resolution {resolution} px, where "
                         "the last stage trains and the run evaluates: lower it")
    out = []
    for i in range(m):
        size = resolution if s0 is None or m == 1 else s0 + (resolution - s0) * i // (m - 1)
        mixup = _at(cfg.progressive_mixup, i, m)
        out.append(Stage(i, i * e // m + 1, (i + 1) * e // m, size, _at(cfg.progressive_dropout, i, m),
                         _at(cfg.progressive_randaug, i, m), mixup or 0.0))
    return tuple(out)


def stage_at(plan: tuple[Stage, ...], epoch: int) -> Stage:
    """The stage that trains ``epoch`` (1-based); epochs past the last stage's (none in a run) are the last's."""
    return next((s for s in plan if epoch <= s.last_epoch), plan[-1])


__all__ = ["MAX_RANDAUG", "RANGES", "ProgressiveKeys", "Stage", "check", "stage_at", "stages"]
