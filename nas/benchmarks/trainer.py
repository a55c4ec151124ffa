"""The trainer callable of a tabular benchmark: a search "trains" a candidate by looking it up."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from effnas.nas.benchmarks.base import TabularBenchmark
from effnas.nas.benchmarks.catalog import get_benchmark
from effnas.search_spaces.common.errors import UserError


@dataclass(frozen=True)
class BenchmarkTrainer:
    """``trainer(config, *, on_epoch=None) -> metrics`` that looks the architecture up in a table.

    ``config["model"]`` holds the architecture's parameters (a dict), ``config["dataset"]`` the
    data set, ``config["seed"]`` and ``config["trial"]`` pick which training seed of the table is
    observed (reproducibly). ``train_seconds`` is the simulated cost of the run: the table's
    training time scaled to ``charge_epochs`` of the benchmark's ``full_epochs`` (NAS-Bench-201
    charges its 12-epoch proxy time during search, Dong & Yang 2020); None charges the full run.
    ``on_epoch`` is called once with the accuracy, so a pruner sees the trial like a one-epoch run.

    Args:
        benchmark: a :data:`effnas.nas.benchmarks.BENCHMARKS` name (``nasbench201``).
        charge_epochs: the epochs whose time a lookup costs (None: the table's full run).
    """

    benchmark: str
    charge_epochs: int | None = None

    def table(self, dataset: str) -> TabularBenchmark:
        return get_benchmark(f"{self.benchmark}:{dataset.split(':', 1)[0]}")

    def __call__(self, config: dict[str, Any], *,
                 on_epoch: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        bench = self.table(str(config["dataset"]))
        params = config["model"]
        if not isinstance(params, Mapping):
            raise UserError(f"{bench.ref}: config['model'] must be the architecture's choices (a dict), got "
                             f"{type(params).__name__}")
        bench.check(params)
        rec = bench.record(params)
        acc = bench.observe(params, seed=int(config.get("seed", 0)), draw=int(config.get("trial", 0)))
        epochs = self.charge_epochs or bench.full_epochs
        status = "completed"
        if on_epoch is not None and on_epoch({"epoch": 0, "train_loss": None, "val_accuracy": acc}):
            status = "pruned"
        return {"status": status, "val_accuracy": acc, "test_accuracy": None, "params": round(rec.params_m * 1e6),
                "macs": None, "resolution": None, "num_classes": None,
                "train_seconds": rec.train_seconds * epochs / bench.full_epochs, "images_per_second": None}
