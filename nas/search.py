"""The search driver: one Optuna study as the source of truth, trials run in-process.

For each trial: the strategy's sampler picks the choices, the candidate's params, MACs (and
latency when that is the cost) are computed *before* training and stored as trial attributes
with its block strings and full spec JSON; a candidate that breaks a hard constraint is
rejected (trial state PRUNED, ``status=rejected``) without training; otherwise the trainer
(``trainer(config, *, on_epoch=None) -> metrics``, docs/architecture.md) trains it briefly and
every epoch's reward is reported to Optuna's pruner (single-objective mode), which can stop it.
Failed and diverged candidates are recorded as FAIL with their status and the study goes on.

A study is resumable: trials left RUNNING by a killed process are marked FAIL
(``status=interrupted``) and not counted, and the search runs until ``trials`` trials have
finished (COMPLETE, PRUNED, or FAIL for a candidate's own failure). Resuming assumes no other
process is working on the same study at the time.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from nas.cell_space import CellSpace
from nas.objective import Objective
from nas.space import SearchSpace
from nas.strategies import make_sampler
from search_spaces import NetworkSpec, build, encode_block
from search_spaces.cost import count_params, macs, measure_latency

TrainerFn = Callable[..., dict]
#: Trial states that count towards the requested number of trials.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class SearchConfig:
    """What to search and how to evaluate a candidate.

    Args:
        space, objective: the search space and the objective.
        strategy: ``random``, ``tpe``, ``nsga2``, ``evolution`` or ``rl``.
        trials: finished trials wanted in the study (a resumed study keeps its earlier ones).
        dataset, epochs, resolution, data_fraction, seed: the trainer config of every candidate
            (MnasNet trained each one 5 epochs on a proxy split; ``resolution`` None: the space's).
        num_classes: classes of the data set (None: the space's).
        storage: an Optuna storage URL (``sqlite:///x.db``, any SQLAlchemy URL), a journal file
            (``*.journal`` / ``*.log`` or ``journal:PATH``) or None for in-memory.
        study_name: the study within the storage.
        resume: continue an existing study (without it an existing study is an error).
        prune: stop weak candidates from their per-epoch reward (single-objective mode).
        population_size: NSGA-II / evolution population.
        train_options: extra trainer config keys (optimizer, lr, batch size, ...).
    """

    space: SearchSpace | CellSpace
    objective: Objective
    strategy: str = "tpe"
    trials: int = 20
    dataset: str = "digits"
    epochs: int = 1
    resolution: int | None = None
    data_fraction: float = 1.0
    seed: int = 0
    num_classes: int | None = None
    storage: str | None = None
    study_name: str = "search"
    resume: bool = False
    prune: bool = True
    population_size: int = 20
    train_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"trials must be a positive integer, got {self.trials!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.resolution is not None and self.resolution < 1:
            raise ValueError(f"resolution must be a positive integer, got {self.resolution}")
        if not 0.0 < self.data_fraction <= 1.0:
            raise ValueError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
        make_sampler(self.strategy, multi_objective=self.objective.multi_objective)  # validates the pair
        if isinstance(self.space, CellSpace):
            if self.objective.metric == "macs":
                raise ValueError(f"space {self.space.name!r} is a table without MACs: use latency as the cost "
                                 f"(--target-ms MS)")
            self.space.table(self.dataset)  # the data set must be one of the benchmark's

    def spec(self, params: dict[str, Any]) -> NetworkSpec:
        if isinstance(self.space, CellSpace):
            raise ValueError(f"space {self.space.name!r} is a benchmark table: its candidates are not networks")
        return self.space.to_spec(params, num_classes=self.num_classes, resolution=self.resolution)

    def prepare(self, params: dict[str, Any], *, trial: int = 0
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """A candidate before training: its costs, its trial attributes (without ``strategy``) and
        the trainer config. MBConv spaces build the network and measure it; benchmark spaces read
        the table (the trainer config's ``model`` is then the dict of choices, ``trial`` the
        trial number, which picks the table's training seed the search observes)."""
        import json

        if isinstance(self.space, CellSpace):
            costs = self.space.costs(params, self.dataset)
            attrs = {"blocks": self.space.table(self.dataset).describe(params),
                     "spec": json.dumps(params, separators=(",", ":")), **costs}
            config = {**self.train_options, "model": dict(params), "dataset": self.dataset, "epochs": self.epochs,
                      "seed": self.seed, "trial": trial, "out_dir": None, "resume": False}
            return costs, attrs, config
        spec = self.spec(params)
        costs = measure(spec, self.objective)
        attrs = candidate_attrs(spec, costs, "")
        attrs.pop("strategy")
        return costs, attrs, self.trainer_config(spec)

    def trainer_config(self, spec: NetworkSpec) -> dict[str, Any]:
        return {**self.train_options, "model": spec.to_dict(), "dataset": self.dataset,
                "resolution": spec.resolution, "epochs": self.epochs, "seed": self.seed,
                "data_fraction": self.data_fraction, "out_dir": None, "resume": False}

    def settings(self) -> dict[str, Any]:
        """What a resumed study must agree on."""
        return {"space": self.space.to_dict(), "objective": self.objective.to_dict(), "dataset": self.dataset,
                "epochs": self.epochs, "resolution": self.resolution, "data_fraction": self.data_fraction}


# -- storage and study ------------------------------------------------------------------------


def open_storage(url: str | None) -> BaseStorage:
    """An Optuna storage for ``url``: an RDB URL, a journal file, or None (in memory)."""
    if url is None:
        return optuna.storages.InMemoryStorage()
    try:
        if url.startswith("journal:") or url.endswith((".journal", ".log")):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = url.removeprefix("journal:")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(path))
        if "://" not in url:
            raise ValueError("not a URL")
        return optuna.storages.RDBStorage(url)
    except Exception as e:  # SQLAlchemy/OS errors of many kinds: one line for the user
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot open storage {url!r} ({reason}): give sqlite:///PATH.db, another "
                         f"SQLAlchemy URL, or a PATH.journal file") from None


def open_study(cfg: SearchConfig, *, storage: BaseStorage | None = None,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Create the study, or load it with ``cfg.resume`` (checking it searches the same thing)."""
    storage = storage if storage is not None else open_storage(cfg.storage)
    exists = cfg.study_name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if exists and not cfg.resume:
        raise ValueError(f"study {cfg.study_name!r} already exists in {cfg.storage}: pass --resume to continue "
                         f"it or choose another --study")
    if cfg.resume and not exists:
        raise ValueError(f"--resume: no study {cfg.study_name!r} in {cfg.storage}: drop --resume to start it")
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
        if cfg.prune and not cfg.objective.multi_objective else optuna.pruners.NopPruner())
    if exists:
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, pruner=pruner)
        stored = study.user_attrs.get("settings")
        if stored is not None and stored != _jsonable(cfg.settings()):
            diff = sorted(k for k in stored if stored.get(k) != _jsonable(cfg.settings()).get(k))
            raise ValueError(f"study {cfg.study_name!r} was created with a different {diff[0]}: resume it with "
                             f"the same --space/--target-macs/--w/--constraint/--objective/--epochs/--dataset")
    else:
        study = optuna.create_study(study_name=cfg.study_name, storage=storage, pruner=pruner,
                                    directions=cfg.objective.directions)  # type: ignore[arg-type]
        study.set_user_attr("settings", _jsonable(cfg.settings()))
    if sampler is None:
        # A fresh seed per (re)start, so a resumed random search does not replay its first draws.
        sampler = make_sampler(cfg.strategy, seed=cfg.seed + len(study.trials),
                               multi_objective=cfg.objective.multi_objective, population_size=cfg.population_size,
                               startup_trials=max(3, min(10, cfg.trials // 3)))
    study.sampler = sampler
    return study


def _jsonable(x: Any) -> Any:
    import json

    return json.loads(json.dumps(x))


def recover(study: optuna.Study) -> int:
    """Mark trials a killed process left RUNNING as FAIL (``status=interrupted``); their count."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_user_attr(t._trial_id, "status", "interrupted")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        n += 1
    return n


def finished(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards the requested number (interrupted ones do not)."""
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED)
            if t.user_attrs.get("status") != "interrupted"]


# -- one candidate ------------------------------------------------------------------------------


def measure(spec: NetworkSpec, objective: Objective) -> dict[str, Any]:
    """Params, MACs and (when the objective's cost is latency) batch-1 latency in ms.

    MACs are traced with one torch thread: a batch-1 trace gains nothing from more, and on a
    busy 2-core machine two threads made it 6x slower (0.55 s vs 0.09 s for the tiny space).
    """
    import torch

    model = build(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out: dict[str, Any] = {"params": count_params(model), "macs": macs(spec), "latency_ms": None}
    finally:
        torch.set_num_threads(threads)
    if objective.metric == "latency":
        out["latency_ms"] = measure_latency(model, spec.resolution, batch=1)[0]
    return out


def candidate_attrs(spec: NetworkSpec, costs: dict[str, Any], strategy: str) -> dict[str, Any]:
    """Trial attributes known before training: enough to rebuild the candidate (``effnas export``)."""
    import json

    d = spec.to_dict()
    d["stages"] = [encode_block(s) for s in spec.stages]
    return {"strategy": strategy, "blocks": " ".join(d["stages"]), "spec": json.dumps(d, separators=(",", ":")),
            **costs}


def outcome(objective: Objective, costs: dict[str, Any], metrics: dict[str, Any]
            ) -> tuple[TrialState, list[float] | None, dict[str, Any]]:
    """The trial state, study values and attributes for a trainer's metrics."""
    status = str(metrics.get("status", "failed"))
    acc = metrics.get("val_accuracy")
    if not isinstance(acc, int | float) or not math.isfinite(acc):
        acc = None
    ok = acc is not None
    attrs: dict[str, Any] = {"status": status, "train_seconds": metrics.get("train_seconds"),
                             "test_accuracy": metrics.get("test_accuracy")}
    if metrics.get("error"):
        attrs["error"] = str(metrics["error"])[:500]
    if not ok or status in ("failed", "diverged"):
        if status == "completed":
            attrs["status"] = "diverged"
        return TrialState.FAIL, None, attrs
    assert acc is not None
    c = float(costs[objective.cost_key])
    attrs.update(accuracy=float(acc), reward=objective.reward(float(acc), c), w=objective.exponent(c),
                 target=objective.target)
    if status == "pruned":
        return TrialState.PRUNED, None, attrs
    return TrialState.COMPLETE, objective.values(float(acc), c), attrs


def evaluate(cfg: SearchConfig, trial: optuna.Trial, trainer: TrainerFn, strategy: str) -> TrialState:
    """Sample, measure, maybe reject, train and tell one trial."""
    study = trial.study
    costs, attrs, config = cfg.prepare(cfg.space.sample(trial), trial=trial.number)
    for k, v in {"strategy": strategy, **attrs}.items():
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
        trial.report(cfg.objective.reward(acc, c), int(record.get("epoch", 0)))
        return cfg.prune and trial.should_prune()

    try:
        metrics = trainer(config, on_epoch=on_epoch)
    except Exception as e:  # a candidate's failure must not end the study
        trial.set_user_attr("status", "failed")
        trial.set_user_attr("error", f"{type(e).__name__}: {e}"[:500])
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    state, values, attrs = outcome(cfg.objective, costs, metrics)
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    study.tell(trial, values, state=state)
    return state


# -- the loop ----------------------------------------------------------------------------------


def best_reward(study: optuna.Study) -> float | None:
    rewards = [t.user_attrs["reward"] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if "reward" in t.user_attrs]
    return max(rewards) if rewards else None


class Progress:
    """One line per finished trial on stderr: trials done, best reward so far, ETA."""

    def __init__(self, total: int, done: int, *, stream: Any = None) -> None:
        self.total, self.start_done, self.t0 = total, done, time.perf_counter()
        self.stream = stream if stream is not None else sys.stderr

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None, done: int) -> None:
        ran = done - self.start_done
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / ran * (self.total - done) if ran > 0 else float("nan")
        best = best_reward(study)
        last = ""
        if trial is not None:
            a = trial.user_attrs
            last = (f"trial {trial.number} {a.get('strategy', '')} {a.get('status', trial.state.name.lower())}"
                    + (f" acc {a['accuracy']:.4f} reward {a['reward']:.4f}" if "reward" in a else "")
                    + f" MACs {a.get('macs', 0) / 1e6:.2f}M")
        print(f"[{done}/{self.total}] {last} | best reward {best if best is None else round(best, 4)} | "
              f"ETA {_fmt_eta(eta)}", file=self.stream, flush=True)


def _fmt_eta(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def run_search(cfg: SearchConfig, trainer: TrainerFn, *, study: optuna.Study | None = None,
               progress: Callable[[optuna.Study, FrozenTrial | None, int], None] | None = None) -> optuna.Study:
    """Run trials in this process until ``cfg.trials`` have finished; returns the study.

    >>> from nas import Objective, SearchConfig, SurrogateTrainer, get_space
    >>> cfg = SearchConfig(get_space("tiny"), Objective(target=2e6), strategy="random", trials=3)
    >>> study = run_search(cfg, SurrogateTrainer(seed=0), progress=lambda *a: None)
    >>> len(finished(study))
    3
    """
    study = study if study is not None else open_study(cfg)
    recover(study)
    done = len(finished(study))
    progress = progress if progress is not None else Progress(cfg.trials, done)
    while done < cfg.trials:
        trial = study.ask()
        evaluate(cfg, trial, trainer, cfg.strategy)
        done = len(finished(study))
        progress(study, study.get_trials(deepcopy=False)[trial.number], done)
    return study
