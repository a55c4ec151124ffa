"""Training recipes (``train.recipe``): the values of the ``[train]`` keys a run leaves unset.

A recipe is a set of defaults, not a set of keys: each key below is an ordinary ``[train]`` key whose
schema default is ``None`` ("the recipe's"). Precedence, highest first:

1. the key's value when given (config file, ``--set``, a flag, a stage's per-run value);
2. the recipe's value (:data:`RECIPES`);
3. nothing else: every recipe sets every key it covers.

:func:`resolve` applies this; the trainer and the supernet read the resolved :class:`Recipe`.

``default`` is the recipe this project always had (EfficientNet-like, cosine decay).
``fast`` is a short-budget recipe for small images (docs/training.md, "The fast recipe", lists each
ingredient with its source: the DAWNBench ResNet-9 line, Page 2018, and airbench, Jordan 2024):
Nesterov SGD at 0.2 per 256 images (ResNet-9: 0.4 per 512, scaled linearly with the batch), weight
decay 5e-4 (not on BatchNorm and biases), label smoothing 0.2, linear warm-up over 20 % of the run and
linear decay to zero (airbench: 23 %; ResNet-9: 5 of 24 epochs), a weight EMA (0.99 per step),
alternating flip with 2-pixel translation at 32 px (``flip_translate``), and test-time augmentation
(flip + 1-pixel translations) reported as ``test_accuracy_tta`` beside ``test_accuracy``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

#: ``train.recipe``.
RECIPE_NAMES = ("default", "fast")


@dataclass(frozen=True)
class Recipe:
    """The values a recipe gives the keys a run leaves at ``None`` (``augment``: at ``auto``).

    ``lr_per_256``: the peak learning rate per 256 images of each optimiser when ``train.lr`` is
    unset (scaled linearly to ``train.batch_size``); ``warmup_share``: the automatic warm-up's share
    of the run (``default``: capped at one epoch, ``fast``: not capped, a one-cycle shape)."""

    label_smoothing: float
    weight_decay: float
    ema: float
    schedule: str
    tta: bool
    augment: str
    lr_per_256: tuple[tuple[str, float], ...]
    warmup_share: float
    warmup_cap: float | None

    def base_lr(self, optimizer: str) -> float:
        return dict(self.lr_per_256)[optimizer]

    def warmup(self, warmup_epochs: float | None, epochs: int) -> float:
        """Warm-up epochs of a run of ``epochs``: ``warmup_epochs`` when given, else the recipe's share.

        >>> d, f = RECIPES["default"], RECIPES["fast"]
        >>> d.warmup(None, 1), d.warmup(None, 30), f.warmup(None, 30), f.warmup(0.5, 30)
        (0.1, 1.0, 6.0, 0.5)
        """
        if warmup_epochs is not None:
            return warmup_epochs
        share = round(self.warmup_share * epochs, 6)
        return share if self.warmup_cap is None else min(self.warmup_cap, share)


class RecipeKeys(Protocol):
    """The ``[train]`` keys a recipe fills (``effnas.experiments.config.schema.TrainConfig`` has them)."""

    @property
    def recipe(self) -> str: ...
    @property
    def label_smoothing(self) -> float | None: ...
    @property
    def weight_decay(self) -> float | None: ...
    @property
    def ema(self) -> float | None: ...
    @property
    def schedule(self) -> str | None: ...
    @property
    def tta(self) -> bool | None: ...
    @property
    def augment(self) -> str: ...


RECIPES: dict[str, Recipe] = {
    "default": Recipe(label_smoothing=0.1, weight_decay=5e-5, ema=0.0, schedule="cosine", tta=False, augment="auto",
                      lr_per_256=(("sgd", 0.4), ("adamw", 4e-3), ("rmsprop", 0.016)), warmup_share=0.1,
                      warmup_cap=1.0),
    "fast": Recipe(label_smoothing=0.2, weight_decay=5e-4, ema=0.99, schedule="linear", tta=True,
                   augment="flip_translate", lr_per_256=(("sgd", 0.2), ("adamw", 4e-3), ("rmsprop", 0.016)),
                   warmup_share=0.2, warmup_cap=None),
}


def resolve(cfg: RecipeKeys) -> Recipe:
    """``cfg``'s recipe with every key ``cfg`` sets put in its place (the module docstring's precedence).

    >>> from effnas.experiments.config.schema import TrainConfig
    >>> fast = TrainConfig(recipe="fast")
    >>> resolve(fast).label_smoothing, resolve(replace(fast, label_smoothing=0.0)).label_smoothing
    (0.2, 0.0)
    """
    r = RECIPES[cfg.recipe]
    return replace(r, label_smoothing=r.label_smoothing if cfg.label_smoothing is None else cfg.label_smoothing,
                   weight_decay=r.weight_decay if cfg.weight_decay is None else cfg.weight_decay,
                   ema=r.ema if cfg.ema is None else cfg.ema, schedule=cfg.schedule or r.schedule,
                   tta=r.tta if cfg.tta is None else cfg.tta,
                   augment=r.augment if cfg.augment == "auto" else cfg.augment)
