"""``[search.train]``: the proxy recipe a search trains its candidates with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from effnas.experiments.config.sections import Section, at_most, fraction, positive, unit


@dataclass(frozen=True)
class ProxyConfig(Section):
    """``[search.train]``: the proxy training of search candidates, on top of ``[train]``.

    Args:
        epochs: proxy epochs (MnasNet: 5).
        warmup_epochs: linear warm-up; ``None``: 10 % of the proxy epochs (a full recipe's
            5 warm-up epochs would fill a 5-epoch proxy).
        ema: weight EMA decay of the proxy (0: off; 0.9999 needs far more steps than a proxy has).
        batch_size: ``None``: ``train.batch_size``.
        data_fraction: fraction of the training split per candidate (MnasNet: a proxy split).
    """

    SECTION: ClassVar[str] = "search.train"

    epochs: int = 5
    warmup_epochs: float | None = None
    ema: float = 0.0
    batch_size: int | None = None
    data_fraction: float = 1.0

    def __post_init__(self) -> None:
        positive("search.train.epochs", self.epochs)
        positive("search.train.warmup_epochs", self.warmup_epochs, zero=True)
        at_most("search.train.warmup_epochs", self.warmup_epochs, self.epochs,
                "the warm-up fits in search.train.epochs")
        unit("search.train.ema", self.ema)
        positive("search.train.batch_size", self.batch_size)
        fraction("search.train.data_fraction", self.data_fraction)
