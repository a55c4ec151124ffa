"""What a search is (:class:`SearchConfig`) and where it is recorded: one Optuna study.

The study's storage is the source of truth for every search path: the driver asks it for new
trials, the evaluation of a trial (:mod:`effnas.nas.trial`, in this process or in a Ray task) opens the
same storage and writes the trial's attributes, intermediate rewards and final state into it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from effnas.nas.benchmarks.cell_space import CellSpace
from effnas.nas.measure import measure_name
from effnas.nas.objective import Objective
from effnas.nas.pruning import DEFAULT_NOISE_FLOOR, ETA, PRUNERS, make
from effnas.nas.space import SearchSpace
from effnas.nas.strategies import make_sampler
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import DiskFull
from effnas.search_spaces.common.errors import UserError, first_line

TrainerFn = Callable[..., dict]
#: Trial states that count towards the requested number of trials.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: Statuses of trials that do not count: the process was killed (``interrupted``), the search
#: stopped on an error that is not a training outcome (``error``: a bug or a bad config), or a
#: pre-filter did not train the candidate (``filtered``, PRUNED; ``effnas.experiments.estimators.proxy``).
UNCOUNTED = ("interrupted", "error", "filtered")
#: Trainer keys the search sets per candidate (``train`` must not hold them).
CANDIDATE_KEYS = ("model", "resolution", "out_dir")


@dataclass(frozen=True)
class SearchConfig:
    """What to search, and the trainer config every candidate is trained with.

    Args:
        space, objective: the search space and the objective.
        strategy: ``random``, ``tpe``, ``nsga2``, ``evolution`` or ``rl``.
        trials: finished trials wanted in the study (a resumed study keeps its earlier ones).
        seed: seeds the sampler (the caller puts the candidates' training seed into ``train``).
        num_classes: classes of the data set (None: the space's).
        resolution: input pixels of every candidate (None: the space's).
        storage: an Optuna storage URL (``sqlite:///x.db``, any SQLAlchemy URL), a journal file
            (``*.journal`` / ``*.log`` or ``journal:PATH``) or None for in-memory (in-process only).
        study_name: the study within the storage.
        resume: continue an existing study (without it an existing study is an error).
        prune: stop weak candidates from their per-epoch reward with ``pruner`` (single-objective mode).
        pruner: ``noise_floor`` (median pruning that respects ``noise_floor``,
            :class:`effnas.nas.pruning.NoiseFloorPruner`), ``median`` (Optuna's MedianPruner), ``asha``
            (asynchronous successive halving, Optuna's SuccessiveHalvingPruner: rungs at 1, 3, 9, ... epochs,
            a trial goes on from a rung only in the top third of those that reached it) or ``hyperband``
            (Optuna's HyperbandPruner: brackets of successive halving from 1 epoch to the candidates'
            epochs, reduction factor 3); epochs are the resource. Only with ``prune``.
        population_size: NSGA-II / evolution population.
        train: the trainer config of every candidate, built by the caller: every trainer key
            (dataset, epochs, data_fraction, seed, optimiser, ...) except ``model``,
            ``resolution`` and ``out_dir``, which the search sets per candidate.
        max_failed_share: the search stops with an error once more than this share of
            ``trials`` has failed (status ``failed``, ``oom`` or ``diverged``); 1 never stops.
        train_defaults: the trainer's default config: a resumed study whose stored ``train``
            lacks a key (added to the trainer since) counts it with this value.
        noise_floor: the seed-to-seed standard deviation of a candidate's accuracy (a fraction)
            that pruning respects: a trial stops only when it is behind the median beyond it, and
            only once the median is beyond it above chance (:mod:`effnas.nas.pruning`).
        reevaluate: train the top ``reevaluate`` completed candidates again with another seed
            after the search and pick the winner by the mean of both runs
            (:mod:`effnas.nas.reevaluate`); 0: off.
    """

    space: SearchSpace | CellSpace
    objective: Objective
    strategy: str = "tpe"
    trials: int = 20
    seed: int = 0
    num_classes: int | None = None
    resolution: int | None = None
    storage: str | None = None
    study_name: str = "search"
    resume: bool = False
    prune: bool = True
    pruner: str = "noise_floor"
    population_size: int = 20
    train: dict[str, Any] = field(default_factory=dict)
    max_failed_share: float = 0.5
    train_defaults: dict[str, Any] = field(default_factory=dict)
    noise_floor: float = DEFAULT_NOISE_FLOOR
    reevaluate: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise UserError(f"trials must be a positive integer, got {self.trials!r}")
        if self.resolution is not None and self.resolution < 1:
            raise UserError(f"resolution must be a positive integer, got {self.resolution}")
        if not isinstance(self.train, dict):
            raise UserError(f"train must be a dict of trainer keys, got {type(self.train).__name__}")
        owned = [k for k in CANDIDATE_KEYS if k in self.train]
        if owned:
            raise UserError(f"train must not set {owned[0]!r}: the search sets it per candidate"
                             + (" (give the search's resolution instead)" if owned[0] == "resolution" else ""))
        if not isinstance(self.noise_floor, int | float) or isinstance(self.noise_floor, bool) \
                or not 0.0 <= self.noise_floor < 1.0:
            raise UserError(f"noise_floor must be a standard deviation of accuracy in [0, 1) (e.g. 0.02), got "
                             f"{self.noise_floor!r}")
        if isinstance(self.reevaluate, bool) or not isinstance(self.reevaluate, int) or self.reevaluate < 0:
            raise UserError(f"reevaluate must be an integer >= 0 (the top candidates trained again; 0: off), got "
                             f"{self.reevaluate!r}")
        if self.pruner not in PRUNERS:
            raise UserError(f"unknown pruner {self.pruner!r}: expected one of {', '.join(PRUNERS)}")
        if not self.prune and self.pruner != "noise_floor":
            raise UserError(f"pruner {self.pruner!r} stops candidates early, but pruning is off: drop --no-prune "
                             "or the pruner")
        if self.pruner != "noise_floor":
            where = ("a two-objective (pareto) search" if self.objective.multi_objective else
                     "a benchmark table's lookups (one step each)" if isinstance(self.space, CellSpace) else
                     "an estimator's scores (no epochs)" if measure_name(self.train) != "accuracy" else "")
            if where:
                raise UserError(f"pruner {self.pruner!r} stops training runs at epoch rungs, which {where} does not "
                                 "have: drop --pruner")
        if not 0.0 <= self.max_failed_share <= 1.0:
            raise UserError(f"max_failed_share must be in [0, 1], got {self.max_failed_share}")
        make_sampler(self.strategy, multi_objective=self.objective.multi_objective)  # validates the pair
        if isinstance(self.space, CellSpace):
            if self.objective.metric != "latency":
                raise UserError(f"space {self.space.name!r} is a table without MACs or networks to time: use latency "
                                 f"as the cost (--target-ms MS, search.cost = latency)")
            self.space.table(self.dataset)  # the data set must be one of the benchmark's

    @property
    def dataset(self) -> str:
        """The candidates' data set (``train["dataset"]``)."""
        return str(self.train.get("dataset", ""))

    @property
    def measure(self) -> str:
        """What a trial's value is: ``accuracy`` (trained) or ``score`` (a proxy or supernet estimate;
        :mod:`effnas.nas.measure`)."""
        return measure_name(self.train)

    @property
    def chance(self) -> float:
        """The accuracy of guessing: one over the candidates' classes (``num_classes``, else the
        space's; a benchmark table's data set)."""
        if isinstance(self.space, CellSpace):
            return 1.0 / self.space.table(self.dataset).num_classes
        return 1.0 / (self.num_classes or self.space.num_classes)

    def spec(self, params: dict[str, Any]) -> NetworkSpec:
        if isinstance(self.space, CellSpace):
            raise UserError(f"space {self.space.name!r} is a benchmark table: its candidates are not networks")
        return self.space.to_spec(params, num_classes=self.num_classes, resolution=self.resolution)

    def trainer_config(self, spec: NetworkSpec) -> dict[str, Any]:
        """The trainer config of candidate ``spec``: ``train`` plus its model and resolution."""
        return {**self.train, "model": spec.to_dict(), "resolution": spec.resolution}

    def settings(self) -> dict[str, Any]:
        """What a resumed study must agree on (JSON-able)."""
        pruner = {"pruner": self.pruner} if self.pruner != "noise_floor" else {}  # older studies resume as they were
        return _jsonable({"space": self.space.to_dict(), "objective": self.objective.to_dict(),
                          "resolution": self.resolution, "num_classes": self.num_classes, "train": self.train,
                          **pruner})


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x))


# -- storage and study ------------------------------------------------------------------------


#: SQLite's message for SQLITE_FULL (a full disk, or the database's page limit).
SQLITE_FULL = "database or disk is full"


def name_full_disk(engine: Engine, path: str) -> None:
    """A write to the SQLite file ``path`` that fails for want of space raises
    :class:`~effnas.search_spaces.common.atomic.DiskFull` naming ``path`` (SQLAlchemy and Optuna would
    report ``database or disk is full`` without a file)."""
    def full(ctx: ExceptionContext) -> None:
        if SQLITE_FULL in str(ctx.original_exception):
            raise DiskFull(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from ctx.original_exception

    event.listen(engine, "handle_error", full)


def open_storage(url: str | None) -> BaseStorage:
    """An Optuna storage for ``url``: an RDB URL, a journal file, or None (in memory)."""
    if url is None:
        return optuna.storages.InMemoryStorage()
    check_storage_file(url)
    try:
        if url.startswith("journal:") or url.endswith((".journal", ".log")):
            path = url.removeprefix("journal:")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(path))
        if "://" not in url:
            raise UserError("not a URL")
        storage = optuna.storages.RDBStorage(url)
        if url.startswith("sqlite:///"):
            name_full_disk(storage.engine, url.removeprefix("sqlite:///"))
        return storage
    except (SQLAlchemyError, OSError, ImportError, ValueError, RuntimeError,
            optuna.exceptions.StorageInternalError) as e:  # RuntimeError: Optuna's out-of-date RDB schema
        if url.startswith("sqlite:///") and SQLITE_FULL in str(e):
            raise DiskFull(errno.ENOSPC, os.strerror(errno.ENOSPC), url.removeprefix("sqlite:///")) from e
        # a bad URL or dialect, a missing driver, an unreachable server, an unwritable file: one line
        raise UserError(f"cannot open storage {url!r} ({first_line(e)}): give sqlite:///PATH.db, another "
                         f"SQLAlchemy URL, or a PATH.journal file") from e


#: The first bytes of every SQLite database file.
SQLITE_MAGIC = b"SQLite format 3\x00"


def storage_file(url: str) -> tuple[Path, str] | None:
    """The local file of a storage URL and its kind (``journal`` or ``sqlite``), or None (a server, memory)."""
    if url.startswith("journal:") or url.endswith((".journal", ".log")):
        return Path(url.removeprefix("journal:")), "journal"
    if url.startswith("sqlite:"):
        try:
            db = make_url(url).database
        except ArgumentError:
            return None  # a malformed URL: open_storage names it
        return (Path(db), "sqlite") if db and db != ":memory:" and not db.startswith("file:") else None
    return None


def _holds_optuna(path: Path, kind: str) -> str | None:
    """None when ``path`` is an Optuna storage file (or empty), else what it is instead. Reads only."""
    with open(path, "rb") as f:
        head = f.readline(1 << 16) if kind == "journal" else f.read(len(SQLITE_MAGIC))
    if not head:
        return None
    if kind == "journal":
        try:
            record = json.loads(head)
        except ValueError:
            return "its first line is not JSON"
        ok = isinstance(record, dict) and {"op_code", "worker_id"} <= set(record)
        return None if ok else "its first line is not an Optuna journal record"
    if head != SQLITE_MAGIC:
        return "it is not an SQLite database"
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as e:
        return f"SQLite cannot read it: {e}"
    return None if not tables or {"studies", "version_info"} <= tables else "its tables are not Optuna's"


def check_storage_file(url: str) -> None:
    """Refuse, before anything is written, a storage file that another program wrote: effnas writes
    only into storage files that are new, empty or already hold Optuna's studies."""
    found = storage_file(url)
    if found is None or not found[0].is_file():
        return
    path, kind = found
    try:
        what = _holds_optuna(path, kind)
    except OSError as e:
        raise UserError(f"cannot read storage file {str(path)!r} ({first_line(e)}): check its permissions") from e
    if what is not None:
        raise UserError(f"storage file {str(path)!r} holds no Optuna study ({what}): effnas writes only into storage "
                         f"files it created; give a new path (e.g. sqlite:///OUT/study.db or OUT/study.journal)")


def stored_objective(url: str | None, study_name: str) -> dict[str, Any] | None:
    """The objective study ``study_name`` in ``url`` was created with (its settings), or None when
    there is no such study. Opens nothing that does not exist yet."""
    found = storage_file(url) if url is not None else None
    if url is None or (found is not None and not found[0].is_file()):
        return None
    storage = open_storage(url)
    try:
        sid = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    return (storage.get_study_user_attrs(sid).get("settings") or {}).get("objective")


def make_pruner(cfg: SearchConfig) -> optuna.pruners.BasePruner:
    """The pruner of every search path (in process and in Ray workers, which share the study's storage):
    :func:`effnas.nas.pruning.make` with the search's settings."""
    return make(cfg.pruner, prune=cfg.prune, objective=cfg.objective, chance=cfg.chance, noise_floor=cfg.noise_floor,
                epochs=int(cfg.train.get("epochs") or 1))


def study_names(storage: BaseStorage) -> list[str]:
    """The names of the studies in ``storage``, sorted."""
    return sorted(s.study_name for s in optuna.get_all_study_summaries(storage))


def missing_study(name: str, url: str | None, names: list[str], *, fix: str) -> UserError:
    """The one-line error for a study ``name`` that ``url`` does not hold, listing those it does.

    >>> str(missing_study("serach", "sqlite:///o/study.db", ["search", "demo"], fix="give one of them as --study"))
    "no study 'serach' in sqlite:///o/study.db (it holds 'search', 'demo'): give one of them as --study"
    """
    shown = ", ".join(repr(n) for n in names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    holds = f"it holds {shown}" if names else "it holds no study"
    return UserError(f"no study {name!r} in {url} ({holds}): {fix}")


def open_study(cfg: SearchConfig, *, storage: BaseStorage | None = None,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Create the study, or load it with ``cfg.resume`` (checking it searches the same thing)."""
    storage = storage if storage is not None else open_storage(cfg.storage)
    names = study_names(storage)
    exists = cfg.study_name in names
    if exists and not cfg.resume:
        raise UserError(f"study {cfg.study_name!r} already exists in {cfg.storage}: pass --resume to continue "
                         f"it or choose another --study")
    if cfg.resume and not exists:
        fix = "give one of them as --study, or drop --resume to start it" if names else "drop --resume to start it"
        raise UserError(f"--resume: {missing_study(cfg.study_name, cfg.storage, names, fix=fix)}")
    if exists:
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, pruner=make_pruner(cfg))
        stored, now = study.user_attrs.get("settings"), cfg.settings()
        if stored is not None and isinstance(stored.get("train"), dict):  # keys added to the trainer since
            missing = {k: v for k, v in _jsonable(cfg.train_defaults).items()
                       if k in now["train"] and k not in stored["train"]}
            stored = {**stored, "train": {**missing, **stored["train"]}}
        if stored is not None and stored != now:
            key = _first_difference(stored, now)
            raise UserError(f"study {cfg.study_name!r} was created with a different {key}: resume it with the same "
                             f"space, objective, resolution and trainer settings")
    else:
        study = optuna.create_study(study_name=cfg.study_name, storage=storage, pruner=make_pruner(cfg),
                                    directions=cfg.objective.directions)  # type: ignore[arg-type]
        study.set_user_attr("settings", cfg.settings())
    if study.metric_names is None:  # a new study, or one created before effnas named its values
        with warnings.catch_warnings():  # set_metric_names is marked experimental since optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(cfg.objective.metric_names(cfg.measure))
    if sampler is None:
        # A fresh seed per (re)start, so a resumed random search does not replay its first draws.
        sampler = make_sampler(cfg.strategy, seed=cfg.seed + len(study.trials),
                               multi_objective=cfg.objective.multi_objective, population_size=cfg.population_size,
                               startup_trials=max(3, min(10, cfg.trials // 3)))
    study.sampler = sampler
    return study


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    """The first key (dotted) where two settings dicts differ: ``train.epochs``, ``objective``.

    >>> _first_difference({"train": {"epochs": 1, "seed": 0}}, {"train": {"epochs": 2, "seed": 0}})
    'train.epochs'
    """
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if x != y:
            if prefix == "" and k == "train" and isinstance(x, dict) and isinstance(y, dict):
                return _first_difference(x, y, "train.")
            return prefix + k
    return prefix.rstrip(".")


def recover(study: optuna.Study) -> int:
    """Mark trials a killed process left RUNNING as FAIL (``status=interrupted``); their count.

    A trial that finishes on its own while this runs (a worker that was still ending) keeps its state."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        try:
            study._storage.set_trial_user_attr(t._trial_id, "status", "interrupted")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        n += 1
    return n


def finished(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards the requested number (interrupted and errored ones do not)."""
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED)
            if t.user_attrs.get("status") not in UNCOUNTED]


__all__ = ["COUNTED", "ETA", "PRUNERS", "SearchConfig", "TrainerFn", "finished", "make_pruner", "missing_study",
           "open_storage", "open_study", "recover", "stored_objective", "study_names"]
