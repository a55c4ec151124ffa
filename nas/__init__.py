"""How to search: spaces, objectives, strategies, the search driver, Pareto fronts, and tabular
benchmarks (:mod:`nas.benchmarks`, run under their papers' protocol by :mod:`nas.bench_search`).
Uses ``search_spaces``; receives the trainer as a callable and never imports training code."""

from nas.benchmarks import BenchmarkTrainer, get_benchmark
from nas.cell_space import CellSpace
from nas.evolution import RegularizedEvolutionSampler
from nas.objective import Objective
from nas.pareto import pareto_front, trial_rows, write_results
from nas.rl import ReinforceSampler
from nas.search import InProcess, SearchFailed, run_search
from nas.space import SPACES, SearchSpace, get_space
from nas.strategies import STRATEGIES, make_sampler
from nas.study import SearchConfig, finished, open_storage, open_study, recover
from nas.surrogate import SurrogateTrainer, approx_macs
from nas.trial import evaluate_trial

__all__ = [
    "SPACES", "STRATEGIES", "BenchmarkTrainer", "CellSpace", "InProcess", "Objective", "RegularizedEvolutionSampler",
    "ReinforceSampler", "SearchConfig", "SearchFailed", "SearchSpace", "SurrogateTrainer", "approx_macs",
    "evaluate_trial", "finished", "get_benchmark",
    "get_space", "make_sampler", "open_storage", "open_study", "pareto_front", "recover", "run_search", "trial_rows",
    "write_results",
]
