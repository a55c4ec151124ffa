"""Where a result came from: package versions, the machine, the device, the code revision.

Every function is cheap and side-effect free: versions are read from installed package metadata
(``ray`` is never imported), the device from ``torch.cuda``. Used by the report and by commands that
store results (a run directory records ``provenance()`` next to its numbers).

>>> p = provenance(seeds={"run": 0})
>>> sorted(p) == ["device", "git", "machine", "seeds", "time_utc", "versions"]
True
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

#: Distributions whose versions matter for reproducing a number.
PACKAGES = ("effnas", "torch", "optuna", "ray", "fvcore", "numpy", "pandas", "scipy", "matplotlib", "kornia")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """``{"python": "3.11.7", "effnas": "0.1.0", "torch": ..., ...}``; ``None`` when not installed."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask where the OS has one, else ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """Platform, processor, CPU counts and the Python implementation."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpus_usable": cpu_count(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def device() -> dict[str, Any]:
    """The compute device torch would use: CUDA name and count when present, else CPU threads."""
    info: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info.update(device="cuda", cuda=torch.version.cuda, gpus=torch.cuda.device_count(),
                    gpu_name=torch.cuda.get_device_name(0))
    else:
        info.update(device="cpu", cuda=None, gpus=0, gpu_name=None)
    return info


def git_revision(path: str | Path | None = None) -> str | None:
    """``<commit>`` or ``<commit>+dirty`` of the effnas checkout, ``None`` outside git."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(*, seeds: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything above in one JSON-serialisable dict, stamped with the UTC time."""
    return {
        "time_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": machine(),
        "device": device(),
        "git": git_revision(),
        "seeds": dict(seeds or {}),
    }
