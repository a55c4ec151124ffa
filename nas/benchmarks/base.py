"""The interface of a tabular (or surrogate) NAS benchmark, and the trainer that looks it up.

A benchmark is a table from an architecture (a few categorical choices) to what training it
gave: a validation accuracy per training seed, the training time, and costs known before
training (parameters, latency). :class:`BenchmarkTrainer` follows the trainer contract
(``trainer(config, *, on_epoch=None) -> metrics``, ``docs/architecture.md``), so the search
driver, every strategy, the pruner, Pareto mode, resume and the Ray path run on a benchmark as
they do on real training; only the "training" is a dictionary lookup.

Adding a benchmark is one file: subclass :class:`TabularBenchmark`, implement :meth:`~TabularBenchmark.record`
and the class attributes, and register it in :data:`effnas.nas.benchmarks.BENCHMARKS`.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from effnas.search_spaces.common.errors import UserError


@dataclass(frozen=True)
class Record:
    """What the table holds for one architecture on one data set.

    Args:
        accuracies: validation accuracy (fraction in [0, 1]) of each training seed.
        train_seconds: wall-clock seconds of the full training run the accuracies come from.
        latency_ms: inference latency in milliseconds (the benchmark's own measurement).
        params_m: parameters in millions.
    """

    accuracies: tuple[float, ...]
    train_seconds: float
    latency_ms: float
    params_m: float

    @property
    def mean_accuracy(self) -> float:
        """The accuracy a benchmark reports for an architecture: the mean over training seeds."""
        return sum(self.accuracies) / len(self.accuracies)


class TabularBenchmark(ABC):
    """A table of trained architectures for one data set.

    Subclasses set :attr:`name`, :attr:`choices` (parameter -> values, the search space),
    :attr:`datasets`, :attr:`full_epochs` and :attr:`classes`, and implement :meth:`record` and :meth:`keys`.
    """

    name: ClassVar[str]
    #: Parameter name -> its values (every parameter is categorical).
    choices: ClassVar[Mapping[str, tuple[str, ...]]]
    #: Data sets the table covers.
    datasets: ClassVar[tuple[str, ...]]
    #: Epochs of the training runs the table records (what ``train_seconds`` covers).
    full_epochs: ClassVar[int]
    #: Data set -> its number of classes (chance accuracy is one over it).
    classes: ClassVar[Mapping[str, int]]

    def __init__(self, dataset: str) -> None:
        if dataset not in self.datasets:
            raise UserError(f"benchmark {self.name!r} has no data set {dataset!r}: expected one of "
                             f"{', '.join(self.datasets)}")
        self.dataset = dataset

    @abstractmethod
    def record(self, params: Mapping[str, Any]) -> Record:
        """The table row of the architecture ``params`` (a ``ValueError`` names a bad choice)."""

    @abstractmethod
    def keys(self) -> Iterator[dict[str, str]]:
        """Every architecture of the table, as parameters."""

    @property
    def num_classes(self) -> int:
        """Classes of the table's data set."""
        return self.classes[self.dataset]

    @property
    def ref(self) -> str:
        """``name:dataset``, as the CLI writes it."""
        return f"{self.name}:{self.dataset}"

    def check(self, params: Mapping[str, Any]) -> None:
        """A ``ValueError`` naming the first missing or unknown choice."""
        for key, values in self.choices.items():
            if key not in params:
                raise UserError(f"{self.ref}: architecture lacks {key!r}: give one of {', '.join(map(str, values))}")
            if params[key] not in values:
                raise UserError(f"{self.ref}: unknown {key} {params[key]!r}: expected one of "
                                 f"{', '.join(map(str, values))}")

    def observe_index(self, params: Mapping[str, Any], *, seed: int, draw: int = 0) -> int:
        """Which of the table's runs of ``params`` :meth:`observe` returns (an index into its accuracies)."""
        rec = self.record(params)
        key = "|".join([str(seed), str(draw), *(str(params[k]) for k in self.choices)]).encode()
        return zlib.crc32(key) % len(rec.accuracies)

    def observe(self, params: Mapping[str, Any], *, seed: int, draw: int = 0) -> float:
        """The validation accuracy of one training run of ``params``: one of the table's seeds,
        picked reproducibly from ``(seed, draw, architecture)``, as a search would see it."""
        return self.record(params).accuracies[self.observe_index(params, seed=seed, draw=draw)]

    #: Whether :meth:`curve` returns recorded per-epoch accuracies (multi-fidelity search on a table
    #: without them runs on a modelled curve, and only when the user asks: ``--modelled-curves``).
    records_curves: bool = False

    def curve(self, params: Mapping[str, Any], *, seed: int, draw: int = 0) -> Sequence[float] | None:
        """The per-epoch validation accuracies of the training run :meth:`observe` picks, when the
        table recorded them (None by default: multi-fidelity search then models them,
        :func:`effnas.nas.bench_fidelity.observe_at`)."""
        del params, seed, draw
        return None

    @cached_property
    def optimum(self) -> tuple[dict[str, str], Record]:
        """The architecture with the highest mean accuracy, and its row."""
        best = max(self.keys(), key=lambda p: self.record(p).mean_accuracy)
        return best, self.record(best)

    def published(self) -> dict[str, tuple[float, float]]:
        """Strategy -> (mean, std) accuracy in % its paper reports on this data set (none by default)."""
        return {}

    def published_here(self) -> bool:
        """Whether :meth:`published`'s numbers come from searches on this data set (not transfers)."""
        return True

    def published_note(self) -> str:
        """What :meth:`published`'s numbers are (protocol, and how they compare with a search here)."""
        return ""

    def describe(self, params: Mapping[str, Any]) -> str:
        """A one-line name of the architecture (the benchmark's own notation where it has one)."""
        return " ".join(f"{k}={params[k]}" for k in self.choices)

    def size(self) -> int:
        n = 1
        for values in self.choices.values():
            n *= len(values)
        return n
