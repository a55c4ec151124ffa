"""Ray's session: started on loopback with exactly the CPUs we mean to use, or joined at an
``address`` that is checked first (Ray itself retries a dead address for ever); and what a
trial needs inside it (its CPUs, the driver's working directory, its node).

Ray sets ``OMP_NUM_THREADS=1`` in workers, so each trial sets torch's thread count from the CPUs
it was given (:func:`set_threads_from_resources`). Ray's trials run through
:mod:`effnas.experiments.cluster.ray_backend`, its tasks through :mod:`effnas.experiments.cluster.tasks`.

Ray is quiet by default (``run.verbose`` / ``--verbose`` brings its own output back): no start-up
lines, no token or usage-stats notice, Ray's own log records from WARNING up only
(:func:`ray_env`, :func:`init_kwargs`, :func:`quiet_records`; Tune's tables and result paths:
:func:`effnas.experiments.cluster.ray_backend.tune_env`). What the trials themselves print
(warnings, a worker's traceback) reaches the console in both modes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from effnas.search_spaces.common.errors import UserError, first_line
from effnas.search_spaces.common.extras import needs, require

#: Every trial's lines on the console, not "[repeated 2x across cluster]" plus Ray's notice about it:
#: Ray reads this when it is imported (lazily, after this module), so it is set here; a value the user
#: set stays.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

#: Ray resolves "127.0.0.1" to the machine's routable address unless this is "0" (then a
#: local Ray binds to loopback only). Read by ray at import time and inherited by its processes.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


#: ``needs``/``require``'s arguments where a Ray session starts (``effnas[ray]``).
NEEDS_RAY = ("ray", "running trials on Ray (run.workers > 1 or run.ray_address)",
             "set run.workers = 1 (--workers 1) to train in this process")


def require_ray(workers: int, address: str | None) -> None:
    """Before anything runs: ``workers > 1`` or a cluster ``address`` need Ray installed."""
    if address:
        require("ray", f"run.ray_address = {address!r}", "drop run.ray_address to train in this process")
    elif workers > 1:
        require("ray", f"run.workers = {workers} (--workers)", "set run.workers = 1 (--workers 1) to train "
                "in this process")


def use_loopback() -> None:
    """Make a local Ray (and any ``ray start`` run from this environment) bind to 127.0.0.1."""
    os.environ[LOOPBACK_ENV] = "0"
    try:
        from ray._private import ray_constants  # lazy: Ray is slow to import; only Ray runs need it

        ray_constants.ENABLE_RAY_CLUSTER = False
    except ImportError:  # no Ray here (effnas[ray]): nothing of it to configure
        pass


def ray_env(*, verbose: bool) -> dict[str, str]:
    """Environment variables for a Ray session this process starts (or joins).

    Both modes: ``RAY_COLOR_PREFIX=0`` when the console is not a terminal (no colour codes before
    the trials' lines in a log file; ``RAY_DEDUP_LOGS=0`` is set on import). Quiet (not ``verbose``)
    adds ``RAY_USAGE_STATS_ENABLED=0`` (no usage-stats notice). Applied with :func:`env_defaults`: a
    variable the user set stays as it is.

    >>> ray_env(verbose=False)["RAY_USAGE_STATS_ENABLED"], "RAY_USAGE_STATS_ENABLED" in ray_env(verbose=True)
    ('0', False)
    """
    env: dict[str, str] = {}
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        env["RAY_COLOR_PREFIX"] = "0"
    if not verbose:
        env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


#: Ray's log records (their first words) that a quiet session drops: ray.init's notice of the token
#: authentication it turns on for a new local cluster, and Tune's records of a trial's error, which
#: :func:`effnas.experiments.cluster.ray_backend.run_configs` raises itself with the worker's
#: traceback (or runs the trial again when its node went away).
QUIET_RECORDS = ("Token authentication is enabled for this Ray cluster", "Trial task failed for trial",
                 "Trials did not complete")


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(QUIET_RECORDS)


@contextlib.contextmanager
def quiet_records(quiet: bool = True) -> Iterator[None]:
    """Without Ray's :data:`QUIET_RECORDS` on the console for the duration of a ``with`` block (when
    ``quiet``): a filter on the handlers of Ray's logger (every ``ray.*`` record goes through them)."""
    handlers = list(logging.getLogger("ray").handlers) if quiet else []
    flt = _Quiet()
    for h in handlers:
        h.addFilter(flt)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(flt)


def init_kwargs(*, verbose: bool) -> dict[str, Any]:
    """``ray.init``'s output settings: no dashboard; the trials' own output (stdout, stderr: warnings,
    a worker's traceback) to the console; Ray's own log records from INFO (``verbose``: Ray's
    default) or from WARNING up (quiet: no start-up lines, warnings and errors still shown).

    >>> init_kwargs(verbose=False)["logging_level"] == logging.WARNING
    True
    """
    return {"include_dashboard": False, "log_to_driver": True, "configure_logging": True,
            "logging_level": logging.INFO if verbose else logging.WARNING}


@contextlib.contextmanager
def env_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with those of ``values`` it does not have (a variable the user set stays) for
    the duration of a ``with`` block; removed again afterwards."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def init_ray(*, num_cpus: int | None = None, address: str | None = None, num_gpus: float | None = None,
             verbose: bool = False) -> bool:
    """Start a local Ray on 127.0.0.1 with ``num_cpus`` CPUs (and ``num_gpus``; ``None``: the GPUs
    Ray detects), or connect to ``address``; quiet unless ``verbose`` (:func:`init_kwargs`; the
    environment of :func:`ray_env` must be in place: :func:`ray_session` does that).

    Returns True when this call started Ray (so the caller should shut it down)."""
    if not address:
        use_loopback()
    import ray  # lazy: Ray is slow to import; only Ray runs need it

    if ray.is_initialized():
        return False
    kwargs = init_kwargs(verbose=verbose)
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
    ``HOST:PORT`` (or ``ray://HOST:PORT``) address, and within :data:`ANSWER_TIMEOUT` when what
    listens there does not answer like gRPC: Ray itself retries such addresses for minutes (20
    attempts of ``RAY_py_gcs_connect_timeout_s``, read when Ray starts, so not ours to set).
    ``auto`` and ``local`` are left to Ray (they read this machine's cluster file)."""
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
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as conn:
            answer = _grpc_answer(conn, min(timeout, ANSWER_TIMEOUT))
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError | socket.timeout) else (e.strerror or type(e).__name__)
        raise UserError(f"cannot reach the Ray cluster at {address!r} ({why}; waited up to {timeout:g} s): "
                         "start it with 'ray start --head --port PORT' or fix --ray-address") from e
    if answer is None:
        raise UserError(f"{address!r} accepts connections but does not answer like a Ray cluster (no reply within "
                         f"{min(timeout, ANSWER_TIMEOUT):g} s): give the Ray head's GCS port (ray start --head --port "
                         "PORT) in --ray-address")
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS cluster answers a plaintext preface with an alert: Ray's own handshake decides
    if len(answer) < 9 or answer[3] != HTTP2_SETTINGS:
        raise UserError(f"{address!r} answers but is not a Ray cluster (not gRPC): give the Ray head's GCS port "
                         "(ray start --head --port PORT) in --ray-address")


#: Seconds a Ray address that accepted the connection has to answer (a gRPC server does so at once).
ANSWER_TIMEOUT = 10.0
#: The HTTP/2 client preface and an empty SETTINGS frame: every gRPC server (Ray's GCS, the Ray
#: Client server) answers them with its own SETTINGS frame (RFC 9113, section 3.4).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
HTTP2_SETTINGS = 0x04


def _grpc_answer(conn: socket.socket, timeout: float) -> bytes | None:
    """The first bytes (a frame header, 9 bytes) ``conn`` answers the HTTP/2 preface with; None when
    it says nothing within ``timeout`` seconds (Ray would retry such an address for minutes)."""
    conn.settimeout(timeout)
    try:
        conn.sendall(HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            chunk = conn.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
        return head
    except TimeoutError:
        return None


def shutdown_ray() -> None:
    import ray  # lazy: Ray is slow to import; only Ray runs need it

    if ray.is_initialized():
        ray.shutdown()


@contextlib.contextmanager
def ray_session(*, num_cpus: int | None = None, address: str | None = None,
                num_gpus: float | None = None, verbose: bool = False) -> Iterator[bool]:
    """Ray for the duration of a ``with`` block; stopped afterwards if this block started it,
    quiet unless ``verbose`` (a running Ray is used as it is).

    Yields whether it did (its shutdown then ends every task of the session). The environment
    (:func:`ray_env`) and the level of Ray's logger are put back afterwards."""
    with needs(*NEEDS_RAY):
        import ray  # lazy: Ray is slow to import; only Ray runs need it

    if ray.is_initialized():
        yield False
        return
    level = logging.getLogger("ray").level  # ray.init sets it for the whole process
    with env_defaults(ray_env(verbose=verbose)), quiet_records(not verbose):
        started = init_ray(num_cpus=num_cpus, address=address, num_gpus=num_gpus, verbose=verbose)
        try:
            yield started
        finally:
            if started:
                shutdown_ray()
            logging.getLogger("ray").setLevel(level)


def trial_cpus() -> int:
    """CPUs Ray assigned to the current trial (1 when not inside a Ray trial)."""
    import ray  # lazy: Ray is slow to import; only Ray runs need it

    if not ray.is_initialized():
        return 1
    res = ray.get_runtime_context().get_assigned_resources()  # {} in a driver
    return max(1, int(res.get("CPU", 1)))


def set_threads_from_resources() -> int:
    """``torch.set_num_threads`` to the trial's CPUs (Ray defaults OMP threads to 1)."""
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
    import ray  # lazy: Ray is slow to import; only Ray runs need it

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
