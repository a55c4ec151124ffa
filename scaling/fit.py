"""Saturating power laws fitted to scaling curves: ``error = a * (x / x0) ** -b + c``.

``x`` is MACs (or params), ``x0`` the smallest x of the data (so ``a`` is the error above the
floor at the smallest model), ``b`` the decay exponent and ``c`` the irreducible error the
curve saturates at. Fitted with ``scipy.optimize.curve_fit`` (bounded least squares). The
extrapolation band is the central interval of predictions under parameters drawn from the
fit's normal approximation (``popt``, ``pcov``), which widens away from the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import curve_fit

from effnas.search_spaces.common.errors import UserError

#: Bounds of (a, b, c): errors are fractions in [0, 1]; exponents beyond 3 are not plausible
#: for accuracy-vs-compute curves and only make the fit unstable.
BOUNDS = ([0.0, 0.0, 0.0], [1.0, 3.0, 1.0])


def _law(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(x, -b) + c


@dataclass(frozen=True)
class PowerLaw:
    """A fitted ``error = a * (x / x0) ** -b + c`` with its covariance and residual error."""

    a: float
    b: float
    c: float
    x0: float
    cov: tuple[tuple[float, ...], ...]
    n_points: int
    rmse: float

    def predict(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Predicted error at ``x``."""
        return _law(np.asarray(x, dtype=float) / self.x0, self.a, self.b, self.c)

    def band(self, x: Sequence[float] | np.ndarray, *, level: float = 0.9, draws: int = 2000,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper predicted error at ``x`` (central ``level`` interval; NaN when the
        covariance is undetermined, e.g. three points for three parameters, or so wide that
        fewer than 10 % of parameter draws are within :data:`BOUNDS`)."""
        x = np.asarray(x, dtype=float)
        cov = np.asarray(self.cov, dtype=float)
        if not np.all(np.isfinite(cov)):
            nan = np.full_like(x, np.nan)
            return nan, nan
        rng = np.random.default_rng(seed)
        p = rng.multivariate_normal([self.a, self.b, self.c], cov, size=draws, check_valid="ignore")
        inside = np.all((p >= BOUNDS[0]) & (p <= BOUNDS[1]), axis=1)
        # Keep draws inside the bounds (clipping them would pile mass on the bounds and skew the
        # band). If most draws fall outside, the data do not identify the parameters: no band.
        if inside.mean() < 0.1:
            nan = np.full_like(x, np.nan)
            return nan, nan
        p = p[inside]
        preds = p[:, :1] * np.power(x[None, :] / self.x0, -p[:, 1:2]) + p[:, 2:3]
        q = (1 - level) / 2
        return np.quantile(preds, q, axis=0), np.quantile(preds, 1 - q, axis=0)

    @property
    def has_band(self) -> bool:
        """Whether the data determine the parameters well enough for an extrapolation band."""
        return bool(np.all(np.isfinite(self.band([self.x0], draws=400)[0])))

    def to_dict(self) -> dict[str, Any]:
        return {"band": "90 % of predictions under draws from the fit covariance" if self.has_band
                else "undetermined: the data do not pin down a, b, c",
                "law": "error = a * (x / x0) ** -b + c", "a": self.a, "b": self.b, "c": self.c, "x0": self.x0,
                "n_points": self.n_points, "rmse": self.rmse,
                "stderr": [math.sqrt(v) if math.isfinite(v) and v >= 0 else None
                           for v in np.diag(np.asarray(self.cov, dtype=float))]}


def fit_power_law(x: Sequence[float] | np.ndarray, error: Sequence[float] | np.ndarray) -> PowerLaw:
    """Fit ``error = a * (x / min(x)) ** -b + c`` to points (repeated x, e.g. seeds, allowed).

    >>> x = np.array([1e6, 2e6, 4e6, 8e6, 16e6])
    >>> f = fit_power_law(x, 0.2 * (x / 1e6) ** -0.5 + 0.05)
    >>> round(f.a, 3), round(f.b, 3), round(f.c, 3)
    (0.2, 0.5, 0.05)
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(error, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys) & (xs > 0)
    xs, ys = xs[keep], ys[keep]
    if len(np.unique(xs)) < 3:
        raise UserError(f"a saturating power law needs points at >= 3 distinct sizes, got {len(np.unique(xs))}")
    x0 = float(xs.min())
    c0 = max(0.0, float(ys.min()) * 0.5)
    p0 = [min(1.0, max(1e-3, float(ys.max()) - c0)), 0.5, c0]
    popt, pcov = curve_fit(_law, xs / x0, ys, p0=p0, bounds=BOUNDS, maxfev=20000)
    resid = ys - _law(xs / x0, *popt)
    cov = tuple(tuple(float(v) for v in row) for row in np.atleast_2d(pcov))
    return PowerLaw(float(popt[0]), float(popt[1]), float(popt[2]), x0, cov, int(len(xs)),
                    float(np.sqrt(np.mean(resid**2))))


__all__ = ["BOUNDS", "PowerLaw", "fit_power_law"]
