"""The benchmarks effnas knows, by name: ``get_benchmark("nasbench201:cifar10")``."""

from __future__ import annotations

from functools import cache

from effnas.nas.benchmarks.base import TabularBenchmark
from effnas.nas.benchmarks.mbconv import MBConvTable
from effnas.nas.benchmarks.nasbench201 import NASBench201
from effnas.search_spaces.common.errors import UserError

#: Benchmark name -> its class.
BENCHMARKS: dict[str, type[TabularBenchmark]] = {"nasbench201": NASBench201, "mbconv": MBConvTable}


@cache
def get_benchmark(ref: str) -> TabularBenchmark:
    """The benchmark ``NAME:DATASET`` (e.g. ``nasbench201:cifar10``); loaded once per process."""
    name, sep, dataset = ref.partition(":")
    if name not in BENCHMARKS:
        raise UserError(f"unknown benchmark {name!r}: expected one of {', '.join(BENCHMARKS)} "
                         f"(e.g. nasbench201:cifar10)")
    if not sep or not dataset:
        raise UserError(f"benchmark {ref!r} lacks a data set: write {name}:DATASET with DATASET one of "
                         f"{', '.join(BENCHMARKS[name].datasets)}")
    return BENCHMARKS[name](dataset)
