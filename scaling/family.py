"""Families: a base spec scaled to members phi = 0...K, from coefficients or from the official
table, with each member's realised cost beside the nominal one.

The nominal MACs ratio of a member is ``d * w**2 * r**2`` of its multipliers; the realised one
is its counted MACs over the base's. They differ because repeats and channels are rounded to
integers (and multiples of 8): see ``effnas.search_spaces.rules.round_repeats`` for why coefficient
families round depth to nearest while the official table uses TF's ceil. Coefficient members
are then brought within ``cost_tolerance`` (10 %) of their nominal ratio by moving the input
size in whole pixels (:func:`effnas.scaling.realised.fit_resolution`); a member that cannot be is kept
and flagged with the reason. The official table is the published one and is never adjusted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effnas.scaling.coefficients import PAPER, Coefficients
from effnas.scaling.compound import Multipliers, member
from effnas.scaling.curves import AGGREGATE_COLUMNS, aggregate
from effnas.scaling.realised import FAMILY_TOLERANCE, CostFit, check_tolerance, fit_resolution, within
from effnas.scaling.record import member_key
from effnas.scaling.runner import ExecutorFn, Job, TrainerFn, run_jobs
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_write
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.ranges import int_ranges
from effnas.search_spaces.counts import counts

if TYPE_CHECKING:
    import pandas as pd

#: Scaling methods that can label a member.
METHODS = ("compound", "official", "depth", "width", "resolution", "base")


@dataclass(frozen=True)
class Member:
    """One scaled network with its nominal multipliers and counted cost.

    ``phi`` is the family index; for single-dimension baselines it is the index of the compound
    member whose MACs they match.

    Cost honesty: ``target_ratio`` is the MACs ratio the member is held to (``None``: its nominal
    ``d * w**2 * r**2``; a baseline's is its matched member's realised ratio), ``tolerance`` the
    relative distance allowed, ``resolution_nominal`` the input size before any whole-pixel
    adjustment (``None``: not adjusted), ``note`` why it misses the tolerance when it does.
    """

    method: str
    phi: int
    spec: NetworkSpec
    multipliers: Multipliers
    params: int
    macs: int
    base_macs: int
    resolution_nominal: int | None = None
    target_ratio: float | None = None
    tolerance: float = FAMILY_TOLERANCE
    note: str = ""
    #: Output elements of every conv and linear layer for one image (Dollar et al. 2021).
    activations: int = 0

    @property
    def macs_ratio(self) -> float:
        """Realised MACs over the base's."""
        return self.macs / self.base_macs

    @property
    def target_macs_ratio(self) -> float:
        """The MACs ratio this member claims: ``target_ratio``, else its nominal ratio."""
        return self.multipliers.nominal_macs_ratio if self.target_ratio is None else self.target_ratio

    @property
    def within_tolerance(self) -> bool:
        """Realised ratio within ``tolerance`` (relative) of :attr:`target_macs_ratio`."""
        return within(self.macs_ratio, self.target_macs_ratio, self.tolerance)

    @property
    def cost_adjusted(self) -> bool:
        """Input size moved off the nominal ``round(base * r)`` to meet the target cost."""
        return self.resolution_nominal is not None and self.resolution_nominal != self.spec.resolution

    @property
    def reason(self) -> str:
        """Why the member misses its target cost ("" when within tolerance)."""
        if self.within_tolerance:
            return ""
        return self.note or (f"realised {self.macs_ratio:.3g}x vs target {self.target_macs_ratio:.3g}x "
                             f"(+-{self.tolerance * 100:g}%)")

    def row(self) -> dict[str, Any]:
        """One row of a family table."""
        return {
            "method": self.method, "phi": self.phi, "name": self.spec.name,
            "depth": round(self.multipliers.depth, 4), "width": round(self.multipliers.width, 4),
            "resolution": self.spec.resolution, "resolution_mult": round(self.multipliers.resolution, 4),
            "blocks": self.spec.num_blocks, "dropout": round(self.spec.dropout, 4),
            "params": self.params, "macs": self.macs, "activations": self.activations,
            "macs_ratio": round(self.macs_ratio, 4),
            "nominal_macs_ratio": round(self.multipliers.nominal_macs_ratio, 4),
            "target_macs_ratio": round(self.target_macs_ratio, 4),
            "resolution_nominal": self.spec.resolution if self.resolution_nominal is None else self.resolution_nominal,
            "cost_adjusted": self.cost_adjusted, "cost_tolerance": self.tolerance,
            "within_tolerance": self.within_tolerance, "reason": self.reason,
        }


def make_member(method: str, phi: int, spec: NetworkSpec, mult: Multipliers, base_macs: int, *,
                target_ratio: float | None = None, tolerance: float = FAMILY_TOLERANCE) -> Member:
    """A member of ``spec`` as it is (counted, not adjusted)."""
    c = counts(spec)
    return Member(method, phi, spec, mult, c.params, c.macs, base_macs, target_ratio=target_ratio,
                  tolerance=tolerance, activations=c.activations)


def fitted_member(method: str, phi: int, mult: Multipliers, fit: CostFit) -> Member:
    """A member at the input size :func:`effnas.scaling.realised.fit_resolution` chose."""
    c = counts(fit.spec)
    return Member(method, phi, fit.spec, mult, c.params, c.macs, fit.base_macs,
                  resolution_nominal=fit.resolution_nominal, target_ratio=fit.target_ratio, tolerance=fit.tolerance,
                  note=fit.reason, activations=c.activations)


#: Largest compound coefficient a user may ask for: target 2 doubles the MACs per phi, so phi 20 is
#: a million times the base (B7 is phi 7); larger ones overflow the scaled sizes.
MAX_PHI = 20


def parse_phis(text: str) -> list[int]:
    """``"0-7"``, ``"0,2,4"`` or ``"3"`` as a sorted list of distinct phis, each at most :data:`MAX_PHI`
    (checked before a range is expanded): :func:`effnas.search_spaces.common.ranges.int_ranges`, the
    grammar of every integer list on the command line.

    >>> parse_phis("0-3"), parse_phis("1,4,2"), parse_phis("5")
    ([0, 1, 2, 3], [1, 2, 4], [5])
    """
    return int_ranges(text, maximum=MAX_PHI, what="phi", why="target^phi times the base's MACs")


def family(
    base: NetworkSpec,
    phis: Iterable[int],
    *,
    coefficients: Coefficients | None = None,
    official: bool = False,
    depth_rounding: str = "round",
    cost_tolerance: float = FAMILY_TOLERANCE,
) -> list[Member]:
    """Members ``phi`` of ``base``: compound-scaled with ``coefficients`` (the paper's 1.2, 1.1,
    1.15 by default; repeats rounded to nearest unless ``depth_rounding="ceil"``; dropout rising
    with phi) or, with ``official=True``, as the published B``phi`` rows (TF ceil rounding).

    Coefficient members land within ``cost_tolerance`` (relative) of their nominal MACs ratio
    ``(alpha*beta^2*gamma^2)**phi`` by moving the input in whole pixels
    (:func:`effnas.scaling.realised.fit_resolution`); one that cannot keeps the nearest pixel count and
    says why in ``reason``. Official members are the published table, never adjusted; their
    realised and nominal ratios are shown all the same.

    >>> import effnas.search_spaces as ss
    >>> [m.params for m in family(ss.get("efficientnet_b0"), [0, 7], official=True)]
    [5288548, 66347960]
    >>> [(m.spec.resolution, round(m.macs_ratio, 2)) for m in family(ss.get("efficientnet_nano"), [1, 2])]
    [(18, 2.11), (18, 3.9)]
    """
    phis = list(phis)
    if not phis:
        raise UserError("empty phi range: give at least one phi, e.g. --phis 0-7")
    for phi in phis:
        if isinstance(phi, bool) or not isinstance(phi, int) or phi < 0:
            raise UserError(f"phi must be a non-negative integer, got {phi!r}")
    check_tolerance(cost_tolerance)
    coeffs = coefficients or PAPER
    base_macs = counts(base).macs
    out = []
    for phi in phis:
        if official:
            spec, mult = member(base, phi, official=True)
            m = make_member("official", phi, spec, mult, base_macs, tolerance=cost_tolerance)
            note = (f"published B{phi} row, not adjusted: realised {m.macs_ratio:.3g}x vs nominal "
                    f"{m.target_macs_ratio:.3g}x (+-{cost_tolerance * 100:g}%)")
            out.append(dataclasses.replace(m, note=note))
        else:
            spec, mult = member(base, phi, coefficients=coeffs.as_tuple(), depth_rounding=depth_rounding)
            fit = fit_resolution(spec, base_macs=base_macs, target_ratio=mult.nominal_macs_ratio,
                                 tolerance=cost_tolerance)
            out.append(fitted_member("compound", phi, mult, fit))
    return out


def family_table(members: Sequence[Member]) -> pd.DataFrame:
    """A row per member: phi, d, w, r, params, MACs, activations, realised and nominal MACs ratio, the ratio it
    is held to, nominal and actual resolution, and ``within_tolerance`` / ``reason``."""
    import pandas as pd  # lazy: pandas is slow to import, and the trainer imports effnas.scaling
    return pd.DataFrame([m.row() for m in members])


def cost_flags(table: pd.DataFrame, *, include_official: bool = False) -> pd.DataFrame:
    """The rows of a family (or grid) table whose realised MACs miss their tolerance, one per
    network (seeds collapsed). Official rows are left out unless ``include_official``: the
    published table is what it is and is never adjusted (its ``reason`` column still says so)."""
    if "within_tolerance" not in table.columns:
        raise UserError("the table has no within_tolerance column: build it with family_table / candidate_table "
                         "of this version")
    rows = table[~table["within_tolerance"].astype(bool)]
    if not include_official and "method" in rows.columns:
        rows = rows[rows["method"] != "official"]
    keys = [k for k in ("method", "phi", "name", "alpha", "beta", "gamma") if k in rows.columns]
    return rows.drop_duplicates(keys) if keys else rows


def all_within_tolerance(table: pd.DataFrame, *, include_official: bool = False) -> bool:
    """Whether every row of a family (or grid) table realises its MACs within tolerance (see
    :func:`cost_flags` for the rows that do not, and why).

    >>> import effnas.search_spaces as ss
    >>> all_within_tolerance(family_table(family(ss.get("efficientnet_nano"), range(5))))
    True
    """
    return cost_flags(table, include_official=include_official).empty


def side_by_side(official: Sequence[Member], compound: Sequence[Member]) -> pd.DataFrame:
    """The official table beside a coefficient family, a row per phi present in both."""
    import pandas as pd  # lazy: pandas is slow to import, and the trainer imports effnas.scaling
    by_phi = {m.phi: m for m in compound}
    rows = []
    for o in official:
        c = by_phi.get(o.phi)
        if c is None:
            continue
        rows.append({
            "phi": o.phi,
            "official_d": o.multipliers.depth, "official_w": o.multipliers.width, "official_r": o.spec.resolution,
            "official_params": o.params, "official_macs": o.macs, "official_macs_ratio": round(o.macs_ratio, 3),
            "official_nominal_ratio": round(o.multipliers.nominal_macs_ratio, 3),
            "compound_d": round(c.multipliers.depth, 3), "compound_w": round(c.multipliers.width, 3),
            "compound_r": c.spec.resolution, "compound_params": c.params, "compound_macs": c.macs,
            "compound_macs_ratio": round(c.macs_ratio, 3),
            "compound_nominal_ratio": round(c.multipliers.nominal_macs_ratio, 3),
        })
    return pd.DataFrame(rows)


#: The accuracy columns a trained family (or backbone) table has, one per evaluation split.
ACCURACIES = ("val_accuracy", "test_accuracy")
#: Measured time columns of a trained family table (effnas.experiments.pipeline.timing), summarised by their mean.
TIMED = ("train_seconds", "train_img_per_s", "latency_ms_b1", "latency_ms_bN", "ort_latency_ms_b1",
         "ort_latency_ms_bN")


def trained_summary(table: pd.DataFrame, *, metrics: Sequence[str] = ACCURACIES) -> pd.DataFrame:
    """A row per trained network (method, phi) of a family or backbone table, in table order:
    ``macs``, ``params``, ``activations`` (when the table has them), ``runs`` (rows, failed ones
    included), the mean of each measured time of :data:`TIMED` the table has and, per metric of
    ``metrics`` in the table, ``{metric}_n``, ``_mean``, ``_std``, ``_ci_low`` and ``_ci_high`` over the
    runs that have it (the 95 % t-interval over seeds of :func:`effnas.scaling.curves.aggregate`;
    NaN when n < 2, n = 0 when no run finished). Format a cell with
    :func:`effnas.scaling.curves.interval_text` (``prefix=f"{metric}_"``)."""
    keys = ["method", "phi"]
    missing = [k for k in keys if k not in table.columns]
    if missing:
        raise UserError(f"the table has no {missing[0]!r} column: give a family.csv or backbones.csv written by effnas")
    g = table.groupby(keys, sort=False)
    cost = [c for c in ("macs", "params", "activations") if c in table.columns]
    out = g[cost].first().reset_index() if cost else g.size().reset_index()[keys]
    out["runs"] = g.size().to_numpy()
    for c in (c for c in TIMED if c in table.columns):  # measured: the mean over the runs that have it
        out[c] = g[c].mean().to_numpy()
    for m in metrics:
        if m not in table.columns:
            continue
        a = aggregate(table, metric=m, shared_base=False)[[*keys, *AGGREGATE_COLUMNS]]
        out = out.merge(a.rename(columns={c: f"{m}_{c}" for c in AGGREGATE_COLUMNS}), on=keys, how="left")
        out[f"{m}_n"] = out[f"{m}_n"].fillna(0).astype(int)
    return out


def member_jobs(members: Sequence[Member], seeds: Sequence[int], *,
                key: Callable[[Member, int], str] = member_key) -> list[Job]:
    """A training job per member and seed, into ``key(member, seed)`` (default
    :func:`effnas.scaling.record.member_key`), with the member's family-table row as its columns.
    Seed-major: every member's first seed comes before any second seed, so a family stopped part-way
    (and resumed later) has whole curves with fewer seeds rather than some members with all of them."""
    if not seeds:
        raise UserError("no seeds: give --seeds N with N >= 1")
    return [Job(key(m, s), m.spec, s, m.row()) for s in seeds for m in members]


def train_members(
    members: Sequence[Member],
    trainer: TrainerFn,
    *,
    train_config: dict[str, Any],
    out_dir: str | Path,
    seeds: Sequence[int] = (0,),
    executor: ExecutorFn | None = None,
    resume: bool = False,
    key: Callable[[Member, int], str] = member_key,
    table_name: str | None = "family.csv",
) -> pd.DataFrame:
    """Train every member with every seed (resumable; see :func:`effnas.scaling.runner.run_jobs`) and
    return, and write as ``out_dir/table_name``, a row per member and seed: the family-table
    columns, then ``seed``, ``status``, ``val_accuracy``, ``test_accuracy``, ... and ``run_dir``."""
    jobs = member_jobs(members, seeds, key=key)
    table = run_jobs(jobs, trainer, train_config=train_config, out_dir=out_dir, executor=executor, resume=resume)
    if table_name:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write(Path(out_dir) / table_name, lambda t: table.to_csv(t, index=False))
    return table


__all__ = ["ACCURACIES", "METHODS", "TIMED", "Member", "all_within_tolerance", "cost_flags", "family", "family_table",
           "fitted_member", "make_member", "member_jobs", "parse_phis", "side_by_side", "train_members",
           "trained_summary"]
