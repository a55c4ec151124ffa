"""How to scale: compound coefficients, grid search, families, single-dimension baselines,
backbones, curve fits.

Uses ``search_spaces``; receives the trainer (and optionally an executor) as callables and never
imports training code (``docs/architecture.md``)."""

from effnas.scaling.backbones import BACKBONES, backbone_comparison, resolve_backbone, scale_backbone
from effnas.scaling.baselines import DIMENSIONS, match_macs, matched_baselines, single_dimension
from effnas.scaling.coefficients import PAPER, Coefficients, check_product
from effnas.scaling.compound import PAPER_COEFFICIENTS, Multipliers, check_coefficients, compound, member
from effnas.scaling.curves import aggregate, family_gain, fit_methods, load_results, matched_comparison, plot_curves
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
from effnas.scaling.fit import PowerLaw, fit_power_law
from effnas.scaling.grid import GridResult, candidate_table, grid_candidates, grid_search
from effnas.scaling.realised import FAMILY_TOLERANCE, GRID_TOLERANCE, CostFit, fit_resolution
from effnas.scaling.record import FINISHED, candidate_key, member_key, read_result
from effnas.scaling.rungs import Schedule, Ties, schedule, tie_set
from effnas.scaling.runner import Job, run_jobs, sequential
from effnas.search_spaces.counts import Counts, count_macs, counts

__all__ = [
    "BACKBONES", "DIMENSIONS", "FAMILY_TOLERANCE", "FINISHED", "GRID_TOLERANCE", "PAPER", "PAPER_COEFFICIENTS",
    "Coefficients", "CostFit", "Counts", "GridResult", "Job", "Member", "Multipliers", "PowerLaw", "Schedule", "Ties",
    "aggregate",
    "all_within_tolerance", "backbone_comparison", "candidate_key", "candidate_table", "check_coefficients",
    "check_product",
    "compound", "cost_flags", "count_macs", "counts", "family", "family_table", "family_gain", "fit_methods",
    "fit_power_law", "fit_resolution", "grid_candidates", "grid_search", "load_results", "match_macs",
    "matched_baselines", "matched_comparison", "member", "member_key", "parse_phis", "plot_curves",
    "read_result", "resolve_backbone", "run_jobs", "scale_backbone", "schedule", "sequential", "side_by_side",
    "single_dimension", "tie_set",
    "train_members",
]
