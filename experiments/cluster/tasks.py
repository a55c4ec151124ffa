"""Ray tasks of one function, keyed by the caller (the search's trials:
:mod:`effnas.experiments.cluster.search_ray`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Seconds :meth:`TaskPool.cancel` waits for cancelled tasks to end.
CANCEL_WAIT = 10.0


class TaskPool:
    """Remote calls of one function as Ray tasks of ``num_cpus`` CPUs each, keyed by the caller.

    No retries: a task that raised, or whose worker died, is reported to the caller once. Use
    inside :func:`ray_session`.
    """

    def __init__(self, fn: Callable[..., Any], *, num_cpus: float, num_gpus: float = 0) -> None:
        import ray  # lazy: Ray is slow to import; only Ray runs need it

        self._remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(fn)
        self._refs: dict[Any, Any] = {}  # ObjectRef -> key

    def __len__(self) -> int:
        return len(self._refs)

    def submit(self, key: Any, *args: Any, name: str | None = None) -> None:
        """Run the function on ``args`` as a task named ``name`` (Ray's name of its worker's output
        lines and in its state API; default: the function's)."""
        remote = self._remote.options(name=name) if name else self._remote
        self._refs[remote.remote(*args)] = key

    def wait(self) -> list[tuple[Any, Any]]:
        """Block until at least one task ends: ``(key, result)`` for each that did.

        A task that raised re-raises here as Ray's ``RayTaskError``, which is also an instance
        of the original exception's class and carries the remote traceback; ``.cause`` is the
        original exception. A task whose worker or node died gives ``(key, error)`` with Ray's
        error as the result (a ``ray.exceptions.RayError``): the caller decides."""
        import ray  # lazy: Ray is slow to import; only Ray runs need it
        from ray.exceptions import RayError, RayTaskError  # lazy: Ray is slow to import; only Ray runs need it

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
        import ray  # lazy: Ray is slow to import; only Ray runs need it

        refs = list(self._refs)
        if refs:
            _, pending = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in pending:
                ray.cancel(ref, force=True)
            # A cancel only asks: wait until the killed tasks are gone, so none of them writes to the
            # study after the driver returned (a resume would race with a dying task's last write).
            if pending:
                ray.wait(pending, num_returns=len(pending), timeout=CANCEL_WAIT)
        self._refs.clear()
