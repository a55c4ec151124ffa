"""Compound-scaling coefficients as a record: alpha (depth), beta (width), gamma (resolution),
with the constraint ``alpha * beta**2 * gamma**2 ~ target`` (EfficientNet paper, Eq. 3: target 2,
so that MACs roughly double per unit of phi) and a JSON file form (``coefficients.json``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from effnas.scaling.compound import PAPER_COEFFICIENTS, check_coefficients
from effnas.search_spaces.common.atomic import atomic_text
from effnas.search_spaces.common.errors import UserError, absent, user_file

#: Default distance from the target that ``check_product`` accepts for user-given coefficients
#: (the paper's own 1.2, 1.1, 1.15 give 1.92, 0.08 from 2).
PRODUCT_TOLERANCE = 0.25


@dataclass(frozen=True)
class Coefficients:
    """alpha, beta, gamma >= 1 (depth, width, resolution bases of ``d, w, r = alpha**phi, ...``).

    >>> Coefficients(1.2, 1.1, 1.15).product
    1.92027
    """

    alpha: float
    beta: float
    gamma: float

    def __post_init__(self) -> None:
        check_coefficients(self.alpha, self.beta, self.gamma)

    @property
    def product(self) -> float:
        """``alpha * beta**2 * gamma**2``: the nominal MACs ratio per unit of phi (Eq. 3)."""
        return round(self.alpha * self.beta**2 * self.gamma**2, 10)

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta, self.gamma)

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "product": self.product}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Coefficients:
        if not isinstance(data, dict):
            raise UserError(f"coefficients must be a JSON object with alpha, beta, gamma, got {type(data).__name__}")
        missing = [k for k in ("alpha", "beta", "gamma") if k not in data]
        if missing:
            raise UserError(f"coefficients lack {missing[0]!r}: give alpha, beta and gamma")
        values = []
        for k in ("alpha", "beta", "gamma"):
            v = data[k]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise UserError(f"{k} must be a number, got {v!r}")
            values.append(float(v))
        return cls(*values)

    @classmethod
    def load(cls, path: str | Path) -> Coefficients:
        """Read a ``coefficients.json`` (as written by ``effnas grid``)."""
        p = Path(path)
        with user_file(p, "coefficients file", "give the coefficients.json of a grid run"):
            if not p.is_file():
                raise UserError(f"coefficients file {str(p)!r} {absent(p)}: give the coefficients.json of a grid "
                                "run")
            text = p.read_text()
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise UserError(f"malformed coefficients JSON {str(p)!r}: {e or 'nested too deeply to parse'}") from e
        return cls.from_dict(data)

    def save(self, path: str | Path, **extra: Any) -> None:
        atomic_text(path, json.dumps({**self.to_dict(), **extra}, indent=2) + "\n")


PAPER = Coefficients(*PAPER_COEFFICIENTS)


def check_product(c: Coefficients, *, target: float = 2.0, tolerance: float = PRODUCT_TOLERANCE) -> None:
    """Refuse coefficients whose ``alpha * beta**2 * gamma**2`` is far from ``target``.

    >>> check_product(Coefficients(1.2, 1.1, 1.15))
    >>> check_product(Coefficients(1.5, 1.3, 1.3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    effnas.search_spaces.common.errors.UserError: alpha*beta^2*gamma^2 = 4.28 is far from the target 2 ...: ...
    """
    if not (math.isfinite(target) and target >= 1.0):
        raise UserError(f"target must be a finite number >= 1, got {target}")
    if abs(c.product - target) > tolerance + 1e-9:
        raise UserError(
            f"alpha*beta^2*gamma^2 = {c.product:.3g} is far from the target {target:g} (tolerance {tolerance:g}): "
            f"choose coefficients whose product is near {target:g}, or pass --target"
        )


__all__ = ["PAPER", "PRODUCT_TOLERANCE", "Coefficients", "check_product"]
