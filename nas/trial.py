"""The evaluation of one trial, the same in this process and in a Ray task.

The driver (:mod:`effnas.nas.search`) asks the study for a trial and samples its choices; then
:func:`evaluate_trial` opens the study's storage, computes the candidate's params, MACs (and
latency when that is the cost) *before* training and stores them with its block strings and full
spec JSON; a candidate that breaks a hard constraint is rejected (PRUNED, ``status=rejected``)
without training; otherwise the trainer (``trainer(config, *, on_epoch=None) -> metrics``,
docs/architecture.md) trains it and every epoch's reward is reported to the study's pruner
(:func:`effnas.nas.study.make_pruner`), which can stop it. The trainer's ``status`` is the outcome:
``completed``, ``pruned``, ``failed``, ``oom`` or ``diverged`` (the last three FAIL). An exception from the
trainer is not an outcome: the trial is marked FAIL with ``status=error`` and the error, and the
exception goes on to stop the search.
"""

from __future__ import annotations

import json
import math
from typing import Any

import optuna
import torch
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from effnas.nas.benchmarks.cell_space import CellSpace
from effnas.nas.measure import ACCURACY
from effnas.nas.objective import Objective
from effnas.nas.study import SearchConfig, TrainerFn, make_pruner, open_storage
from effnas.search_spaces import NetworkSpec, build, encode_block
from effnas.search_spaces.common.errors import first_line
from effnas.search_spaces.cost import count_params, macs, measure_latency, measure_latency_onnxruntime
from effnas.search_spaces.latency_table import LatencyTable, time_network
from effnas.search_spaces.timing import STEP_REPEATS, STEP_WARMUP, Protocol, time_train_step


def measure(spec: NetworkSpec, objective: Objective) -> dict[str, Any]:
    """Params, MACs and (when the objective's cost is latency) batch-1 latency in ms, of eager
    PyTorch or of onnxruntime on the candidate exported to ONNX (``objective.latency_runtime``,
    recorded as ``latency_runtime``), or predicted by ``objective.latency_table`` (recorded as
    ``latency_runtime = "table"``); or (cost ``train_step``) the median ms of a training step of
    ``objective.step_batch`` images with ``objective.step_threads`` threads
    (:func:`step_time`, recorded as ``train_step_ms``).

    MACs are traced with one torch thread: a batch-1 trace gains nothing from more, and on a
    busy machine more threads made it slower (docs/training.md, "Measured numbers behind the
    code's choices").
    """
    model = build(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out: dict[str, Any] = {"params": count_params(model), "macs": macs(spec), "latency_ms": None}
    finally:
        torch.set_num_threads(threads)
    if objective.metric == "latency" and objective.latency_table is not None:
        out["latency_ms"] = predicted_latency(objective.latency_table, spec)[1]
        out["latency_runtime"] = "table"
    elif objective.metric == "latency":
        if objective.latency_runtime == "onnxruntime":
            out["latency_ms"] = measure_latency_onnxruntime(model, spec.resolution)
        else:
            out["latency_ms"] = measure_latency(model, spec.resolution, batch=1)[0]
        out["latency_runtime"] = objective.latency_runtime
    if objective.metric == "train_step":
        out["train_step_ms"] = step_time(spec, batch=int(objective.step_batch or 1), threads=objective.step_threads)
    return out


_TABLES: dict[str, LatencyTable] = {}


def latency_table(path: str) -> LatencyTable:
    """The table in ``path``, read once per process (a search's trials share it and the ops it learns)."""
    if path not in _TABLES:
        _TABLES[path] = LatencyTable.load(path)
    return _TABLES[path]


def predicted_latency(path: str, spec: NetworkSpec) -> tuple[LatencyTable, float]:
    """The table in ``path`` and its prediction for ``spec`` (ms); ops it lacked are timed and saved into it."""
    table = latency_table(path)
    if table.extend([spec]):
        table.save(path)
    return table, table.predict(spec)


def verify_latency(objective: Objective, spec: NetworkSpec) -> dict[str, Any]:
    """The table's prediction for ``spec`` against a measurement under the table's protocol: ``predicted_ms``,
    ``measured_ms``, ``error`` (predicted / measured - 1) and the ``table`` file."""
    assert objective.latency_table is not None
    table, predicted = predicted_latency(objective.latency_table, spec)
    measured = time_network(spec, table.protocol)
    return {"table": objective.latency_table, "predicted_ms": predicted, "measured_ms": measured,
            "error": predicted / measured - 1, "protocol": table.protocol.to_dict()}


def step_time(spec: NetworkSpec, *, batch: int, threads: int) -> float:
    """EfficientNetV2's S: the median ms of one training step of ``spec`` (forward, loss, backward,
    SGD step) at its resolution on ``batch`` images with ``threads`` torch threads,
    :data:`~effnas.search_spaces.timing.STEP_WARMUP` steps discarded, the median of
    :data:`~effnas.search_spaces.timing.STEP_REPEATS` (:func:`effnas.search_spaces.timing.time_train_step`)."""
    protocol = Protocol(batch=batch, threads=threads, warmup=STEP_WARMUP, repeats=STEP_REPEATS)
    return time_train_step(spec, protocol).median_ms


def candidate_attrs(spec: NetworkSpec, costs: dict[str, Any], strategy: str) -> dict[str, Any]:
    """Trial attributes known before training: enough to rebuild the candidate (``effnas export``)."""
    d = spec.to_dict()
    d["stages"] = [encode_block(s) for s in spec.stages]
    return {"strategy": strategy, "blocks": " ".join(d["stages"]), "spec": json.dumps(d, separators=(",", ":")),
            **costs}


def outcome(objective: Objective, costs: dict[str, Any], metrics: dict[str, Any], measure: str = ACCURACY
            ) -> tuple[TrialState, list[float] | None, dict[str, Any]]:
    """The trial state, study values and attributes for a trainer's metrics. The trainer's
    ``val_accuracy`` (the trainer contract's key for what it measured) is stored as ``measure``:
    ``accuracy`` for a trained candidate, ``score`` for an estimated one (:mod:`effnas.nas.measure`)."""
    status = str(metrics.get("status", "failed"))
    acc = metrics.get("val_accuracy")
    if not isinstance(acc, int | float) or not math.isfinite(acc):
        acc = None
    attrs: dict[str, Any] = {"status": status, "train_seconds": metrics.get("train_seconds"),
                             "test_accuracy": metrics.get("test_accuracy")}
    if metrics.get("error"):
        attrs["error"] = str(metrics["error"])[:500]
    if metrics.get("proxy_score") is not None:  # a zero-cost proxy's raw score (effnas.experiments.estimators.proxy)
        attrs["proxy_score"] = float(metrics["proxy_score"])
    if status == "filtered":  # a pre-filter kept it from training: no value, not counted
        return TrialState.PRUNED, None, attrs
    if acc is None or status in ("failed", "oom", "diverged"):
        if status == "completed":
            attrs["status"] = "diverged"
        if attrs["status"] == "diverged" and "error" not in attrs:
            epoch = metrics.get("diverged_epoch")
            attrs["error"] = f"loss or {measure} not finite" + (f" at epoch {epoch}" if epoch is not None else "")
        return TrialState.FAIL, None, attrs
    c = float(costs[objective.cost_key])
    attrs.update({measure: float(acc)}, reward=objective.reward_of(float(acc), costs), w=objective.exponent(c),
                 target=objective.target)
    if objective.v:
        attrs.update(v=objective.v, target_params=objective.params_target)
    if status == "pruned":
        return TrialState.PRUNED, None, attrs
    return TrialState.COMPLETE, objective.values(float(acc), c, costs.get("params")), attrs


def evaluate_trial(cfg: SearchConfig, storage: BaseStorage | str | None, number: int, params: dict[str, Any],
                   trainer: TrainerFn, *, attrs: dict[str, Any] | None = None,
                   runtime: dict[str, Any] | None = None) -> TrialState:
    """Measure, maybe reject, train and tell trial ``number`` of ``cfg``'s study; its final state.

    Args:
        cfg: the search.
        storage: the study's storage: the object itself (in this process) or its URL (a Ray task
            opens it; None means ``cfg.storage``).
        number: the trial's number; the driver asked for it and ``params`` are its choices.
        trainer: ``trainer(config, *, on_epoch=None) -> metrics``.
        attrs: extra trial attributes (a Ray task's ``node`` and ``threads``).
        runtime: trainer keys that change how, not what, it computes (a Ray task's ``threads``).

    Raises:
        Whatever the trainer or the measurement raises, after marking the trial FAIL with
        ``status=error`` and the error (so the study stays consistent).
    """
    store = storage if isinstance(storage, BaseStorage) else open_storage(storage or cfg.storage)
    # The worker never samples: a RandomSampler only receives tell()'s after_trial call.
    study = optuna.load_study(study_name=cfg.study_name, storage=store, sampler=optuna.samplers.RandomSampler(),
                              pruner=make_pruner(cfg))
    trial_id = store.get_trial_id_from_study_id_trial_number(store.get_study_id_from_name(cfg.study_name), number)
    trial = optuna.trial.Trial(study, trial_id)
    try:
        return _evaluate(cfg, study, trial, params, trainer, attrs or {}, runtime or {})
    except Exception as e:  # not an outcome: recorded on the trial, then it stops the search
        if store.get_trial(trial_id).state == TrialState.RUNNING:
            trial.set_user_attr("status", "error")
            trial.set_user_attr("error", first_line(e, typed=True)[:500])
            study.tell(number, state=TrialState.FAIL)
        raise


def prepare(cfg: SearchConfig, params: dict[str, Any], *, trial: int = 0
            ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A candidate before training: its costs, its trial attributes and its trainer config.
    MBConv spaces build the network and measure it; benchmark spaces read the table (the trainer
    config's ``model`` is then the dict of choices, ``trial`` the trial number, which picks the
    table's training seed the search observes)."""
    if isinstance(cfg.space, CellSpace):
        costs = cfg.space.costs(params, cfg.dataset)
        attrs = {"strategy": cfg.strategy, "blocks": cfg.space.table(cfg.dataset).describe(params),
                 "spec": json.dumps(params, separators=(",", ":")), **costs}
        return costs, attrs, candidate_config(cfg, params, trial=trial)
    spec = cfg.spec(params)
    costs = measure(spec, cfg.objective)
    return costs, candidate_attrs(spec, costs, cfg.strategy), cfg.trainer_config(spec)


def candidate_config(cfg: SearchConfig, params: dict[str, Any], *, trial: int = 0) -> dict[str, Any]:
    """The trainer config of the candidate ``params`` (trial ``trial``), without measuring it: what
    :func:`prepare` hands the trainer, and what a re-evaluation trains again with another seed."""
    if isinstance(cfg.space, CellSpace):
        return {**cfg.train, "model": dict(params), "trial": trial}
    return cfg.trainer_config(cfg.spec(params))


def _evaluate(cfg: SearchConfig, study: optuna.Study, trial: optuna.Trial, params: dict[str, Any],
              trainer: TrainerFn, attrs: dict[str, Any], runtime: dict[str, Any]) -> TrialState:
    costs, cand_attrs, config = prepare(cfg, params, trial=trial.number)
    for k, v in {**cand_attrs, **attrs}.items():
        trial.set_user_attr(k, v)
    c = costs[cfg.objective.cost_key]
    if cfg.objective.rejects(c):
        trial.set_user_attr("status", "rejected")
        study.tell(trial, state=TrialState.PRUNED)
        return TrialState.PRUNED
    single = not cfg.objective.multi_objective

    def on_epoch(record: dict[str, Any]) -> bool:
        acc = record.get("val_accuracy")
        if not single or not isinstance(acc, int | float) or not math.isfinite(acc):
            return False
        epoch = int(record.get("epoch", 0))
        trial.report(cfg.objective.reward_of(acc, costs), epoch)
        # Stopping after the last epoch saves nothing: a finished candidate is never pruned.
        last = isinstance(config.get("epochs"), int) and epoch >= config["epochs"]
        return cfg.prune and not last and trial.should_prune()

    metrics = trainer({**config, **runtime}, on_epoch=on_epoch)
    state, values, out = outcome(cfg.objective, costs, metrics, cfg.measure)
    for k, v in out.items():
        trial.set_user_attr(k, v)
    study.tell(trial, values, state=state)
    return state


__all__ = ["candidate_attrs", "candidate_config", "evaluate_trial", "latency_table", "measure", "outcome",
           "predicted_latency", "prepare",
           "step_time", "verify_latency"]
