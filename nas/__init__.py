"""How to search: spaces, objectives, the search driver and Pareto fronts at the top; strategies
(:mod:`effnas.nas.strategies`), cheap estimators (:mod:`effnas.nas.estimators`: zero-cost proxies and the
supernet score a candidate, the surrogate simulates its accuracy) and tabular benchmarks
(:mod:`effnas.nas.benchmarks`, run under their papers' protocol by :mod:`effnas.nas.bench_search`) in
sub-packages. What a search measured, accuracy or score: :mod:`effnas.nas.measure`.
Uses ``search_spaces``; receives the trainer as a callable and never imports training code."""

from effnas.nas.benchmarks import BenchmarkTrainer, get_benchmark
from effnas.nas.benchmarks.cell_space import CellSpace
from effnas.nas.estimators import SurrogateTrainer
from effnas.nas.measure import measure_label, measure_name
from effnas.nas.objective import Objective
from effnas.nas.pareto import SearchFiles, pareto_front, read_search, read_study, trial_rows, write_results
from effnas.nas.pruning import NoiseFloorPruner
from effnas.nas.reevaluate import Reevaluation, reevaluate
from effnas.nas.search import InProcess, SearchFailed, run_search
from effnas.nas.space import SPACES, SearchSpace, get_space
from effnas.nas.strategies import STRATEGIES, RegularizedEvolutionSampler, ReinforceSampler, make_sampler
from effnas.nas.study import SearchConfig, finished, open_storage, open_study, recover
from effnas.nas.trial import evaluate_trial

__all__ = [
    "SPACES", "STRATEGIES", "BenchmarkTrainer", "CellSpace", "InProcess", "NoiseFloorPruner", "Objective",
    "Reevaluation", "RegularizedEvolutionSampler", "ReinforceSampler", "SearchConfig", "SearchFailed", "SearchFiles",
    "SearchSpace", "SurrogateTrainer", "evaluate_trial", "finished", "get_benchmark", "get_space", "make_sampler",
    "measure_label", "measure_name", "open_storage", "open_study", "pareto_front", "read_search", "read_study",
    "recover", "reevaluate", "run_search", "trial_rows", "write_results",
]
