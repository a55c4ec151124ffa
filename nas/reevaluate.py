"""Top-k re-evaluation: is the search's winner distinguishable from its runners-up?

A search ranks candidates by one short run each and keeps the highest reward, but the runners-up
can be within one seed's spread of it, and first place is selected on that noise (its run is
biased upwards). After the search, :func:`reevaluate` trains the top ``k`` completed candidates
(by reward) again with the trainer the search used and the same trainer config under another
seed (:func:`reevaluation_seed`: 1 for the default seed 0). Each candidate then has two
runs; :func:`effnas.search_spaces.common.stats.noise_floor` pools their seed-to-seed spread (``k``
groups of two, ``k`` degrees of freedom), and each runner-up is compared with the winner by
:func:`effnas.search_spaces.common.stats.compare` with that floor: ``worse`` or ``tied within noise``.

**The pick.** The winner is the candidate with the highest mean reward over its runs (the search's
and the re-evaluation's; a failed re-evaluation leaves one), ties broken by the search's order. It
replaces the search's first place in ``best_spec.json``.

Re-evaluations are stored in the study (its user attribute ``reevaluation``, per trial and seed),
so a resumed search does not train them again. A trainer that scores rather than trains (a
zero-cost proxy, a supernet) is re-scored with the other seed (another minibatch, initialisation and
reference sample; other calibration batches): the same measurement of noise, labelled ``score``
instead of ``accuracy`` (:mod:`effnas.nas.measure`). The search never imports training code: the
trainer is the callable the search was given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from effnas.nas.measure import ACCURACY, SCORE, measure_name, trial_value
from effnas.nas.objective import Objective
from effnas.nas.pareto import write_csv, write_results
from effnas.nas.study import SearchConfig, TrainerFn
from effnas.nas.trial import candidate_config, outcome
from effnas.search_spaces.common.atomic import atomic_text
from effnas.search_spaces.common.stats import Comparison, Interval, NoiseFloor, compare, interval, noise_floor

#: The study's user attribute holding the re-evaluated runs: ``{"TRIAL:SEED": {status, accuracy|score, reward}}``.
ATTR = "reevaluation"


def reevaluation_seed(seed: int) -> int:
    """The seed of the second run: the search's training seed with its lowest bit flipped (0 <-> 1,
    2 <-> 3, ...): another seed, and a valid one wherever the first was.

    >>> reevaluation_seed(0), reevaluation_seed(1), reevaluation_seed(2**32 - 1)
    (1, 0, 4294967294)
    """
    return seed ^ 1


@dataclass(frozen=True)
class Run:
    """One run of a candidate: the search's (``source="search"``) or the re-evaluation's; ``value``
    is its accuracy or score (the re-evaluation's ``measure``)."""

    trial: int
    seed: int
    source: str
    status: str
    value: float | None
    reward: float | None


@dataclass(frozen=True)
class Candidate:
    """A re-evaluated candidate: its runs, the interval of its reward and of its value (accuracy or
    score) and, for a runner-up, the comparison of its reward with the winner's (runner-up minus
    winner) and its verdict."""

    trial: int
    runs: tuple[Run, ...]
    reward: Interval
    value: Interval
    comparison: Comparison | None = None

    @property
    def verdict(self) -> str:
        return "winner" if self.comparison is None else self.comparison.verdict


def _values(runs: tuple[Run, ...], key: str) -> list[float]:
    return [float(v) for r in runs if (v := getattr(r, key)) is not None and math.isfinite(v)]


@dataclass(frozen=True)
class Reevaluation:
    """The top candidates re-evaluated: winner first, then the runners-up by mean reward."""

    measure: str
    seeds: tuple[int, int]
    candidates: tuple[Candidate, ...]
    floor: NoiseFloor | None
    search_best: int

    @property
    def winner(self) -> Candidate:
        return self.candidates[0]

    def line(self) -> str:
        """``re-evaluated top 3 (seeds 0, 1; reward of the accuracy, %): winner #12: 63.1 [..] (n = 2);
        runners-up #7 tied within noise, #3 worse; noise floor sd 1.2 (3 df)``."""
        w = self.winner
        # an accuracy's reward in %; a score's as it is (a rank share, not a percentage: effnas.nas.measure)
        pct = self.measure == ACCURACY
        scale, unit, digits = (100.0, ", %", 1) if pct else (1.0, "", 3)
        parts = [f"re-evaluated top {len(self.candidates)} (seeds {self.seeds[0]}, {self.seeds[1]}; reward of the "
                 f"{self.measure}{unit}): winner #{w.trial}: {w.reward.text(scale=scale, digits=digits)}"]
        if self.search_best != w.trial:
            parts[0] += f" (the search ranked #{self.search_best} first)"
        if len(self.candidates) > 1:
            parts.append("runners-up " + ", ".join(f"#{c.trial} {c.verdict}" for c in self.candidates[1:]))
        floor = (f"noise floor sd {scale * self.floor.sd:.{digits + 1}f} ({self.floor.df} df)" if self.floor
                 else "no noise floor")
        return "; ".join([*parts, floor])

    def rows(self) -> list[dict[str, Any]]:
        """``reevaluation.csv``: one row per run, with its candidate's mean, interval and verdict."""
        out = []
        for c in self.candidates:
            for r in c.runs:
                out.append({"trial": c.trial, "seed": r.seed, "run": r.source, "status": r.status,
                            self.measure: r.value, "reward": r.reward, "n": c.reward.n,
                            f"mean_{self.measure}": c.value.mean, "mean_reward": c.reward.mean,
                            "reward_low": c.reward.low, "reward_high": c.reward.high, "verdict": c.verdict})
        return out

    def to_dict(self) -> dict[str, Any]:
        acc = noise_floor([_values(c.runs, "value") for c in self.candidates])
        return {"line": self.line(), "measure": self.measure, "seeds": list(self.seeds), "winner": self.winner.trial,
                "search_best": self.search_best, "noise_floor": self.floor.to_dict() if self.floor else None,
                # of the accuracy or score (the reward's is the verdicts'): a measured value for search.noise_floor
                f"noise_floor_{self.measure}": acc.to_dict() if acc else None,
                "candidates": [{"trial": c.trial, "n": c.reward.n, "mean_reward": c.reward.mean,
                                "reward_low": c.reward.low, "reward_high": c.reward.high,
                                f"mean_{self.measure}": c.value.mean, "verdict": c.verdict,
                                **({"p": c.comparison.p, "diff": c.comparison.diff} if c.comparison else {})}
                               for c in self.candidates]}


def write_search_results(study: optuna.Study, out: str | Path, objective: Objective,
                         reevaluation: Reevaluation | None) -> dict[str, Any]:
    """:func:`effnas.nas.pareto.write_results` with the re-evaluation's winner as the best candidate
    (``best_reward`` and ``best_accuracy`` or ``best_score`` are then its means, ``best_runs`` their count),
    ``reevaluation.csv``, ``reevaluation.json`` (the summary the report shows) and the
    re-evaluation's summary under ``reevaluation``; without one, as
    ``write_results``."""
    if reevaluation is None:
        return write_results(study, out, objective)
    w = reevaluation.winner
    summary = write_results(study, out, objective, best=w.trial)
    rows = reevaluation.rows()
    write_csv(Path(out) / "reevaluation.csv", rows, list(rows[0]))
    atomic_text(Path(out) / "reevaluation.json", json.dumps(reevaluation.to_dict(), indent=2, default=str) + "\n")
    summary.update({"best_reward": w.reward.mean, f"best_{reevaluation.measure}": w.value.mean,
                    "best_runs": w.reward.n, "reevaluation": reevaluation.to_dict()})
    return summary


def top_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` completed trials with the highest reward (ties: the earlier trial first)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if isinstance(t.user_attrs.get("reward"), int | float) and math.isfinite(t.user_attrs["reward"])]
    return sorted(done, key=lambda t: (-float(t.user_attrs["reward"]), t.number))[:k]


def _rerun(cfg: SearchConfig, trial: FrozenTrial, trainer: TrainerFn, seed: int) -> dict[str, Any]:
    """Train trial ``trial``'s candidate again with ``seed`` (never pruned); status, accuracy or score, reward."""
    config = {**candidate_config(cfg, trial.params, trial=trial.number), "seed": seed}
    costs = {k: trial.user_attrs.get(k) for k in (cfg.objective.cost_key, "params")}
    _, _, attrs = outcome(cfg.objective, costs, trainer(config), cfg.measure)
    return {"status": attrs["status"], cfg.measure: attrs.get(cfg.measure), "reward": attrs.get("reward")}


def reevaluate(cfg: SearchConfig, study: optuna.Study, trainer: TrainerFn, *, top_k: int | None = None,
               progress: Callable[[str], None] | None = None) -> Reevaluation | None:
    """Train the top ``top_k`` (default ``cfg.reevaluate``) completed candidates again with
    :func:`reevaluation_seed` and compare the runners-up with the winner; None when ``top_k`` is 0
    or no trial completed. ``progress`` receives a line per candidate trained."""
    k = cfg.reevaluate if top_k is None else top_k
    top = top_trials(study, k) if k > 0 else []
    if not top:
        return None
    seed = int(cfg.train.get("seed", 0))
    again = reevaluation_seed(seed)
    measure = cfg.measure
    stored: dict[str, Any] = dict(study.user_attrs.get(ATTR) or {})
    candidates = []
    for i, t in enumerate(top, 1):
        key = f"{t.number}:{again}"
        if key not in stored:
            stored[key] = _rerun(cfg, t, trainer, again)
            study.set_user_attr(ATTR, stored)
            if progress is not None:
                r = stored[key]
                got = (f"{measure} {trial_value(r, measure):.4f}, reward {r['reward']:.4f}" if r["reward"] is not None
                       else r["status"])
                progress(f"re-evaluated {i}/{len(top)}: trial {t.number} with seed {again}: {got} (search run: "
                         f"{measure} {trial_value(t.user_attrs, measure):.4f}, reward {t.user_attrs['reward']:.4f})")
        a, r = t.user_attrs, stored[key]
        runs = (Run(t.number, seed, "search", str(a.get("status", "completed")), trial_value(a, measure),
                    a.get("reward")),
                Run(t.number, again, "reevaluation", str(r["status"]), trial_value(r, measure), r["reward"]))
        candidates.append(Candidate(t.number, runs, interval(_values(runs, "reward")),
                                    interval(_values(runs, "value"))))
    order = {c.trial: i for i, c in enumerate(candidates)}
    candidates.sort(key=lambda c: (-c.reward.mean if math.isfinite(c.reward.mean) else math.inf, order[c.trial]))
    floor = noise_floor([_values(c.runs, "reward") for c in candidates])
    best = _values(candidates[0].runs, "reward")
    ranked = [candidates[0]] + [Candidate(c.trial, c.runs, c.reward, c.value,
                                          compare(_values(c.runs, "reward"), best, floor=floor))
                                for c in candidates[1:]]
    return Reevaluation(measure, (seed, again), tuple(ranked), floor, top[0].number)


__all__ = ["ACCURACY", "ATTR", "SCORE", "Candidate", "Reevaluation", "Run", "measure_name", "reevaluate",
           "reevaluation_seed", "top_trials", "write_search_results"]
