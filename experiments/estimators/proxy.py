"""Estimators a search can use instead of training: a zero-cost proxy on a real minibatch.

``search.estimator = "proxy:NAME"`` (``effnas search --estimator proxy:synflow``) makes
:class:`ProxyTrainer` the trainer of every candidate (the trainer contract of
``docs/architecture.md``): it builds the candidate's network at initialisation (an MBConv spec,
or a NAS-Bench-201 cell as :mod:`effnas.nas.benchmarks.nb201_net`), scores it with
:mod:`effnas.nas.estimators.zerocost` on one minibatch of the run's training split, and reports as
``val_accuracy`` (the trainer contract's key) the score's rank among a fixed reference sample of the space
(:func:`effnas.nas.estimators.zerocost.quantile`, in (0, 1)), which the search stores as the trial's ``score``
(not an accuracy: :mod:`effnas.nas.measure`): the reward ``score x (cost / T)^w`` then keeps the
proxy's order at equal cost. The raw score is the trial's ``proxy_score``.

The reference sample (``REFERENCE`` random candidates of the space, drawn with the run's seed) is
scored once per process and data set; every candidate is initialised with the run's seed, so a
candidate's score is deterministic. On a benchmark space the images come from the path of
``--dataset cifar10:PATH`` (the part before ``:`` names the table).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from effnas.experiments.data.datasets import load_dataset, make_loader, split
from effnas.experiments.train.threads import set_threads
from effnas.nas import CellSpace, SearchSpace
from effnas.nas.benchmarks.nb201_net import build_cell_network
from effnas.nas.estimators.zerocost import check_name, quantile, score
from effnas.search_spaces import NetworkSpec, build
from effnas.search_spaces.common.errors import UserError

#: Random candidates of the space whose scores rank a candidate's (its ``score``).
REFERENCE = 16
#: Input pixels of NAS-Bench-201's networks (ImageNet16-120: 16; other data sets: 32). The images
#: of ``imagenet16-120:PATH`` are read as ``imagefolder:PATH``.
CELL_RESOLUTION = 32
CELL_RESOLUTIONS = {"imagenet16-120": 16}


def minibatch(dataset: str, *, resolution: int, batch_size: int, seed: int, val_fraction: float,
              data_fraction: float) -> tuple[Tensor, Tensor, int]:
    """The first ``batch_size`` images of the run's training split (no augmentation), their labels
    and the data set's class count."""
    ds = load_dataset(dataset)
    train, _, _ = split(ds, seed=seed, val_fraction=val_fraction, data_fraction=data_fraction)
    loader = make_loader(ds, train, resolution=resolution, batch_size=min(batch_size, len(train)), train=False,
                         seed=seed, channels_last=False, workers=0)
    x, y = next(iter(loader.epoch(0)))
    return x.float().contiguous(), y, ds.num_classes


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block (0: the trainer's rule, the free cores:
    :mod:`effnas.experiments.train.threads`), restored after: an estimator's trial config asks for
    its ``threads`` as the trainer's does."""
    before = torch.get_num_threads()
    set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: The minibatch and the reference scores, per process (module level: a Ray worker keeps them
#: across its tasks, each of which unpickles a fresh trainer).
_CACHE: dict[tuple[Any, ...], tuple[Tensor, Tensor, int, list[float]]] = {}


@dataclass
class ProxyTrainer:
    """``trainer(config, *, on_epoch=None) -> metrics`` that scores a candidate with proxy ``proxy``.

    ``config`` is the search's candidate config: ``model`` (a spec dict, or a cell's choices on a
    benchmark space), ``resolution``, ``dataset``, ``batch_size``, ``seed``, ``val_fraction``,
    ``data_fraction`` and ``threads`` (0: leave torch's setting).
    """

    space: SearchSpace | CellSpace
    proxy: str
    reference: int = REFERENCE

    def __post_init__(self) -> None:
        check_name(self.proxy)

    def _data(self, config: dict[str, Any]) -> tuple[str, int]:
        dataset = str(config["dataset"])
        if isinstance(self.space, CellSpace):
            table, sep, path = dataset.partition(":")
            if not sep or not path:
                raise UserError(f"a proxy on {self.space.name} scores real images: give --dataset {dataset}:PATH "
                                 f"(the data set's images; {dataset} names the table)")
            if table in ("cifar10", "cifar100"):
                return dataset, CELL_RESOLUTION
            return f"imagefolder:{path}", CELL_RESOLUTIONS.get(table, CELL_RESOLUTION)
        return dataset, int(config["resolution"])

    def _network(self, model: Any, num_classes: int, resolution: int, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if isinstance(self.space, CellSpace):
            return build_cell_network(model, num_classes=num_classes)

        spec = NetworkSpec.from_dict(model) if isinstance(model, dict) else model
        return build(spec)

    def _reference_model(self, i: int, rng: random.Random, num_classes: int, resolution: int) -> Any:
        params = {k: rng.choice(list(d.choices)) for k, d in self.space.distributions().items()}
        if isinstance(self.space, CellSpace):
            return params
        return self.space.to_spec(params, num_classes=num_classes, resolution=resolution, name=f"reference{i}")

    def _setup(self, config: dict[str, Any]) -> tuple[Tensor, Tensor, int, list[float]]:
        dataset, resolution = self._data(config)
        seed = int(config.get("seed", 0))
        key = (dataset, resolution, int(config["batch_size"]), seed, float(config.get("val_fraction", 0.1)),
               float(config.get("data_fraction", 1.0)), self.proxy, self.reference,
               json.dumps(self.space.to_dict(), sort_keys=True, default=str))
        if key not in _CACHE:
            x, y, k = minibatch(dataset, resolution=resolution, batch_size=key[2], seed=seed, val_fraction=key[4],
                                data_fraction=key[5])
            rng = random.Random(seed)
            ref = [score(self._network(self._reference_model(i, rng, k, resolution), k, resolution, seed), x, y,
                         self.proxy) for i in range(self.reference)]
            _CACHE[key] = (x, y, k, ref)
        return _CACHE[key]

    def __call__(self, config: dict[str, Any], *,
                 on_epoch: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        with torch_threads(int(config.get("threads", 0) or 0)):
            x, y, num_classes, ref = self._setup(config)
            t0 = time.perf_counter()
            _, resolution = self._data(config)
            net = self._network(config["model"], num_classes, resolution, int(config.get("seed", 0)))
            value = score(net, x, y, self.proxy)
            seconds = time.perf_counter() - t0
        return {"status": "completed", "val_accuracy": quantile(value, ref), "proxy_score": value,
                "test_accuracy": None, "params": sum(p.numel() for p in net.parameters()), "macs": None,
                "resolution": resolution, "num_classes": num_classes, "train_seconds": seconds,
                "images_per_second": None}




@dataclass
class Prefiltered:
    """A trainer behind a zero-cost pre-filter (``search.prefilter``): ``proxy`` scores the
    candidate first; below the top ``keep`` share of its reference sample (quantile < 1 - keep) it
    is not trained (``status=filtered``), otherwise ``inner`` trains it. ``config["prefilter"]``
    (``{"proxy", "keep", "batch_size"}``, from :func:`effnas.experiments.pipeline.plan.search_plan`) is removed
    before ``inner`` sees the config."""

    inner: Callable[..., dict[str, Any]]
    proxy: Callable[..., dict[str, Any]]  #: a ProxyTrainer or a SupernetTrainer with a reference sample

    @staticmethod
    def reference_size(keep: float) -> int:
        """Enough reference candidates to resolve a ``keep`` share (at least :data:`REFERENCE`)."""
        return max(REFERENCE, math.ceil(2 / keep))

    def __call__(self, config: dict[str, Any], *,
                 on_epoch: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        pf = config["prefilter"]
        rest = {k: v for k, v in config.items() if k != "prefilter"}
        scored = self.proxy({**rest, "batch_size": pf["batch_size"]})
        if scored["val_accuracy"] < 1.0 - float(pf["keep"]):
            return {"status": "filtered", "val_accuracy": None, "test_accuracy": None,
                    "proxy_score": scored["proxy_score"], "train_seconds": scored["train_seconds"]}
        return {**self.inner(rest, on_epoch=on_epoch), "proxy_score": scored["proxy_score"]}

    def unfiltered(self, config: dict[str, Any], *,
                   on_epoch: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """``inner`` on the config without its pre-filter: a re-evaluation
        (:mod:`effnas.nas.reevaluate`) trains again a candidate that passed it in the search."""
        return self.inner({k: v for k, v in config.items() if k != "prefilter"}, on_epoch=on_epoch)


__all__ = ["REFERENCE", "Prefiltered", "ProxyTrainer", "minibatch",
           "torch_threads"]
