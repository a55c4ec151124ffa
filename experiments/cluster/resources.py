"""What each trial asks the cluster for: CPUs and GPUs, decided before anything starts.

The rule for GPUs (``run.gpus_per_trial``; docs/gpu.md):

* ``train.device = "cpu"``: no GPU; asking for one is an error.
* ``gpus_per_trial`` not given: ``train.devices`` GPUs (one per data-parallel process) when the
  cluster (or, without Ray, this machine) has GPUs, else none (``auto`` then trains on CPUs,
  ``cuda`` is an error).
* ``gpus_per_trial = 0`` where GPUs exist, with ``device`` ``auto`` or ``cuda``: an error. A
  trial that asked for no GPU has none reserved: Ray 2.60 leaves ``CUDA_VISIBLE_DEVICES`` alone
  for it, so ``auto`` would train on GPUs other trials hold (out of memory), and older Ray (or
  ``RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1``) hides them, so it would silently train on the CPU.
  Say ``train.device = "cpu"`` to mean CPUs.
* GPUs asked for where the cluster has none, or more than it has: an error (Ray would wait
  forever).
* ``train.devices = N > 1`` processes need ``N`` GPUs per trial (one each) when on GPUs.

Fractions (``0.5``) pack several single-device trials on one GPU: Ray gives each the same
``CUDA_VISIBLE_DEVICES`` and the trainer's ``device = "auto"`` picks that GPU.
"""

from __future__ import annotations

from typing import Any

import torch

from effnas.search_spaces.common.errors import UserError


def gpus_per_trial(requested: float | None, *, device: str, devices: int, available: float) -> float:
    """The GPUs each trial requests, or a one-line ValueError naming the fix.

    >>> gpus_per_trial(None, device="auto", devices=1, available=0)
    0.0
    >>> gpus_per_trial(None, device="auto", devices=2, available=8)
    2.0
    >>> gpus_per_trial(0.5, device="auto", devices=1, available=1)
    0.5
    """
    if device == "cpu":
        if requested:
            raise UserError(f"run.gpus_per_trial = {requested:g} with train.device = 'cpu': set train.device = "
                             "auto (or cuda) to train on the GPUs, or leave run.gpus_per_trial unset")
        return 0.0
    where = f"the cluster has {available:g} GPU(s)"
    if requested is None:
        if available <= 0:
            if device == "cuda":
                raise UserError("train.device = 'cuda' but the cluster has no GPU: use train.device = auto or "
                                 "cpu, or add GPU nodes to the cluster")
            return 0.0
        requested = float(devices)
    if requested == 0:
        if available > 0 or device == "cuda":
            raise UserError(f"run.gpus_per_trial = 0 with train.device = {device!r} where {where}: trials "
                             "would not get a GPU; set train.device = cpu to train on CPUs, or run.gpus_per_trial > 0")
        return 0.0
    if available <= 0:
        raise UserError(f"run.gpus_per_trial = {requested:g} but the cluster has no GPU: set run.gpus_per_trial "
                         "= 0 and train.device = cpu, or start Ray on GPU nodes (docs/gpu.md)")
    if requested > available:
        raise UserError(f"run.gpus_per_trial = {requested:g} but {where}: lower run.gpus_per_trial (or "
                         "train.devices), or add GPUs")
    if devices > 1 and requested != devices:
        raise UserError(f"train.devices = {devices} processes need run.gpus_per_trial = {devices} (one GPU each), "
                         f"got {requested:g}")
    return float(requested)


def local_gpus() -> int:
    """CUDA devices visible to this process."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cluster_gpus() -> float:
    """GPUs of the running Ray cluster (call inside :func:`effnas.experiments.cluster.ray_session.ray_session`)."""
    import ray  # lazy: Ray is slow to import; only Ray runs need it

    return float(ray.cluster_resources().get("GPU", 0.0))


def trial_gpus(requested: float | None, configs: list[dict[str, Any]], *, available: float) -> float:
    """:func:`gpus_per_trial` for trainer configs (every config of a batch trains on the same
    ``device`` with the same ``devices``; a config without ``device`` is not a torch trainer's and
    needs no GPU)."""
    first = configs[0] if configs else {}
    return gpus_per_trial(requested, device=str(first.get("device", "cpu")), devices=int(first.get("devices", 1)),
                          available=available)


def check_local(requested: float | None, device: str, devices: int) -> None:
    """The same rule for runs in this process (no Ray): GPUs asked for must exist here."""
    gpus_per_trial(requested, device=device, devices=devices, available=local_gpus())
