"""Checks before anything trains, and the locks of what is being written.

Every command calls these before its first trial, so bad input ends as one line
``effnas: error: ...`` (exit code 2) instead of a traceback, a hang or lost files:

* :func:`out_dir` / :func:`out_file`: an output path that can be written (no regular file on the
  way, a writable ancestor, components within the file system's name limit; ``-o`` not a
  directory, not a file the command did not create);
* :func:`check_memory`: a network at a resolution and batch whose activations fit in this
  machine's memory (estimated from :func:`effnas.search_spaces.counts`: every conv output, kept with
  its BatchNorm and activation outputs for the backward pass, 4 bytes each);
* :class:`Lock`: a lock file holding the writer's PID and host in a run directory (or next to a
  study's database); a second writer gets a one-line error naming the owner, and a lock left by a
  process that died on this host is taken over;
* :func:`safe_name` (from :mod:`search_spaces`): user text (spec names) as one path component.

Library code here raises ``UserError`` naming the problem and the fix.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from effnas.search_spaces import NetworkSpec, counts, safe_name
from effnas.search_spaces.common.errors import UserError

__all__ = ["LOCK_NAME", "Lock", "check_input", "check_memory", "memory_estimate", "out_dir", "out_file", "safe_name",
           "study_lock_path", "total_stride"]

#: Longest file-name component (bytes) on the file systems we write to.
NAME_MAX = 255
LOCK_NAME = ".effnas.lock"
#: Bytes kept per activation element in training: the conv output, its BatchNorm output and its
#: activation output (fp32) are saved for the backward pass.
TRAIN_BYTES_PER_ACTIVATION = 3 * 4
#: Share of the available memory a single run may plan to use.
MEMORY_SHARE = 0.8


# -- paths ---------------------------------------------------------------------------------------

def _check_components(path: Path, what: str) -> None:
    for part in path.parts:
        if len(part.encode()) > NAME_MAX:
            raise UserError(f"{what} {str(path)[:40]}...: the name {part[:24]!r}... is {len(part.encode())} bytes, "
                             f"longer than the file system's {NAME_MAX}: use a shorter name")


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not os.path.lexists(p):
        if p.parent == p:
            break
        p = p.parent
    return p


def out_dir(path: str | Path, what: str = "--out", *, create: bool = True) -> Path:
    """Check that directory ``path`` can be created and written (and create it).

    Raises:
        UserError: ``path`` or a parent is a regular file, the nearest existing parent is not
            writable, or a component is longer than the file system allows.
    """
    p = Path(path)
    if not str(path):
        raise UserError(f"{what} is empty: give a directory")
    _check_components(p, what)
    a = _existing_ancestor(p.absolute())
    if not a.is_dir():
        where = "is" if a == p.absolute() else f"is under {str(a)!r}, which is"
        raise UserError(f"{what} {str(p)!r} {where} a file, not a directory: choose another path")
    if not os.access(a, os.W_OK | os.X_OK):
        raise UserError(f"{what} {str(p)!r}: {str(a)!r} is not writable: choose a directory you can write to")
    if create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{what} {str(p)!r} cannot be created ({e.strerror}): choose another path") from e
    return p


def out_file(path: str | Path, what: str = "-o", *, accept: Any = None, protect: tuple[str | Path, ...] = ()) -> Path:
    """Check that file ``path`` can be written without losing anything: not a directory, not one
    of ``protect`` (e.g. the study database being read), and, when it exists, a file the command
    itself writes (``accept(path)`` is true), not a FIFO, socket or device (never opened). Creates
    the parent directory."""
    p = Path(path)
    if not str(path):
        raise UserError(f"{what} is empty: give a file path")
    _check_components(p, what)
    if p.is_dir():
        raise UserError(f"{what} {str(p)!r} is a directory: give a file path such as {str(p / 'spec.json')!r}")
    if os.path.exists(p) and not p.is_file():  # a FIFO or device: reading its head to check it would block
        raise UserError(f"{what} {str(p)!r} is not a regular file (a FIFO, socket or device): give a file path")
    for q in protect:
        if q and p.exists() and Path(q).exists() and os.path.samefile(p, q):
            raise UserError(f"{what} {str(p)!r} is the input {str(q)!r}: writing it would destroy it; "
                             "give another file")
    if p.exists() and accept is not None and not accept(p):
        raise UserError(f"{what} {str(p)!r} exists and was not written by effnas: move it away or give another file")
    a = _existing_ancestor(p.parent.absolute())
    if not a.is_dir():
        raise UserError(f"{what} {str(p)!r} is under {str(a)!r}, which is a file, not a directory: "
                         "choose another path")
    out_dir(p.parent, what)
    return p


def is_plot(path: Path) -> bool:
    """Whether ``path`` holds a PNG, PDF or SVG (a plot a command may redraw)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return head.startswith((b"\x89PNG", b"%PDF")) or b"<svg" in head or head.startswith(b"<?xml")


# -- memory --------------------------------------------------------------------------------------

def memory_estimate(spec: NetworkSpec, *, resolution: int | None = None, batch_size: int = 1,
                    eval_batch_size: int = 0, train: bool = True) -> int:
    """Bytes a run of ``spec`` needs at least: training keeps ``batch_size`` images' activations
    for the backward pass (plus weights, gradients and two optimiser/EMA copies); evaluation
    holds the largest layer of ``eval_batch_size`` images twice (input and output); a traced
    forward pass (``train=False``, as ``models show`` counts cost) every layer's output once."""
    c = counts(spec, resolution)
    res = c.resolution
    image = 3 * res * res * 4
    weights = c.params * 4
    need = 0
    if train:
        need = batch_size * (c.activations * TRAIN_BYTES_PER_ACTIVATION + image) + 4 * weights
    if eval_batch_size:
        need = max(need, eval_batch_size * (2 * c.peak_activation * 4 + image) + weights)
    if not train:  # a traced forward pass (cost counting) may hold every layer's output
        need = max(need, batch_size * (c.activations * 4 + image) + weights)
    return need


def available_memory(device: str = "cpu") -> int:
    """Bytes this run can use: the CUDA device's total memory, else the host's available memory."""
    if device.startswith("cuda"):
        import torch  # lazy: torch only to ask a GPU for its free memory (checks stay torch-free)

        if torch.cuda.is_available():
            return int(torch.cuda.get_device_properties(0).total_memory)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"


def total_stride(spec: NetworkSpec) -> int:
    """How many times the network downsamples its input (32 for EfficientNet-B0).

    >>> import effnas.search_spaces as ss
    >>> total_stride(ss.get("efficientnet_b0")), total_stride(ss.get("tiny"))
    (32, 16)
    """
    s = spec.stem_stride * (2 if spec.stem_pool else 1)
    for b in spec.stages:
        s *= b.stride
    return s


def check_input(spec: NetworkSpec, resolution: int | None = None, what: str = "") -> None:
    """Refuse an input smaller than the network's total stride: every later stage would see
    padding only (a 1-px image for B0)."""
    res = resolution or spec.resolution
    need = total_stride(spec)
    if res < need:
        raise UserError(f"{what or spec.name} downsamples its input {need}x: a {res} px input leaves nothing for "
                         f"its last stages; give a resolution of at least {need} px")


def check_memory(spec: NetworkSpec, *, resolution: int | None = None, batch_size: int = 1, eval_batch_size: int = 0,
                 train: bool = True, device: str = "cpu", what: str = "") -> int:
    """Refuse a network that cannot fit (or whose input is smaller than its total stride): one
    line with the estimate, the limit and the fix."""
    check_input(spec, resolution, what)
    need = memory_estimate(spec, resolution=resolution, batch_size=batch_size, eval_batch_size=eval_batch_size,
                           train=train)
    have = available_memory(device)
    if need > MEMORY_SHARE * have:
        res = resolution or spec.resolution
        how = f"training at batch {batch_size}" if train else "a forward pass"
        raise UserError(f"{what or spec.name} at {res} px needs about {_gb(need)} for {how} (estimated from its "
                         f"layer sizes), more than the {_gb(MEMORY_SHARE * have)} this machine can give "
                         f"({device}): lower the resolution or the batch size")
    return need


# -- locks ---------------------------------------------------------------------------------------

_HELD: dict[str, int] = {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def study_lock_path(storage: str | None, study: str) -> Path | None:
    """The lock file of a study in a SQLite or journal file (None for server databases, whose
    studies may be shared by design)."""
    if not storage:
        return None
    if storage.startswith("sqlite:///"):
        path = Path(storage.removeprefix("sqlite:///"))
    elif storage.startswith("journal:") or storage.endswith((".journal", ".log")):
        path = Path(storage.removeprefix("journal:"))
    else:
        return None
    return path.with_name(f".{safe_name(path.name)}.{safe_name(study)}.lock")


class Lock:
    """``with Lock(directory):`` holds ``directory/.effnas.lock`` (or the lock file ``file=``).

    The file holds ``{"pid", "host", "command", "started"}``. A second process gets a
    ``ValueError`` naming the owner; a lock whose PID is dead on this host is taken over. Nested
    use in one process is allowed (``effnas run`` holds its directory while stages lock theirs).
    """

    def __init__(self, directory: str | Path | None = None, *, file: str | Path | None = None,
                 what: str = "run directory") -> None:
        if file is None:
            if directory is None:
                raise UserError("Lock needs a directory or a file")
            file = Path(directory) / LOCK_NAME
        self.path = Path(file)
        self.what = what
        self.key = ""

    def owner(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _stale(self, owner: dict[str, Any] | None) -> bool:
        if owner is None:  # torn or foreign: stale once it is older than a few seconds
            try:
                return time.time() - self.path.stat().st_mtime > 5
            except OSError:
                return True
        if owner.get("host") != socket.gethostname():
            return False
        pid = owner.get("pid")
        if not isinstance(pid, int):
            return True
        return pid == os.getpid() or not _alive(pid)  # our own PID: a lock we no longer hold

    def acquire(self) -> Lock:
        self.key = str(self.path.absolute())
        if _HELD.get(self.key):
            _HELD[self.key] += 1
            return self
        out_dir(self.path.parent, self.what, create=self.path.name == LOCK_NAME)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv[1:3]) or "python",
                "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                fd = -1
            except OSError as e:  # e.g. a read-only or pseudo file system beside a study file
                raise UserError(f"cannot create the lock file {str(self.path)!r} ({e.strerror or type(e).__name__}): "
                                 f"put the {self.what} on a writable path") from e
            if fd < 0:
                owner = self.owner()
                if self._stale(owner):
                    self.path.unlink(missing_ok=True)  # a dead writer's lock: take it over
                    continue
                who = (f"PID {owner.get('pid')} on {owner.get('host')} ({owner.get('command')}, since "
                       f"{owner.get('started')})") if owner else "another process"
                raise UserError(f"{self.what} {str(self.path.parent)!r} is being written by {who}: wait for it to "
                                 f"finish or use another directory (if that process is gone, delete "
                                 f"{str(self.path)!r})") from None
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
            _HELD[self.key] = 1
            return self
        raise UserError(f"cannot take the lock {str(self.path)!r}: other processes keep taking it; retry")

    def release(self) -> None:
        n = _HELD.get(self.key, 0)
        if n > 1:
            _HELD[self.key] = n - 1
            return
        _HELD.pop(self.key, None)
        owner = self.owner()
        if owner is not None and owner.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
