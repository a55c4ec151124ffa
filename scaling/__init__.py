"""How to scale: compound coefficients, grid search, families, single-dimension baselines,
backbones, curve fits.

Uses ``search_spaces``; receives the trainer (and optionally an executor) as callables and never
imports training code (``docs/architecture.md``)."""

import importlib
from typing import TYPE_CHECKING, Any

from effnas.scaling.coefficients import PAPER, Coefficients, check_product
from effnas.scaling.compound import PAPER_COEFFICIENTS, Multipliers, check_coefficients, compound, member
from effnas.scaling.family import (
    Member,
    all_within_tolerance,
    cost_flags,
    family,
    family_table,
    parse_phis,
    side_by_side,
    train_members,
)
from effnas.scaling.realised import FAMILY_TOLERANCE, GRID_TOLERANCE, CostFit, fit_resolution
from effnas.scaling.record import FINISHED, candidate_key, member_key, read_result
from effnas.scaling.runner import Job, run_jobs, sequential

if TYPE_CHECKING:
    from effnas.scaling.backbones import BACKBONES, backbone_comparison, resolve_backbone, scale_backbone
    from effnas.scaling.baselines import DIMENSIONS, match_macs, matched_baselines, single_dimension
    from effnas.scaling.curves import aggregate, fit_methods, load_results, matched_comparison, plot_curves
    from effnas.scaling.fit import PowerLaw, fit_power_law
    from effnas.scaling.grid import GridResult, candidate_table, grid_candidates, grid_search
    from effnas.scaling.rungs import Schedule, Ties, schedule, tie_set
    from effnas.search_spaces.counts import Counts, count_macs, counts

#: Where each name of the modules that need pandas, scipy or matplotlib lives: imported on first
#: use (PEP 562), so that importing effnas.scaling (the trainer imports scaling.record) stays light.
#: (``compound`` and ``family`` name both a module and a function: those modules are imported above,
#: so the package attribute is the function.)
_WHERE = {
    "BACKBONES": "effnas.scaling.backbones",
    "backbone_comparison": "effnas.scaling.backbones",
    "resolve_backbone": "effnas.scaling.backbones",
    "scale_backbone": "effnas.scaling.backbones",
    "DIMENSIONS": "effnas.scaling.baselines",
    "match_macs": "effnas.scaling.baselines",
    "matched_baselines": "effnas.scaling.baselines",
    "single_dimension": "effnas.scaling.baselines",
    "aggregate": "effnas.scaling.curves",
    "fit_methods": "effnas.scaling.curves",
    "load_results": "effnas.scaling.curves",
    "matched_comparison": "effnas.scaling.curves",
    "plot_curves": "effnas.scaling.curves",
    "PowerLaw": "effnas.scaling.fit",
    "fit_power_law": "effnas.scaling.fit",
    "GridResult": "effnas.scaling.grid",
    "candidate_table": "effnas.scaling.grid",
    "grid_candidates": "effnas.scaling.grid",
    "grid_search": "effnas.scaling.grid",
    "Schedule": "effnas.scaling.rungs",
    "Ties": "effnas.scaling.rungs",
    "schedule": "effnas.scaling.rungs",
    "tie_set": "effnas.scaling.rungs",
    "Counts": "effnas.search_spaces.counts",
    "count_macs": "effnas.search_spaces.counts",
    "counts": "effnas.search_spaces.counts",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'effnas.scaling' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "BACKBONES", "DIMENSIONS", "FAMILY_TOLERANCE", "FINISHED", "GRID_TOLERANCE", "PAPER", "PAPER_COEFFICIENTS",
    "Coefficients", "CostFit", "Counts", "GridResult", "Job", "Member", "Multipliers", "PowerLaw", "Schedule", "Ties",
    "aggregate", "all_within_tolerance", "backbone_comparison", "candidate_key", "candidate_table",
    "check_coefficients", "check_product",
    "compound", "cost_flags", "count_macs", "counts", "family", "family_table", "fit_methods",
    "fit_power_law", "fit_resolution", "grid_candidates", "grid_search", "load_results", "match_macs",
    "matched_baselines", "matched_comparison", "member", "member_key", "parse_phis", "plot_curves",
    "read_result", "resolve_backbone", "run_jobs", "scale_backbone", "schedule", "sequential", "side_by_side",
    "single_dimension", "tie_set", "train_members",
]
