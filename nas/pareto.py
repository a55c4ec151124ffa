"""Results of a study: the per-trial table, the accuracy-vs-cost Pareto front, its plot, the best spec.

A trial is on the front when no other finished trial has accuracy >= and cost <= with one of
them strict (maximise accuracy, minimise MACs or latency).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from effnas.nas.objective import Objective
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_text, atomic_write

COLUMNS = ("number", "state", "status", "strategy", "accuracy", "macs", "params", "latency_ms",
           "latency_runtime", "reward", "target", "w", "test_accuracy", "train_seconds", "blocks", "spec")


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
    """One row per trial (every state), with the columns of :data:`COLUMNS`."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row = {c: a.get(c) for c in COLUMNS}
        row.update(number=t.number, state=t.state.name, status=a.get("status", t.state.name.lower()))
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
    benchmark table's choices) in ``out``; a summary. The best candidate is completed trial ``best``
    (a re-evaluation's winner, :mod:`effnas.nas.reevaluate`), by default the one with the highest reward."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    write_csv(out / "trials.csv", rows, COLUMNS)
    done = [r for r in rows if r["state"] == TrialState.COMPLETE.name and r["accuracy"] is not None]
    key = objective.cost_key
    pts = [(float(r["accuracy"]), float(r[key])) for r in done]
    front = [done[i] for i in pareto_front(pts)]
    pareto = {"cost": key, "objective": objective.to_dict(),
              "front": [{k: r[k] for k in ("number", "accuracy", "macs", "params", "latency_ms", "reward", "blocks")}
                        for r in front]}
    atomic_text(out / "pareto.json", json.dumps(pareto, indent=2) + "\n")
    estimator = str(((study.user_attrs.get("settings") or {}).get("train") or {}).get("estimator", "train"))
    ylabel = ("zero-cost proxy: rank among reference candidates" if estimator.startswith("proxy:") else
              "validation accuracy (inherited supernet weights)" if estimator.startswith("supernet") else
              "validation accuracy")
    plot_pareto(done, front, out / "pareto.png", cost_key=key, target=objective.target, ylabel=ylabel)
    summary: dict[str, Any] = {"trials": len(rows), "completed": len(done), "front": len(front)}
    if done:
        top = (max(done, key=lambda r: float(r["reward"])) if best is None else
               next(r for r in done if r["number"] == best))
        spec = json.loads(top["spec"])
        if "stages" in spec:
            NetworkSpec.from_dict(spec).save(out / "best_spec.json")
        else:  # a benchmark table's candidate: its choices
            (out / "best_arch.json").write_text(json.dumps({"arch": top["blocks"], "choices": spec}, indent=2) + "\n")
        summary.update(best_trial=top["number"], best_reward=top["reward"], best_accuracy=top["accuracy"],
                       best_macs=top["macs"])
    return summary


def plot_pareto(rows: list[dict[str, Any]], front: list[dict[str, Any]], path: str | Path, *,
                cost_key: str = "macs", target: float | None = None, ylabel: str = "validation accuracy") -> None:
    """Accuracy vs cost of the completed trials, the front highlighted and joined."""
    import matplotlib  # lazy: matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is slow to import

    scale, unit = (1e6, "MACs (M)") if cost_key == "macs" else (1.0, "latency (ms)")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if rows:
        ax.scatter([float(r[cost_key]) / scale for r in rows], [float(r["accuracy"]) for r in rows],
                   s=14, c="0.6", label="trials")
    if front:
        ax.plot([float(r[cost_key]) / scale for r in front], [float(r["accuracy"]) for r in front],
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
