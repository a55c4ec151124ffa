"""An accuracy predictor on the architecture encoding, and evolution that proposes through it.

The encoding is one-hot per categorical parameter (NAS-Bench-201: 6 edges x 5 operations = 30
inputs). The predictor is an ensemble of small MLPs (torch, one hidden layer, each member with its
own initialisation and a bootstrap resample of the training trials), trained on standardised
targets; its prediction is the members' mean. :class:`PredictorEvolutionSampler` is regularized
evolution (:mod:`~effnas.nas.strategies.evolution`) whose child is the best-predicted of
``candidates`` mutations, each drawn as REA draws its one child (tournament, then one mutation),
with the predictor refitted on every finished trial so far (in the spirit of BANANAS, White et
al. AAAI 2021, and of NPENAS, Wei et al. 2022; here the acquisition is the ensemble mean).
:func:`learning_curve` measures the predictor's Kendall tau on held-out architectures against the
number of training samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from scipy.stats import kendalltau

from effnas.nas.strategies.evolution import RegularizedEvolutionSampler, finished_trials, fitness
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.stats import Interval, bootstrap_compare, bootstrap_interval, resample_indices


def encode(params: Sequence[Mapping[str, Any]], choices: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """One-hot rows of ``params`` over ``choices`` (parameter -> its values), shape ``(n, sum of values)``.

    >>> encode([{"a": "y", "b": 1}], {"a": ("x", "y"), "b": (0, 1, 2)}).tolist()
    [[0.0, 1.0, 0.0, 1.0, 0.0]]
    """
    width = sum(len(v) for v in choices.values())
    out = np.zeros((len(params), width))
    for row, p in enumerate(params):
        col = 0
        for name, values in choices.items():
            out[row, col + list(values).index(p[name])] = 1.0
            col += len(values)
    return out


class MLPEnsemble:
    """``members`` one-hidden-layer MLPs (``hidden`` ReLU units), Adam for ``steps`` full-batch steps.

    Args:
        members: ensemble size (1: a single MLP, trained on all points).
        hidden: hidden units.
        steps: optimisation steps per fit.
        seed: seeds initialisation and the members' bootstrap resamples.
    """

    def __init__(self, *, members: int = 3, hidden: int = 32, steps: int = 100, seed: int = 0) -> None:
        if members < 1 or hidden < 1 or steps < 1:
            raise UserError(f"predictor members, hidden and steps must be >= 1, got {members}, {hidden}, {steps}")
        self.members, self.hidden, self.steps, self.seed = members, hidden, steps, seed
        self._nets: list[Any] = []
        self._mu, self._sd = 0.0, 1.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> MLPEnsemble:
        import torch  # lazy: torch is slow to import and only the predictor needs it

        if len(x) < 2:
            raise UserError(f"the predictor needs at least 2 training points, got {len(x)}")
        self._mu, self._sd = float(y.mean()), float(y.std()) or 1.0
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        xt = torch.as_tensor(x, dtype=torch.float32)
        yt = torch.as_tensor((y - self._mu) / self._sd, dtype=torch.float32)
        self._nets = []
        for _ in range(self.members):
            idx = torch.as_tensor(rng.integers(0, len(x), len(x)) if self.members > 1 else np.arange(len(x)))
            net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], self.hidden), torch.nn.ReLU(),
                                      torch.nn.Linear(self.hidden, 1))
            with torch.no_grad():
                for p in net.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / max(p.shape[-1], 1)) ** 0.5)
            opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
            for _ in range(self.steps):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(xt[idx]).squeeze(-1), yt[idx])
                loss.backward()
                opt.step()
            self._nets.append(net.eval())
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch  # lazy: torch is slow to import and only the predictor needs it

        if not self._nets:
            raise UserError("the predictor is not fitted: call fit first")
        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=torch.float32)
            pred = torch.stack([net(xt).squeeze(-1) for net in self._nets]).mean(0).numpy()
        return pred * self._sd + self._mu


class PredictorEvolutionSampler(RegularizedEvolutionSampler):
    """Regularized evolution whose child is the best-predicted of ``candidates`` mutations.

    Args:
        candidates: K, mutations proposed per child (1: plain REA, the predictor unused).
        members, hidden, steps: of the :class:`MLPEnsemble` refitted before each child.
        population_size, tournament_size, seed: as :class:`RegularizedEvolutionSampler`.
    """

    def __init__(self, *, candidates: int = 10, members: int = 3, hidden: int = 32, steps: int = 100,
                 population_size: int = 20, tournament_size: int = 5, seed: int | None = None) -> None:
        super().__init__(population_size=population_size, tournament_size=tournament_size, seed=seed)
        if candidates < 1:
            raise UserError(f"predictor candidates must be >= 1, got {candidates}")
        self.candidates = candidates
        self._model = dict(members=members, hidden=hidden, steps=steps)
        self._seed = seed or 0

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        kids = [super(PredictorEvolutionSampler, self).sample_relative(study, trial, search_space)
                for _ in range(self.candidates)]
        if self.candidates == 1 or not kids[0]:
            return kids[0]
        seen = finished_trials(study)
        choices = {n: tuple(d.choices) for n, d in search_space.items()}  # type: ignore[attr-defined]
        known = [t for t in seen if all(n in t.params for n in choices) and np.isfinite(fitness(t))]
        if len(known) < 2:
            return kids[0]
        done = {tuple(t.params[n] for n in choices) for t in known}
        fresh = [k for k in kids if tuple(k[n] for n in choices) not in done] or kids
        model = MLPEnsemble(seed=self._seed + trial.number, **self._model).fit(
            encode([t.params for t in known], choices), np.array([fitness(t) for t in known]))
        return fresh[int(np.argmax(model.predict(encode(fresh, choices))))]


def learning_curve(archs: Sequence[Mapping[str, Any]], accuracy: Sequence[float],
                   choices: Mapping[str, Sequence[Any]], *, sizes: Sequence[int], test: int = 200,
                   repeats: int = 3, resamples: int = 200, seed: int = 0, truth: Sequence[float] | None = None,
                   baseline: Sequence[float] | None = None, **model: int) -> list[dict[str, Any]]:
    """The predictor's Kendall tau on ``test`` held-out architectures against the training-set size.

    For each size n and each of ``repeats`` seeded splits, n architectures train the ensemble on ``accuracy``
    and ``test`` others (disjoint) are ranked against ``truth`` (default: ``accuracy``; e.g. train on one seed's
    accuracies, as a search sees them, and test against the mean over seeds); one row per n: the mean tau over
    repeats and its bootstrap interval (:func:`~effnas.search_spaces.common.stats.bootstrap_interval`):
    replicate b is the mean over repeats of tau on the b-th resample (with replacement) of each repeat's test
    architectures. With ``baseline`` (a score per architecture that needs no training samples, e.g. the
    parameter count), each row also holds the baseline's tau on the same held-out sets and resamples
    (``baseline_tau``) and the predictor minus the baseline, paired
    (:func:`~effnas.search_spaces.common.stats.bootstrap_compare`): ``diff``, ``diff_low``, ``diff_high``,
    ``p`` and ``verdict``.
    """
    acc = np.asarray(accuracy, float)
    target = acc if truth is None else np.asarray(truth, float)
    base = None if baseline is None else np.asarray(baseline, float)
    if not sizes or min(sizes) < 2 or max(sizes) + test > len(acc):
        raise UserError(f"training sizes must be >= 2 and leave {test} test architectures out of {len(acc)}, "
                         f"got {list(sizes)}")
    if len(target) != len(acc) or (base is not None and len(base) != len(acc)):
        raise UserError(f"truth and baseline need one value per architecture ({len(acc)})")
    x = encode(archs, choices)
    draws = resample_indices(test, resamples=resamples, seed=seed)
    rows = []
    for n in sizes:
        taus, reps = [], np.zeros(len(draws))
        base_taus, base_reps = [], np.zeros(len(draws))
        for r in range(repeats):
            order = np.random.default_rng([seed, r]).permutation(len(acc))
            tr, te = order[:n], order[n:n + test]
            pred = MLPEnsemble(seed=seed + r, **model).fit(x[tr], acc[tr]).predict(x[te])
            taus.append(float(kendalltau(pred, target[te]).statistic))
            reps += [float(kendalltau(pred[i], target[te][i]).statistic) for i in draws]
            if base is not None:
                base_taus.append(float(kendalltau(base[te], target[te]).statistic))
                base_reps += [float(kendalltau(base[te][i], target[te][i]).statistic) for i in draws]
        iv: Interval = bootstrap_interval(float(np.mean(taus)), reps / repeats, n=test)
        row: dict[str, Any] = {"train": n, "test": test, "repeats": repeats, "kendall_tau": iv.mean,
                               "ci_low": iv.low, "ci_high": iv.high}
        if base is not None:
            c = bootstrap_compare(iv.mean, reps / repeats, float(np.mean(base_taus)), base_reps / repeats, n=test)
            row.update(baseline_tau=c.mean_b, diff=c.diff, diff_low=c.low, diff_high=c.high, p=c.p,
                       verdict=c.verdict)
        rows.append(row)
    return rows


__all__ = ["MLPEnsemble", "PredictorEvolutionSampler", "encode", "learning_curve"]
