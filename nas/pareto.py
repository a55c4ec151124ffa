"""Results of a study: the per-trial table, the value-vs-cost Pareto front, its plot, the best spec.

A trial's value is its ``accuracy`` when the search trained it and its ``score`` when it was
estimated (a zero-cost proxy or a supernet: :mod:`effnas.nas.measure`); ``trials.csv`` names its
column by that (a search has one or the other, never an ``accuracy`` column holding a score), and
``pareto.json`` records which (``measure``), what it is (``label``, the plot's axis) and the reward
formula (``reward``). :func:`read_search` reads a search's files back, for a notebook or a report.

A trial is on the front when no other finished trial has value >= and cost <= with one of
them strict (maximise the value, minimise MACs or latency).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from effnas.nas.measure import ACCURACY, SCORE, measure_label, measure_name, reward_formula, trial_value
from effnas.nas.objective import Objective
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_text, atomic_write
from effnas.search_spaces.common.errors import UserError, user_file

if TYPE_CHECKING:
    import pandas as pd

#: The columns of a trained search's ``trials.csv``; :func:`columns` gives an estimated search's.
COLUMNS = ("number", "state", "status", "strategy", "accuracy", "macs", "params", "latency_ms",
           "latency_runtime", "train_step_ms", "reward", "target", "w", "target_params", "v", "test_accuracy",
           "train_seconds", "blocks", "spec")


def study_train(study: optuna.Study) -> dict[str, Any]:
    """The candidates' trainer config the study was created with (its ``settings``)."""
    return dict((study.user_attrs.get("settings") or {}).get("train") or {})


def columns(train: dict[str, Any]) -> tuple[str, ...]:
    """The columns of ``trials.csv`` for a search with trainer config ``train``: :data:`COLUMNS`, or for
    an estimated search ``score`` in place of ``accuracy`` and no ``test_accuracy`` (an estimate has
    none); ``proxy_score`` (a zero-cost proxy's raw value) after it when a proxy scored candidates.

    >>> columns({"estimator": "proxy:synflow"})[3:7]
    ('strategy', 'score', 'proxy_score', 'macs')
    """
    measure = measure_name(train)
    proxy = str(train.get("estimator", "")).startswith("proxy:") or bool(train.get("prefilter"))
    out: list[str] = []
    for c in COLUMNS:
        if c == "test_accuracy" and measure == SCORE:
            continue
        out.append(measure if c == ACCURACY else c)
        if c == ACCURACY and proxy:
            out.append("proxy_score")
    return tuple(out)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated ``(accuracy, cost)`` points, by increasing cost.

    >>> pareto_front([(0.9, 10.0), (0.8, 5.0), (0.7, 7.0), (0.95, 20.0), (0.9, 12.0)])
    [1, 0, 3]
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front: list[int] = []
    best = -float("inf")
    for i in order:
        if points[i][0] > best:
            front.append(i)
            best = points[i][0]
    return front


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial (every state), with the columns of :func:`columns` for the study's search."""
    train = study_train(study)
    measure, cols = measure_name(train), columns(train)
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row = {c: a.get(c) for c in cols}
        row.update({measure: trial_value(a, measure)}, number=t.number, state=t.state.name,
                   status=a.get("status", t.state.name.lower()))
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """``rows`` as a CSV file with ``columns`` (None as empty), written atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns))
            w.writeheader()
            for r in rows:
                w.writerow({k: "" if v is None else v for k, v in r.items()})

    atomic_write(path, write)


def write_results(study: optuna.Study, out: str | Path, objective: Objective, *,
                  best: int | None = None) -> dict[str, Any]:
    """``trials.csv``, ``pareto.json``, ``pareto.png`` and ``best_spec.json`` (``best_arch.json`` for a
    benchmark table's choices) in ``out``; a summary (``best_accuracy`` or ``best_score``). The best
    candidate is completed trial ``best`` (a re-evaluation's winner, :mod:`effnas.nas.reevaluate`), by
    default the one with the highest reward."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train = study_train(study)
    measure, label = measure_name(train), measure_label(train)
    rows = trial_rows(study)
    write_csv(out / "trials.csv", rows, columns(train))
    done = [r for r in rows if r["state"] == TrialState.COMPLETE.name and r[measure] is not None]
    key = objective.cost_key
    pts = [(float(r[measure]), float(r[key])) for r in done]
    front = [done[i] for i in pareto_front(pts)]
    pareto = {"cost": key, "objective": objective.to_dict(), "measure": measure, "label": label,
              "reward": reward_formula(measure, key, params=bool(objective.v)),
              "front": [{k: r[k] for k in ("number", measure, "macs", "params", "latency_ms", "train_step_ms",
                                           "reward", "blocks")} for r in front]}
    atomic_text(out / "pareto.json", json.dumps(pareto, indent=2) + "\n")
    plot_pareto(done, front, out / "pareto.png", cost_key=key, target=objective.target, ylabel=label,
                measure=measure)
    summary: dict[str, Any] = {"trials": len(rows), "completed": len(done), "front": len(front)}
    if done:
        top = (max(done, key=lambda r: float(r["reward"])) if best is None else
               next(r for r in done if r["number"] == best))
        spec = json.loads(top["spec"])
        if "stages" in spec:
            NetworkSpec.from_dict(spec).save(out / "best_spec.json")
        else:  # a benchmark table's candidate: its choices
            (out / "best_arch.json").write_text(json.dumps({"arch": top["blocks"], "choices": spec}, indent=2) + "\n")
        summary.update({"best_trial": top["number"], "best_reward": top["reward"], f"best_{measure}": top[measure],
                        "best_macs": top["macs"]})
    return summary


def plot_pareto(rows: list[dict[str, Any]], front: list[dict[str, Any]], path: str | Path, *,
                cost_key: str = "macs", target: float | None = None, ylabel: str = "validation accuracy",
                measure: str = ACCURACY) -> None:
    """``measure`` (axis ``ylabel``) vs cost of the completed trials, the front highlighted and joined."""
    import matplotlib  # lazy: matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is slow to import

    scale, unit = {"macs": (1e6, "MACs (M)"), "train_step_ms": (1.0, "training step (ms)")}.get(
        cost_key, (1.0, "latency (ms)"))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if rows:
        ax.scatter([float(r[cost_key]) / scale for r in rows], [float(r[measure]) for r in rows],
                   s=14, c="0.6", label="trials")
    if front:
        ax.plot([float(r[cost_key]) / scale for r in front], [float(r[measure]) for r in front],
                "o-", c="C3", ms=6, label="Pareto front")
    if target:
        ax.axvline(target / scale, ls="--", c="C0", lw=1, label="target T")
    ax.set_xlabel(unit)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{len(rows)} completed trials, {len(front)} on the front")
    ax.legend(loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda t: fig.savefig(t, dpi=110))
    plt.close(fig)


@dataclass(frozen=True)
class SearchFiles:
    """A search's files read back (:func:`read_search`), or its study (:func:`read_study`).

    ``trials`` is ``trials.csv``; ``measure`` its value column (``accuracy`` or ``score``), ``label``
    what that value is (a chart's axis), ``reward`` the reward's formula, ``cost`` the cost column
    (``macs`` or ``latency_ms``), ``front`` the trial numbers on the Pareto front and ``target`` T;
    ``path`` the search's directory (None for a study)."""

    path: Path | None
    trials: pd.DataFrame
    measure: str
    label: str
    reward: str
    cost: str
    front: tuple[int, ...]
    target: float | None

    @property
    def completed(self) -> pd.DataFrame:
        """The completed trials that have a value, numbers and costs as floats."""
        t = self.trials
        done = t[(t["state"] == TrialState.COMPLETE.name) & t[self.measure].notna()] if "state" in t.columns else t
        return done.astype({self.measure: float, self.cost: float, "reward": float}).reset_index(drop=True)


def read_search(path: str | Path) -> SearchFiles:
    """The search written into ``path`` (``effnas search --out``; an ``effnas run`` directory: its
    ``search/``): ``trials.csv`` with what ``pareto.json`` says it measured. A search written before
    ``pareto.json`` named its measure is read by its column (``score`` or ``accuracy``)."""
    import pandas as pd  # lazy: pandas is slow to import, and the search does not need it

    d = Path(path)
    d = d / "search" if (d / "search" / "trials.csv").is_file() else d
    if not (d / "trials.csv").is_file():
        raise UserError(f"no trials.csv in {d}: give a directory written by 'effnas search --out' or 'effnas run'")
    with user_file(d / "trials.csv", "the search's", "restore it, or run the search again"):
        trials = pd.read_csv(d / "trials.csv")
    info: dict[str, Any] = {}
    if (d / "pareto.json").is_file():
        with user_file(d / "pareto.json", "the search's", "restore it, or run the search again"):
            info = json.loads((d / "pareto.json").read_text())
    measure = str(info.get("measure") or (SCORE if SCORE in trials.columns else ACCURACY))
    if measure not in trials.columns:
        raise UserError(f"{d / 'trials.csv'} has no column {measure!r}: write it again with 'effnas search --resume'")
    cost = str(info.get("cost", "macs"))
    target = (info.get("objective") or {}).get("target")
    return SearchFiles(path=d, trials=trials, measure=measure,
                       label=str(info.get("label") or ("score" if measure == SCORE else "validation accuracy")),
                       reward=str(info.get("reward") or reward_formula(measure, cost)), cost=cost,
                       front=tuple(int(r["number"]) for r in info.get("front", [])),
                       target=float(target) if isinstance(target, int | float) else None)


def read_study(study: optuna.Study) -> SearchFiles:
    """A study read as :func:`read_search` reads its files: its trials as ``trials.csv`` has them
    (:func:`trial_rows`), with what it measured and its front (computed, as :func:`write_results` does)."""
    import pandas as pd  # lazy: pandas is slow to import, and the search does not need it

    train = study_train(study)
    measure = measure_name(train)
    objective = Objective.from_dict((study.user_attrs.get("settings") or {}).get("objective") or {"target": 1.0})
    trials = pd.DataFrame(trial_rows(study), columns=list(columns(train)))
    found = SearchFiles(path=None, trials=trials, measure=measure, label=measure_label(train),
                        reward=reward_formula(measure, objective.cost_key, params=bool(objective.v)),
                        cost=objective.cost_key, front=(),
                        target=objective.target)
    done = found.completed
    front = pareto_front(list(zip(done[measure], done[objective.cost_key], strict=True)))
    return dataclasses.replace(found, front=tuple(int(done["number"].iloc[i]) for i in front))


__all__ = ["COLUMNS", "SearchFiles", "columns", "pareto_front", "plot_pareto", "read_search", "read_study",
           "study_train", "trial_rows", "write_csv", "write_results"]
