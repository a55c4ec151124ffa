"""A cheap surrogate of training: a seeded, deterministic accuracy function of the architecture.

It exists to test and compare search strategies: thousands of "trainings" take seconds, the
landscape has structure a strategy can learn (per-block effects of every choice, kernel x op
interactions, a saturating gain from capacity) and a different seed gives a different but
equally structured landscape. It is not a model of any data set. :class:`SurrogateTrainer`
follows the trainer contract (``docs/architecture.md``) so the search driver, pruning, Ray and
the CLI can run on it; :func:`effnas.search_spaces.counts.count_macs` counts its multiply-adds
analytically (no fvcore) for the fast benchmarks.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from effnas.nas.strategies import make_sampler
from effnas.search_spaces import NetworkSpec, load_spec
from effnas.search_spaces.counts import count_macs


def _g(seed: int, *key: object) -> float:
    """A reproducible N(0, 1)-like draw for ``key`` (Box-Muller on two CRC32 hashes)."""
    text = "|".join(map(str, (seed, *key))).encode()
    u1 = (zlib.crc32(text) + 1) / 2**32
    u2 = (zlib.crc32(text + b"#") + 1) / 2**32
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


@dataclass(frozen=True)
class SurrogateTrainer:
    """``trainer(config, *, on_epoch=None) -> metrics`` whose accuracy is a seeded function of the spec.

    Args:
        seed: picks the landscape.
        scale: standard deviation of each per-choice effect on the logit.
        capacity: logit gain per e-fold of MACs (bigger networks are better, with diminishing returns).
    """

    seed: int = 0
    scale: float = 0.3
    capacity: float = 0.4

    def accuracy(self, spec: NetworkSpec, resolution: int | None = None) -> float:
        """Final validation accuracy in (0.5, 0.99)."""
        s = self.capacity * math.log(count_macs(spec, resolution) / 1e6 + 1.0)
        for i, b in enumerate(spec.stages):
            op = f"{b.op}{b.expansion}"
            for name, value in (("op", op), ("k", b.kernel), ("se", b.se_ratio > 0), ("skip", b.skip),
                                ("out", b.out_channels), ("r", b.repeats), ("opk", (op, b.kernel))):
                s += self.scale * _g(self.seed, i, name, value)
        return 0.5 + 0.49 / (1.0 + math.exp(-(s - 2.0)))

    def __call__(self, config: dict[str, Any], *, on_epoch: Callable[[dict[str, Any]], bool] | None = None) -> dict:
        model = config["model"]
        spec = NetworkSpec.from_dict(model) if isinstance(model, dict) else load_spec(model)
        res = config.get("resolution") or spec.resolution
        final = self.accuracy(spec, res)
        epochs = int(config.get("epochs", 1))
        status, acc = "completed", 0.0
        for e in range(epochs):
            acc = final * (1.0 - 0.5 ** (e + 1) * 0.5)
            if on_epoch is not None and on_epoch({"epoch": e + 1, "train_loss": 1.0 - acc, "val_accuracy": acc}):
                status = "pruned"
                break
        return {"status": status, "val_accuracy": acc, "test_accuracy": acc, "params": None,
                "macs": count_macs(spec, res), "resolution": res, "num_classes": spec.num_classes,
                "train_seconds": 0.0, "images_per_second": None}


def trials_to_target(space: Any, objective: Any, strategy: str, *, target_reward: float, max_trials: int,
                     seed: int = 0, landscape: int = 0, population_size: int = 20) -> int | None:
    """Trials a strategy needs on the surrogate before some trial's reward reaches ``target_reward``.

    Runs an in-memory Optuna study with the strategy's sampler; each trial builds the spec from
    the sampled choices and scores it with :class:`SurrogateTrainer` (``landscape`` seeds it) and
    :func:`effnas.search_spaces.counts.count_macs`. Returns None when ``max_trials`` are not enough.
    """
    surrogate = SurrogateTrainer(seed=landscape)
    study = optuna.create_study(direction="maximize",
                                sampler=make_sampler(strategy, seed=seed, population_size=population_size))
    for n in range(1, max_trials + 1):
        trial = study.ask()
        spec = space.to_spec(space.sample(trial))
        acc = surrogate.accuracy(spec)
        reward = objective.reward(acc, count_macs(spec))
        study.tell(trial, reward)
        if reward >= target_reward:
            return n
    return None


def reward_quantile(space: Any, objective: Any, q: float, *, landscape: int = 0, samples: int = 2000) -> float:
    """The ``q``-quantile of the reward of uniformly random architectures on a surrogate landscape
    (a fixed draw of ``samples``): a per-landscape target that random search reaches after
    about ``1 / (1 - q)`` trials."""
    rng = np.random.default_rng(12345 + landscape)
    surrogate = SurrogateTrainer(seed=landscape)
    dists = space.distributions()
    rewards = []
    for _ in range(samples):
        params = {n: d.choices[int(rng.integers(len(d.choices)))] for n, d in dists.items()}
        spec = space.to_spec(params)
        rewards.append(objective.reward(surrogate.accuracy(spec), count_macs(spec)))
    return float(np.quantile(rewards, q))
