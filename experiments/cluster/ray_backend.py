"""Every call into Ray lives here (Ray's reporting API has changed several times).

Ray is started on loopback with exactly the CPUs we mean to use, or joins an existing cluster
with ``address``. Ray sets ``OMP_NUM_THREADS=1`` in workers, so each trial sets torch's thread
count from the CPUs it was given (:func:`set_threads_from_resources`).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from effnas.experiments.cluster.resources import cluster_gpus, trial_gpus
from effnas.scaling.runner import ExecutorFn, RunsStopped, TrainerFn
from effnas.search_spaces.errors import UserError, first_line, last_line

#: Ray resolves "127.0.0.1" to the machine's routable address unless this is "0" (then a
#: local Ray binds to loopback only). Read by ray at import time and inherited by its processes.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def use_loopback() -> None:
    """Make a local Ray (and any ``ray start`` run from this environment) bind to 127.0.0.1."""
    os.environ[LOOPBACK_ENV] = "0"
    try:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    except ImportError:  # pragma: no cover - ray is a dependency
        pass


def init_ray(*, num_cpus: int | None = None, address: str | None = None, num_gpus: float | None = None) -> bool:
    """Start a local Ray on 127.0.0.1 with ``num_cpus`` CPUs (and ``num_gpus``; ``None``: the GPUs
    Ray detects), or connect to ``address``.

    Returns True when this call started Ray (so the caller should shut it down)."""
    if not address:
        use_loopback()
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address:
        probe_address(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as e:  # Ray's errors of a failed connect
            raise UserError(f"cannot connect to the Ray cluster at {address!r}: {first_line(e)}; "
                             f"start one with 'ray start --head --node-ip-address 127.0.0.1'") from e
    else:
        if num_gpus is not None:
            kwargs["num_gpus"] = num_gpus
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
    return True


#: Seconds to wait for a Ray cluster's address to answer before giving up (env EFFNAS_RAY_TIMEOUT).
CONNECT_TIMEOUT = 30.0


def probe_address(address: str, timeout: float | None = None) -> None:
    """Fail within ``timeout`` seconds (default :data:`CONNECT_TIMEOUT`) when nothing listens at a
    ``HOST:PORT`` (or ``ray://HOST:PORT``) address: Ray itself retries a dead address for ever.
    ``auto`` and ``local`` are left to Ray (they read this machine's cluster file)."""
    import socket

    if timeout is None:
        try:
            timeout = float(os.environ.get("EFFNAS_RAY_TIMEOUT", CONNECT_TIMEOUT))
        except ValueError:
            timeout = CONNECT_TIMEOUT
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise UserError(f"Ray address {address!r} is not HOST:PORT: give e.g. 10.0.0.1:6379, or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError | socket.timeout) else (e.strerror or type(e).__name__)
        raise UserError(f"cannot reach the Ray cluster at {address!r} ({why}; waited up to {timeout:g} s): "
                         "start it with 'ray start --head --port PORT' or fix --ray-address") from e


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


@contextlib.contextmanager
def ray_session(*, num_cpus: int | None = None, address: str | None = None,
                num_gpus: float | None = None) -> Iterator[bool]:
    """Ray for the duration of a ``with`` block; stopped afterwards if this block started it.

    Yields whether it did (its shutdown then ends every task of the session)."""
    started = init_ray(num_cpus=num_cpus, address=address, num_gpus=num_gpus)
    try:
        yield started
    finally:
        if started:
            shutdown_ray()


def trial_cpus() -> int:
    """CPUs Ray assigned to the current trial (1 when not inside a Ray trial)."""
    import ray

    if not ray.is_initialized():
        return 1
    res = ray.get_runtime_context().get_assigned_resources()  # {} in a driver
    return max(1, int(res.get("CPU", 1)))


def set_threads_from_resources() -> int:
    """``torch.set_num_threads`` to the trial's CPUs (Ray defaults OMP threads to 1)."""
    import torch

    n = trial_cpus()
    torch.set_num_threads(n)
    return n


def enter_driver_cwd(cwd: str | None) -> None:
    """Run a trial in the driver's working directory when it exists on this node.

    Ray Tune starts function trials in their own trial directory, so relative paths in a config
    (``out_dir``, ``cifar10:data/...``) would silently land in, or be read from, Ray's temporary
    storage, and runs written there are lost for ``--resume``."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)


def node_id() -> str | None:
    """The Ray node this code runs on (None outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


class TaskPool:
    """Remote calls of one function as Ray tasks of ``num_cpus`` CPUs each, keyed by the caller.

    No retries: a task that raised, or whose worker died, is reported to the caller once. Use
    inside :func:`ray_session`.
    """

    def __init__(self, fn: Callable[..., Any], *, num_cpus: float, num_gpus: float = 0) -> None:
        import ray

        self._remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(fn)
        self._refs: dict[Any, Any] = {}  # ObjectRef -> key

    def __len__(self) -> int:
        return len(self._refs)

    def submit(self, key: Any, *args: Any) -> None:
        self._refs[self._remote.remote(*args)] = key

    def wait(self) -> list[tuple[Any, Any]]:
        """Block until at least one task ends: ``(key, result)`` for each that did.

        A task that raised re-raises here as Ray's ``RayTaskError``, which is also an instance
        of the original exception's class and carries the remote traceback; ``.cause`` is the
        original exception. A task whose worker or node died gives ``(key, error)`` with Ray's
        error as the result (a ``ray.exceptions.RayError``): the caller decides."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        ready, _ = ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                out.append((key, ray.get(ref)))
            except RayTaskError:
                raise
            except RayError as e:  # the worker process or its node died (e.g. killed for memory)
                out.append((key, e))
        return out

    def cancel(self) -> None:
        """Stop the tasks still running (their work is lost).

        Only tasks not yet finished are cancelled: Ray aborts the driver when a cancel races with
        the reply of a finished task (ray-project/ray#54798). A session that started Ray need not
        cancel at all (its shutdown ends the tasks): see :func:`ray_session`."""
        import ray

        refs = list(self._refs)
        if refs:
            _, pending = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in pending:
                ray.cancel(ref, force=True)
        self._refs.clear()


def report(metrics: dict[str, Any]) -> None:
    """Report metrics from inside a Tune trial."""
    from ray import tune

    tune.report({k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool) or v is None})


def _trial(config: dict[str, Any], *, trainer: TrainerFn, configs: list[dict[str, Any]], cwd: str) -> None:
    enter_driver_cwd(cwd)
    n = set_threads_from_resources()
    cfg = dict(configs[config["index"]])
    if not cfg.get("threads"):  # 0 (all cores) means the trial's CPUs under Ray, not the machine's
        cfg["threads"] = n

    def on_epoch(record: dict[str, Any]) -> bool:
        report({**record, "final": False})
        return False

    metrics = trainer(cfg, on_epoch=on_epoch)
    report({**metrics, "final": True, "index": config["index"]})


#: Times the trials of a dead node or worker are run again on the nodes left (env EFFNAS_NODE_RETRIES).
NODE_RETRIES = 2


def node_retries() -> int:
    """``EFFNAS_NODE_RETRIES`` (default :data:`NODE_RETRIES`): an integer >= 0."""
    text = os.environ.get("EFFNAS_NODE_RETRIES", str(NODE_RETRIES))
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise UserError(f"EFFNAS_NODE_RETRIES must be an integer >= 0, got {text!r}")
    return n


def lost_node_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors of a trial whose node or worker process went away (see :func:`node_lost`)."""
    from ray import exceptions as rx

    return (rx.RayActorError, rx.NodeDiedError, rx.WorkerCrashedError)


def node_lost(error: BaseException) -> bool:
    """Whether a Tune trial ended because its node or worker went away, and so is worth running
    again elsewhere: not when its actor could not even be created (``actor_init_failed``: a setup
    problem that would fail again) and not Ray's memory monitor's ``OutOfMemoryError``."""
    return isinstance(error, lost_node_errors()) and not getattr(error, "actor_init_failed", False)


def run_configs(
    trainer: TrainerFn,
    configs: list[dict[str, Any]],
    *,
    workers: int,
    address: str | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    name: str = "effnas",
) -> list[dict[str, Any]]:
    """Run ``trainer(config)`` for every config as Ray Tune trials, ``workers`` at a time.

    Returns the trainers' final metrics in the order of ``configs``. A trial that raised (bad
    data, a bug) stops the batch with its error, after every trial has ended (finished runs keep
    their result files). A trial whose node or worker process died is run again on the nodes
    left, resuming from its run directory's ``last.pt``, up to :data:`NODE_RETRIES` times.
    Starts (and stops) a local Ray on loopback with ``workers * cpus_per_trial`` CPUs unless
    ``address`` names a running cluster. Each trial asks
    for ``gpus_per_trial`` GPUs, resolved by :func:`effnas.experiments.cluster.resources.trial_gpus` from the
    configs' ``device`` and ``devices`` and the cluster's GPUs (a one-line ValueError before any
    trial starts when they cannot be had).
    """
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    if not configs:
        return []
    from ray import tune

    cpus = cpus_per_trial or max(1, (os.cpu_count() or 1) // workers)
    if not cpus > 0:
        raise UserError(f"cpus_per_trial must be > 0, got {cpus_per_trial}")
    retries = node_retries()
    # Absolute run directories: trials on other nodes (or in Tune's trial directory) write there.
    configs = [{**c, "out_dir": os.path.abspath(c["out_dir"])} if c.get("out_dir") else c for c in configs]
    with ray_session(num_cpus=None if address else math.ceil(workers * cpus), address=address):
        gpus = trial_gpus(gpus_per_trial, configs, available=cluster_gpus())
        out: list[dict[str, Any]] = [{"status": "failed", "error": "trial did not report"} for _ in configs]
        errors, user_errors = [], True
        pending: list[int] = list(range(len(configs)))
        lost: dict[int, str] = {}
        for attempt in range(1 + retries):
            if attempt:  # a node went away: can the nodes left still run one trial? (Tune would wait for ever)
                _check_fits(cpus, gpus, len(pending))
            # Again: the trials of a node that died, on the nodes left, from their last.pt.
            table = [{**c, "resume": True} if attempt and c.get("out_dir") else c for c in configs]
            results = _fit(tune, trainer, table, pending, cpus=cpus, gpus=gpus, workers=workers, name=name)
            asked, pending = pending, []
            for idx in asked:
                if idx not in results:  # Tune returned no result and no error for it
                    errors.append(f"{configs[idx].get('out_dir') or idx}: the Ray trial ended without a result")
                    user_errors = False
            for idx, (metrics, error) in results.items():
                if error is None:
                    out[idx] = metrics
                elif node_lost(error):  # the trial's node or worker went away
                    pending.append(idx)
                    lost[idx] = last_line(error)
                else:
                    errors.append(f"{configs[idx].get('out_dir') or idx}: {last_line(error)}")
                    # Ray re-raises a worker's error as an instance of its cause's class.
                    user_errors &= isinstance(error, ValueError | FileNotFoundError)
            if not pending:
                break
    if errors:
        kind = ValueError if user_errors else RuntimeError
        raise kind(f"{len(errors)} Ray trial(s) raised; the first: {errors[0]}")
    if pending:  # not a bug: the cluster kept losing nodes
        first = configs[pending[0]].get("out_dir") or pending[0]
        raise RunsStopped(f"{len(pending)} Ray trial(s) lost their node or worker {1 + retries} times (first: {first}: "
                          f"{lost[pending[0]]}); finished runs are kept: re-run with --resume once the cluster is "
                          "stable (EFFNAS_NODE_RETRIES sets the retries)")
    return out


def _check_fits(cpus: float, gpus: float, lost: int) -> None:
    import ray

    have = ray.cluster_resources()
    if have.get("CPU", 0) < cpus or have.get("GPU", 0) < gpus:
        raise RunsStopped(f"{lost} Ray trial(s) lost their node, and the nodes left cannot run a trial of {cpus:g} "
                          f"CPUs and {gpus:g} GPUs (the cluster has {have.get('CPU', 0):g} and {have.get('GPU', 0):g});"
                          " finished runs are kept: add nodes and re-run with --resume")


def _fit(tune: Any, trainer: TrainerFn, configs: list[dict[str, Any]], indexes: list[int], *, cpus: float,
         gpus: float, workers: int, name: str) -> dict[int, tuple[dict[str, Any], BaseException | None]]:
    """One Tune run of the trials ``indexes`` of ``configs``: each one's final metrics, or the
    error it ended with."""
    import ray

    trainable = tune.with_resources(
        tune.with_parameters(_trial, trainer=trainer, configs=configs, cwd=os.getcwd()), {"cpu": cpus, "gpu": gpus})
    with tempfile.TemporaryDirectory(prefix="effnas-ray-") as storage:
        tuner = tune.Tuner(
            trainable,
            param_space={"index": tune.grid_search(indexes)},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers),
            run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0),
        )
        try:
            grid = tuner.fit()
        except (ray.exceptions.RayError, RuntimeError) as e:  # Tune itself stopped, e.g. workers killed
            raise RunsStopped(f"the Ray trials stopped ({last_line(e)[:300]}); finished runs are kept: "
                              "re-run with --resume (with fewer --workers if memory ran out)") from e
        out: dict[int, tuple[dict[str, Any], BaseException | None]] = {}
        for i in range(len(grid)):
            result = grid[i]
            idx = int((result.config or {})["index"])
            if result.error is not None:
                out[idx] = ({}, result.error)
            elif result.metrics and result.metrics.get("final"):
                out[idx] = ({k: v for k, v in result.metrics.items()
                             if k not in {"final", "index"} and not _is_tune_key(k)}, None)
        return out


_TUNE_KEYS = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
              "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "config",
              "time_since_restore", "iterations_since_restore", "experiment_tag"}


def _is_tune_key(key: str) -> bool:
    return key in _TUNE_KEYS or key.startswith("config/")


def sequential(trainer: TrainerFn, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The default executor: one config after another, in this process."""
    return [trainer(c) for c in configs]


def executor(workers: int = 1, address: str | None = None, *, cpus_per_trial: float | None = None,
             gpus_per_trial: float | None = None) -> ExecutorFn:
    """The executor for ``workers`` / ``address``: sequential for 1 local worker, else Ray."""
    if workers <= 1 and not address:
        return sequential
    return lambda trainer, configs: run_configs(trainer, configs, workers=workers, address=address,
                                                cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
