"""Tabular NAS benchmarks behind one interface (:class:`TabularBenchmark`), one file each.

``get_benchmark("nasbench201:cifar10")`` returns the table for one data set;
:class:`BenchmarkTrainer` is the trainer callable that looks architectures up in it.
"""

from __future__ import annotations

from effnas.nas.benchmarks.base import Record, TabularBenchmark
from effnas.nas.benchmarks.catalog import BENCHMARKS, get_benchmark
from effnas.nas.benchmarks.nasbench201 import NASBench201
from effnas.nas.benchmarks.trainer import BenchmarkTrainer

__all__ = ["BENCHMARKS", "BenchmarkTrainer", "NASBench201", "Record", "TabularBenchmark", "get_benchmark"]
