"""Search spaces of tabular benchmarks: the choices are the benchmark's, "training" is a lookup.

A :class:`CellSpace` offers the same surface to the search driver as the MBConv
:class:`~effnas.nas.space.SearchSpace` (``distributions``, ``sample``, ``size``, ``to_dict``), but a
candidate is the dict of choices itself, not a :class:`~search_spaces.NetworkSpec`: its costs
(parameters, latency) are read from the benchmark's table for the search's data set, and
:class:`~effnas.nas.benchmarks.BenchmarkTrainer` "trains" it by looking it up. ``nasbench201`` is the
6-edge x 5-operation cell of NAS-Bench-201 (Dong & Yang, ICLR 2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from effnas.nas.benchmarks.base import TabularBenchmark
from effnas.nas.benchmarks.catalog import BENCHMARKS, get_benchmark
from effnas.search_spaces.common.errors import UserError


@dataclass(frozen=True)
class CellSpace:
    """The space of a tabular benchmark (``benchmark`` names an entry of :data:`effnas.nas.benchmarks.BENCHMARKS`).

    >>> s = CellSpace("nasbench201")
    >>> s.size, s.num_blocks, sorted(s.distributions())[:2]
    (15625, 6, ['edge_1_0', 'edge_2_0'])
    """

    benchmark: str

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise UserError(f"unknown benchmark space {self.benchmark!r}: expected one of {', '.join(BENCHMARKS)}")

    @property
    def name(self) -> str:
        return self.benchmark

    @property
    def choices(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(v) for k, v in BENCHMARKS[self.benchmark].choices.items()}

    @property
    def num_blocks(self) -> int:
        """Parameters (NAS-Bench-201: edges of the cell)."""
        return len(self.choices)

    @property
    def size(self) -> int:
        n = 1
        for values in self.choices.values():
            n *= len(values)
        return n

    def distributions(self) -> dict[str, optuna.distributions.CategoricalDistribution]:
        return {k: optuna.distributions.CategoricalDistribution(list(v)) for k, v in self.choices.items()}

    def default_params(self) -> dict[str, Any]:
        return {k: v[0] for k, v in self.choices.items()}

    def sample(self, trial: optuna.trial.BaseTrial | Any) -> dict[str, Any]:
        """Ask ``trial`` for one value of every choice."""
        return {k: trial.suggest_categorical(k, list(v)) for k, v in self.choices.items()}

    def table(self, dataset: str) -> TabularBenchmark:
        """The benchmark's table for ``dataset`` (a search's ``--dataset``; in ``cifar10:PATH`` the
        part before ``:`` names the table, the path holds images for a zero-cost proxy)."""
        return get_benchmark(f"{self.benchmark}:{dataset.split(':', 1)[0]}")

    def costs(self, params: dict[str, Any], dataset: str) -> dict[str, Any]:
        """Costs known before "training", from the table: ``params`` (count), ``latency_ms``;
        ``macs`` is None (the table has none)."""
        rec = self.table(dataset).record(params)
        return {"params": round(rec.params_m * 1e6), "macs": None, "latency_ms": rec.latency_ms}

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "choices": {k: list(v) for k, v in self.choices.items()}}


#: Built-in benchmark spaces, by name (``get_space`` also finds them).
CELL_SPACES: dict[str, CellSpace] = {name: CellSpace(name) for name in BENCHMARKS}
