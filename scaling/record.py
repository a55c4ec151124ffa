"""The run record: what a run directory is called, when its run is over, and which config keys
do not change what it computes. The one home of these rules for the job runner
(:mod:`effnas.scaling.runner`, ``result.json``) and the trainer's run directory
(:mod:`effnas.experiments.train.rundir`, ``metrics.json`` and checkpoints).

Directory names under a stage's output directory:

* grid candidates: ``candidates/a1.2-b1.1-g1.15-seed0`` (:func:`candidate_key`), and with
  successive halving the later rungs' ``candidates/rung1/a1.2-b1.1-g1.15-seed1``;
* family members: ``members/phi2-seed0`` (compound), ``official/phi2-seed0`` (the published
  table), ``baselines/width-phi2-seed0`` (single-dimension), ``<method>/<name>-seed0`` for any
  other method (:func:`member_key`);
* backbones: ``<network>-<method>-phi2-seed0`` (:func:`backbone_key`) under
  ``backbones/<backbone>/`` (:func:`backbone_dir`).

Every file is written with :func:`effnas.search_spaces.common.atomic.atomic_write` (fsync of the file
and of its directory).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from effnas.scaling.coefficients import Coefficients
from effnas.search_spaces import NetworkSpec, safe_name
from effnas.search_spaces.common.atomic import atomic_json
from effnas.search_spaces.common.errors import UserError, first_line

#: Statuses of a run that is over: a rerun with the same config returns it instead of training.
#: Only these outcomes follow from the config alone; ``failed`` and ``oom`` (the machine) and
#: ``pruned`` (the caller's ``on_epoch``, not part of the config) are trained again on resume.
FINISHED = ("completed", "diverged")
#: The status of a run that trained to its end: the only one whose accuracies are usable.
COMPLETED = "completed"
#: Config keys that do not change what a run computes (where and how fast it runs, and who watches:
#: streamed batches are the same with any number of loader workers or threads, docs/data.md); they
#: are ignored when a run directory's config is matched.
RUNTIME_KEYS = frozenset({"out_dir", "resume", "quiet", "threads", "loader_workers", "loader_threads", "track"})
#: The runner's record of a finished run: ``{"config": ..., "metrics": ...}``.
RESULT_FILE = "result.json"


def run_key(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the :data:`RUNTIME_KEYS`: what decides whether two runs are the same."""
    return {k: v for k, v in config.items() if k not in RUNTIME_KEYS}


def differing_key(stored: dict[str, Any], config: dict[str, Any],
                  defaults: dict[str, Any] | None = None) -> str | None:
    """The first key of ``config`` (runtime keys aside) whose ``stored`` value differs, or None.

    Keys only ``stored`` has (an executor added them, such as Ray's ``threads``) are ignored; a
    key ``stored`` lacks counts with its value in ``defaults`` (keys added to the trainer's schema
    after the run was written)."""
    for k, v in config.items():
        if k in RUNTIME_KEYS:
            continue
        old = stored[k] if k in stored else (defaults or {}).get(k)
        if json.dumps(old, sort_keys=True, default=str) != json.dumps(v, sort_keys=True, default=str):
            return k
    return None


def is_finished(metrics: dict[str, Any] | None) -> bool:
    """Whether ``metrics`` are those of a run that is over (:data:`FINISHED`)."""
    return metrics is not None and metrics.get("status") in FINISHED


def unreadable(path: str | Path, why: object) -> UserError:
    """The error of a run file that exists but cannot be read: it may hold a finished run, so
    nothing is cleared or overwritten on a guess (``why``: the exception or a few words)."""
    reason = first_line(why, typed=True) if isinstance(why, BaseException) else str(why)
    return UserError(f"unreadable: {path} ({reason[:160]}): repair it, or move it (or its run directory) away; "
                     "nothing was changed")


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """The stored ``{"config", "metrics"}`` of a run directory, or None when it has none.

    Raises:
        UserError: ``unreadable: FILE`` when ``result.json`` exists but is not such a record (it
            may be a finished run's: it is never treated as unfinished and overwritten).
    """
    p = Path(run_dir) / RESULT_FILE
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        raise unreadable(p, e) from e
    if not (isinstance(data, dict) and isinstance(data.get("metrics"), dict)
            and isinstance(data.get("config", {}), dict)):
        raise unreadable(p, "not a {\"config\", \"metrics\"} record")
    return data


def write_result(run_dir: str | Path, config: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Atomically write ``result.json``: the run's config and the metrics it returned."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    atomic_json(d / RESULT_FILE, {"config": config, "metrics": metrics}, indent=2, default=str)


# -- directory names -----------------------------------------------------------------------------

class Scaled(Protocol):
    """What names a member's run directory (:class:`effnas.scaling.family.Member` has it)."""

    @property
    def method(self) -> str: ...

    @property
    def phi(self) -> int: ...

    @property
    def spec(self) -> NetworkSpec: ...


def candidate_key(c: Coefficients, seed: int, rung: int = 0) -> str:
    """Run directory of a grid candidate: ``candidates/a1.2-b1.1-g1.15-seed0``; in rung 1 and later
    of successive halving ``candidates/rung1/a1.2-b1.1-g1.15-seed0`` (rung 0 is the one-rung grid's).

    >>> candidate_key(Coefficients(1.2, 1.1, 1.15), 1, rung=2)
    'candidates/rung2/a1.2-b1.1-g1.15-seed1'
    """
    where = f"candidates/rung{rung}" if rung else "candidates"
    return f"{where}/a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}-seed{seed}"


def member_key(m: Scaled, seed: int) -> str:
    """Run directory of a family member: ``members/phi2-seed0`` (compound), ``official/phi2-seed0``
    (the published table: beside the compound member of the same phi, not over it),
    ``baselines/width-phi2-seed0`` (single-dimension), ``<method>/<name>-seed0`` otherwise."""
    if m.method == "compound":
        return f"members/phi{m.phi}-seed{seed}"
    if m.method == "official":
        return f"official/phi{m.phi}-seed{seed}"
    if m.method in ("depth", "width", "resolution"):
        return f"baselines/{m.method}-phi{m.phi}-seed{seed}"
    return f"{safe_name(m.method)}/{safe_name(m.spec.name)}-seed{seed}"


def backbone_key(stem: str, m: Scaled, phi: float, seed: int) -> str:
    """Run directory of a scaled backbone network: ``resnet18-compound-phi2-seed0``, where ``stem``
    names the backbone's base network (sanitised here: it may be a spec file's user text)."""
    return f"{safe_name(stem)}-{m.method}-phi{phi}-seed{seed}"


def run_names(run_dirs: Sequence[str | None]) -> list[str]:
    """Short names of runs (Ray's trials'): each run directory's own name (``phi2-seed0``,
    ``width-phi2-seed0``, ``a1.2-b1.1-g1.15-seed0``), its parent's in front where two would be the
    same (``members-phi2-seed0``, ``official-phi2-seed0``), ``run3`` for a run without a directory.

    >>> run_names(["f/members/phi2-seed0", "f/official/phi2-seed0", "f/baselines/width-phi2-seed0", None])
    ['members-phi2-seed0', 'official-phi2-seed0', 'width-phi2-seed0', 'run3']
    """
    parts = [Path(d).parts[-2:] if d else () for d in run_dirs]
    own = [p[-1] if p else "" for p in parts]
    names = [n if own.count(n) == 1 else "-".join(p) for n, p in zip(own, parts, strict=True)]
    out = []
    for i, n in enumerate(names):
        if not n:
            out.append(f"run{i}")
        else:  # still the same (the runner refuses two runs of one directory): the position tells them apart
            out.append(n if names.count(n) == 1 else f"{n}-{i}")
    return out


def backbone_dir(name: str) -> str:
    """The directory of backbone ``name`` under ``backbones/``: a registered name as it is, a spec
    file by its stem (``specs/resnet18_0.25.json`` -> ``resnet18_0.25``)."""
    return safe_name(Path(name).stem if name.endswith(".json") else name)


__all__ = ["COMPLETED", "FINISHED", "RESULT_FILE", "RUNTIME_KEYS", "Scaled", "backbone_dir", "backbone_key",
           "candidate_key", "differing_key", "is_finished", "member_key", "read_result", "run_key", "run_names",
           "unreadable", "write_result"]
