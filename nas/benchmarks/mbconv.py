"""A ground-truth table of our own: every network of a small MBConv space trained under one recorded protocol
(``effnas bench-build``), read as a :class:`~effnas.nas.benchmarks.base.TabularBenchmark`.

``get_benchmark("mbconv:PATH")`` reads the table ``effnas bench-build`` wrote (``PATH`` is its ``table.csv``,
or the directory holding it); ``mbconv:cifar10`` names the table shipped with effnas when one has been built
and committed (``effnas/nas/benchmarks/data/mbconv_cifar10.csv``). A table is one row per architecture and
seed: the space's choices (one column per parameter, ``b0_kernel``, ``b0_expansion``, ...), ``seed``,
``val_accuracy`` (the last epoch's), ``test_accuracy``, ``curve`` (validation accuracy after each epoch, ``;``
between them), ``train_seconds``, ``params``, ``macs`` and ``latency_ms`` (batch 1), and beside it
``protocol.json`` (space, data, epochs, recipe, seeds, machine). Every strategy and multi-fidelity scheduler of
``effnas bench-search`` replays on it from its recorded per-epoch curves (``records_curves``), in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from itertools import product
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from effnas.nas.benchmarks.base import Record, TabularBenchmark
from effnas.search_spaces.common.errors import UserError

#: The space the tables are built on (every network of it is trained): ``cifar_bench`` of
#: :data:`effnas.nas.space.SPACES`, whose searchable blocks and choices these are.
SPACE = "cifar_bench"
BLOCKS = 3
CHOICES: dict[str, tuple[Any, ...]] = {"kernel": (3, 5, 7), "expansion": (3, 6)}
#: Its parameters as :meth:`~effnas.nas.space.SearchSpace.distributions` names them.
PARAMETERS: dict[str, tuple[Any, ...]] = {f"b{i}_{k}": v for i in range(BLOCKS) for k, v in CHOICES.items()}
SIZE = len(list(product(*PARAMETERS.values())))
#: Shipped tables: data set -> file of this package.
SHIPPED = {"cifar10": Path(__file__).parent / "data" / "mbconv_cifar10.csv"}


def space_choices(space: Any) -> dict[str, tuple[Any, ...]]:
    """The parameters of ``space`` (an :class:`effnas.nas.space.SearchSpace`, not imported here: nas.space imports
    this module) and their values, in the order of its ``distributions()``."""
    return {name: tuple(d.choices) for name, d in space.distributions().items()}


def architectures(space: Any) -> list[dict[str, Any]]:
    """Every parameter assignment of ``space``, in a fixed order (the product of the choices)."""
    choices = space_choices(space)
    return [dict(zip(choices, values, strict=True)) for values in product(*choices.values())]


def arch_key(params: Mapping[str, Any], names: Sequence[str]) -> str:
    """``3-6-5-3-7-6``: the architecture's values in parameter order (a table's row key)."""
    return "-".join(str(params[n]) for n in names)


class MBConvTable(TabularBenchmark):
    """The table of :data:`SPACE`; ``dataset`` is ``cifar10`` (the shipped table) or a built table's path."""

    name = "mbconv"
    choices: ClassVar[Mapping[str, tuple[Any, ...]]] = PARAMETERS
    datasets = ("cifar10",)
    full_epochs = 0  # set per table from its protocol
    classes: ClassVar[Mapping[str, int]] = {"cifar10": 10}
    records_curves = True

    def __init__(self, dataset: str) -> None:
        path = SHIPPED.get(dataset) or Path(dataset)
        if path.is_dir():
            path = path / "table.csv"
        if dataset in SHIPPED and not path.is_file():
            raise UserError(f"no MBConv table is shipped for {dataset} yet: build one with `effnas bench-build "
                             "--dataset cifar10:PATH --out DIR` and give mbconv:DIR")
        if not path.is_file():
            raise UserError(f"no MBConv table at {path}: give mbconv:cifar10 or mbconv:DIR of `effnas bench-build`")
        self.dataset, self.path = dataset, path
        protocol = path.parent / "protocol.json" if dataset not in SHIPPED else path.with_suffix(".json")
        self.protocol: dict[str, Any] = json.loads(protocol.read_text()) if protocol.is_file() else {}
        self.full_epochs = int(self.protocol.get("epochs", 0)) or self._epochs  # type: ignore[misc]  # per table

    @property
    def num_classes(self) -> int:
        return int(self.protocol.get("num_classes", 10))

    @cached_property
    def _rows(self) -> pd.DataFrame:
        df = pd.read_csv(self.path)
        missing = [c for c in (*self.choices, "seed", "val_accuracy", "curve", "train_seconds", "params",
                               "latency_ms") if c not in df.columns]
        if missing:
            raise UserError(f"{self.path} lacks the column(s) {', '.join(missing)}: rebuild it with effnas bench-build")
        return df

    @cached_property
    def _epochs(self) -> int:
        return max(len(str(c).split(";")) for c in self._rows["curve"])

    @cached_property
    def _table(self) -> dict[str, tuple[Record, list[list[float]]]]:
        names = list(self.choices)
        out = {}
        seeds = self._rows.groupby(self._rows[names].astype(str).agg("-".join, axis=1))["seed"].agg(
            lambda x: tuple(sorted(x)))
        if seeds.nunique() > 1:
            raise UserError(f"{self.path}: the architectures have different seeds ({seeds.value_counts().index[0]} for "
                             f"most, {seeds.value_counts().index[-1]} for some): finish the build with `effnas "
                             "bench-build ... --resume`")
        for key, g in self._rows.groupby(self._rows[names].astype(str).agg("-".join, axis=1), sort=False):
            g = g.sort_values("seed")
            curves = [[float(v) for v in str(c).split(";")] for c in g["curve"]]
            rec = Record(accuracies=tuple(float(a) for a in g["val_accuracy"]),
                         train_seconds=float(g["train_seconds"].mean()), latency_ms=float(g["latency_ms"].iloc[0]),
                         params_m=float(g["params"].iloc[0]) / 1e6)
            out[str(key)] = (rec, curves)
        return out

    def _entry(self, params: Mapping[str, Any]) -> tuple[Record, list[list[float]]]:
        self.check({k: _native(self.choices[k], v) for k, v in params.items()})
        key = arch_key(params, list(self.choices))
        if key not in self._table:
            raise UserError(f"{self.path} holds {len(self._table)} of {SIZE} architectures, not {key}: "
                             "finish it with `effnas bench-build ... --resume`")
        return self._table[key]

    def record(self, params: Mapping[str, Any]) -> Record:
        return self._entry(params)[0]

    def curve(self, params: Mapping[str, Any], *, seed: int, draw: int = 0) -> Sequence[float] | None:
        return self._entry(params)[1][self.observe_index(params, seed=seed, draw=draw)]

    def keys(self) -> Iterator[dict[str, Any]]:
        names = list(self.choices)
        for key in self._table:
            yield {n: _native(self.choices[n], v) for n, v in zip(names, key.split("-"), strict=True)}

    def describe(self, params: Mapping[str, Any]) -> str:
        return arch_key(params, list(self.choices))


def _native(values: tuple[Any, ...], value: Any) -> Any:
    """``value`` as the choice list's own type (a table's text ``"5"`` is the choice ``5``)."""
    for v in values:
        if str(v) == str(value):
            return v
    return value


__all__ = ["BLOCKS", "CHOICES", "PARAMETERS", "SHIPPED", "SIZE", "SPACE", "MBConvTable", "arch_key", "architectures",
           "space_choices"]
