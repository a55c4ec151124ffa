"""Saturating power laws fitted to scaling curves: ``error = a * (x / x0) ** -b + c``.

``x`` is MACs (or params), ``x0`` the smallest x of the data (so ``a`` is the error above the
floor at the smallest model), ``b`` the decay exponent and ``c`` the irreducible error the
curve saturates at. Fitted with ``scipy.optimize.curve_fit`` (bounded least squares). The
extrapolation band is the central interval of predictions under parameters drawn from the
fit's normal approximation (``popt``, ``pcov``), which widens away from the data.

A fit has one of three statuses (:attr:`PowerLaw.status`):

* ``determined``: the covariance is finite and describes the parameters: standard errors and a
  band;
* ``at bound``: a parameter sits at its bound in :data:`BOUNDS` (``at_bound``, e.g. ``("c",)``
  when the best floor is 0). The normal approximation ignores the bound, so there is no band;
  the fitted curve is still the best one within the bounds;
* ``undetermined``: the data do not pin down ``a``, ``b`` and ``c`` (three sizes with one run
  each, or a covariance so wide that fewer than 10 % of parameter draws lie within the bounds):
  no band, and the curve is not drawn (``effnas.scaling.curves.plot_curves``).

Optionally (``bootstrap=N``) the fit is repeated on the runs resampled with replacement within
each size (a bootstrap over seeds), and the 2.5 and 97.5 percentiles of each parameter are kept.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from effnas.search_spaces.common.errors import UserError

#: Bounds of (a, b, c): errors are fractions in [0, 1]; exponents beyond 3 are not plausible
#: for accuracy-vs-compute curves and only make the fit unstable.
BOUNDS = ([0.0, 0.0, 0.0], [1.0, 3.0, 1.0])
PARAMETERS = ("a", "b", "c")
#: A parameter within this fraction of its bounds' width of a bound is at that bound (the bounded
#: solver stops ~1e-11 inside an active bound; 1e-4 of c is an error floor of 0.01 %).
BOUND_TOLERANCE = 1e-4
DETERMINED, AT_BOUND, UNDETERMINED = "determined", "at bound", "undetermined"
#: Level of the bootstrap's percentile interval of each parameter.
BOOT_LEVEL = 0.95


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
    #: Parameters at a bound of :data:`BOUNDS` (``("c",)``: the best floor is 0).
    at_bound: tuple[str, ...] = ()
    #: Bootstrap percentile interval per parameter (``None``: not run or not possible) and why not.
    boot: tuple[tuple[float, float], ...] | None = None
    boot_draws: int = 0
    boot_note: str = "not run"

    def predict(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """Predicted error at ``x``."""
        return _law(np.asarray(x, dtype=float) / self.x0, self.a, self.b, self.c)

    def _draws(self, draws: int, seed: int) -> np.ndarray | None:
        """Parameter draws from the fit's normal approximation that lie within :data:`BOUNDS`;
        None when the covariance is not finite or fewer than 10 % of the draws are inside."""
        cov = np.asarray(self.cov, dtype=float)
        if not np.all(np.isfinite(cov)):
            return None
        rng = np.random.default_rng(seed)
        p = rng.multivariate_normal([self.a, self.b, self.c], cov, size=draws, check_valid="ignore")
        inside = np.all((p >= BOUNDS[0]) & (p <= BOUNDS[1]), axis=1)
        # Keep draws inside the bounds (clipping them would pile mass on the bounds and skew the
        # band). If most draws fall outside, the data do not identify the parameters.
        return p[inside] if inside.mean() >= 0.1 else None

    def band(self, x: Sequence[float] | np.ndarray, *, level: float = 0.9, draws: int = 2000,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper predicted error at ``x`` (central ``level`` interval); NaN unless the
        fit is ``determined`` (:attr:`status`)."""
        x = np.asarray(x, dtype=float)
        p = self._draws(draws, seed) if not self.at_bound else None
        if p is None:
            nan = np.full_like(x, np.nan)
            return nan, nan
        preds = p[:, :1] * np.power(x[None, :] / self.x0, -p[:, 1:2]) + p[:, 2:3]
        q = (1 - level) / 2
        return np.quantile(preds, q, axis=0), np.quantile(preds, 1 - q, axis=0)

    @property
    def status(self) -> str:
        """``determined``, ``at bound`` or ``undetermined`` (see the module docstring)."""
        if not np.all(np.isfinite(np.asarray(self.cov, dtype=float))):
            return UNDETERMINED
        if self.at_bound:
            return AT_BOUND
        return UNDETERMINED if self._draws(400, 0) is None else DETERMINED

    @property
    def has_band(self) -> bool:
        """Whether the fit has an extrapolation band (it is ``determined``)."""
        return self.status == DETERMINED

    @property
    def note(self) -> str:
        """Why there is no band (:func:`fit_note`; ``""`` when there is one)."""
        return fit_note(self.status, self.at_bound)

    def to_dict(self) -> dict[str, Any]:
        status = self.status
        band = {DETERMINED: "90 % of predictions under draws from the fit covariance",
                AT_BOUND: f"none: {', '.join(self.at_bound)} at its bound (BOUNDS), where the covariance "
                                 "does not describe the uncertainty",
                UNDETERMINED: "none: the data do not pin down a, b, c"}[status]
        out = {"status": status, "at_bound": list(self.at_bound), "band": band,
               "law": "error = a * (x / x0) ** -b + c", "a": self.a, "b": self.b, "c": self.c, "x0": self.x0,
               "n_points": self.n_points, "rmse": self.rmse,
               "stderr": [math.sqrt(v) if math.isfinite(v) and v >= 0 else None
                          for v in np.diag(np.asarray(self.cov, dtype=float))]}
        if self.boot is None:
            out["bootstrap"] = self.boot_note
        else:
            out["bootstrap"] = {
                "method": f"runs resampled with replacement within each size (over seeds), refitted "
                          f"{self.boot_draws} times; {100 * BOOT_LEVEL:g} % percentile interval",
                "draws": self.boot_draws, **{k: list(v) for k, v in zip(PARAMETERS, self.boot, strict=True)}}
        return out


def fit_note(status: str, at_bound: Sequence[str]) -> str:
    """Why a fit of ``status`` (``fits.json``'s ``status`` and ``at_bound``) has no band, as the
    plots, the report and ``effnas curves`` say it; ``""`` for a determined fit.

    >>> fit_note(AT_BOUND, ["c"]), fit_note(UNDETERMINED, []), fit_note(DETERMINED, [])
    ('at bound: c, no band', 'undetermined: no band, not drawn', '')
    """
    if status == AT_BOUND:
        return f"at bound: {', '.join(at_bound)}, no band"
    return "undetermined: no band, not drawn" if status == UNDETERMINED else ""


def _solve(xs: np.ndarray, ys: np.ndarray, x0: float) -> tuple[np.ndarray, np.ndarray]:
    c0 = max(0.0, float(ys.min()) * 0.5)
    p0 = [min(1.0, max(1e-3, float(ys.max()) - c0)), 0.5, c0]
    with warnings.catch_warnings():  # an undetermined covariance is reported by status, not a warning
        warnings.simplefilter("ignore", OptimizeWarning)
        popt, pcov = curve_fit(_law, xs / x0, ys, p0=p0, bounds=BOUNDS, maxfev=20000)
    return popt, pcov


def at_bounds(params: Sequence[float] | np.ndarray) -> tuple[str, ...]:
    """The names of the parameters (a, b, c) within :data:`BOUND_TOLERANCE` of a bound of :data:`BOUNDS`.

    >>> at_bounds([0.3, 0.5, 1e-11]), at_bounds([0.3, 3.0, 0.05]), at_bounds([0.3, 0.5, 0.05])
    (('c',), ('b',), ())
    """
    lo, hi = np.asarray(BOUNDS[0]), np.asarray(BOUNDS[1])
    tol = BOUND_TOLERANCE * (hi - lo)
    p = np.asarray(params, dtype=float)
    return tuple(n for n, v, l_, h, t in zip(PARAMETERS, p, lo, hi, tol, strict=True) if v - l_ <= t or h - v <= t)


def _bootstrap(xs: np.ndarray, ys: np.ndarray, x0: float, draws: int, seed: int) -> tuple[
        tuple[tuple[float, float], ...] | None, int, str]:
    """Percentile intervals of a, b, c over fits to the runs resampled within each size."""
    sizes = [np.flatnonzero(xs == v) for v in np.unique(xs)]
    if all(len(i) < 2 for i in sizes):
        return None, 0, "not possible: one run per size, nothing to resample"
    rng = np.random.default_rng(seed)
    params = []
    for _ in range(draws):
        idx = np.concatenate([rng.choice(i, size=len(i), replace=True) for i in sizes])
        try:
            params.append(_solve(xs[idx], ys[idx], x0)[0])
        except RuntimeError:  # no convergence on this resample: leave it out
            continue
    if len(params) < draws / 2:
        return None, len(params), f"not possible: only {len(params)} of {draws} resamples converged"
    p = np.asarray(params)
    q = (1 - BOOT_LEVEL) / 2
    lo, hi = np.quantile(p, q, axis=0), np.quantile(p, 1 - q, axis=0)
    return tuple((float(a), float(b)) for a, b in zip(lo, hi, strict=True)), len(params), ""


def fit_power_law(x: Sequence[float] | np.ndarray, error: Sequence[float] | np.ndarray, *, bootstrap: int = 0,
                  seed: int = 0) -> PowerLaw:
    """Fit ``error = a * (x / min(x)) ** -b + c`` to points (repeated x, e.g. seeds, allowed);
    with ``bootstrap=N``, also N refits on the points resampled within each x (``seed`` seeds
    the resampling).

    >>> x = np.array([1e6, 2e6, 4e6, 8e6, 16e6])
    >>> f = fit_power_law(x, 0.2 * (x / 1e6) ** -0.5 + 0.05)
    >>> round(f.a, 3), round(f.b, 3), round(f.c, 3), f.at_bound
    (0.2, 0.5, 0.05, ())
    """
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise UserError(f"bootstrap must be a whole number of resamples >= 0, got {bootstrap!r}")
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(error, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys) & (xs > 0)
    xs, ys = xs[keep], ys[keep]
    if len(np.unique(xs)) < 3:
        raise UserError(f"a saturating power law needs points at >= 3 distinct sizes, got {len(np.unique(xs))}")
    x0 = float(xs.min())
    popt, pcov = _solve(xs, ys, x0)
    resid = ys - _law(xs / x0, *popt)
    cov = tuple(tuple(float(v) for v in row) for row in np.atleast_2d(pcov))
    boot, n_boot, why = _bootstrap(xs, ys, x0, bootstrap, seed) if bootstrap else (None, 0, "not run")
    return PowerLaw(float(popt[0]), float(popt[1]), float(popt[2]), x0, cov, int(len(xs)),
                    float(np.sqrt(np.mean(resid**2))), at_bounds(popt), boot, n_boot, why)


__all__ = ["AT_BOUND", "BOUND_TOLERANCE", "BOUNDS", "DETERMINED", "PARAMETERS", "UNDETERMINED", "PowerLaw", "at_bounds",
           "fit_note", "fit_power_law"]
