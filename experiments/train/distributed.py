"""One network across several devices: DistributedDataParallel launched by effnas itself.

``train.devices = N`` makes :func:`effnas.experiments.train.loop.train` call :func:`launch` (with
itself as the function to run), which starts ranks ``1..N-1`` as ``python -m
effnas.experiments.train.rank JOB.json`` child processes (:mod:`effnas.experiments.train.rank`) and
runs rank 0 in the calling process (so a search's ``on_epoch`` pruning callback, a Ray trial's
reporting and the returned metrics work exactly as for one device). The processes meet on a TCP
store on 127.0.0.1 and train with NCCL on GPUs (rank ``r`` on ``cuda:r`` of the GPUs this process
sees: a Ray trial's ``CUDA_VISIBLE_DEVICES``) or gloo on CPUs. The same entry point works under
``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), for one
run across several nodes.

What each rank does (:class:`Context`): every optimiser step takes the next ``batch_size`` images
of the epoch's seeded permutation (the same on every rank, so a resumed run sees the same order),
cut into ``devices x accumulate`` micro-batches; rank ``r`` computes micro-batches
``r*accumulate .. (r+1)*accumulate - 1``. DDP averages the gradients across ranks at the last
micro-batch (``no_sync`` before it); the loss is divided by ``accumulate``, so the update is that
of the mean loss over the global batch. Rank 0 alone writes the run directory (config,
checkpoints, EMA, ``epochs.jsonl``, ``metrics.json``); every rank reads ``last.pt`` on resume
(the run directory must be on storage all nodes see) and restores its own RNG state.
Why not Ray Train's ``TorchTrainer``: docs/gpu.md.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from effnas.experiments.train.rundir import METRICS, RunDir
from effnas.search_spaces.common.errors import UserError

if TYPE_CHECKING:
    from effnas.experiments.config.schema import JobConfig

#: How long rank 0 waits for the other ranks to start, and a collective for a slow rank.
START_TIMEOUT = datetime.timedelta(seconds=180)
STEP_TIMEOUT = datetime.timedelta(minutes=10)
#: A rank > 0 whose run ended with a training outcome (``oom``, ``failed``) writes its metrics here.
OUTCOME_FILE = "rank{rank}.json"
#: The store key each rank > 0 increments once connected (rank 0 watches it and the processes).
JOINED = "effnas/joined"


def active() -> bool:
    """Whether this process is a rank of an initialised process group."""
    return dist.is_available() and dist.is_initialized()


class Context:
    """This process's place in the run: ``rank`` of ``world`` (1: no process group)."""

    def __init__(self, world: int = 1, rank: int = 0, local_rank: int = 0) -> None:
        self.world, self.rank, self.local_rank = world, rank, local_rank

    @classmethod
    def current(cls, devices: int) -> Context:
        if not active():
            return cls()
        world = dist.get_world_size()
        if world != devices:
            raise UserError(f"train.devices = {devices} but {world} processes were started: start "
                             f"{devices} (torchrun --nproc-per-node) or set train.devices = {world}")
        return cls(world, dist.get_rank(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))

    @property
    def lead(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: ``cuda:local_rank`` on GPUs."""
        if device.type != "cuda" or self.world == 1:
            return device
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def wrap(self, model: nn.Module, device: torch.device, *, sync_bn: bool = False) -> nn.Module:
        """``model`` in DistributedDataParallel (parameters and buffers broadcast from rank 0);
        with ``sync_bn`` its BatchNorm layers become SyncBatchNorm first (in place: the same
        parameters and buffers, so checkpoints and the EMA copy are unchanged)."""
        if self.world == 1:
            return model
        if sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)  # buffers broadcast from rank 0 each forward

    def no_sync(self, model: nn.Module, sync: bool) -> AbstractContextManager[Any]:
        """No gradient all-reduce for a micro-batch that is not the step's last."""
        if sync or self.world == 1 or not hasattr(model, "no_sync"):
            return nullcontext()
        return model.no_sync()  # type: ignore[operator,no-any-return]

    def shard(self, n: int) -> torch.Tensor:
        """This rank's share of ``n`` evaluation images (every ``world``-th)."""
        return torch.arange(self.rank, n, self.world)

    def sum(self, *values: torch.Tensor) -> list[torch.Tensor]:
        """Each tensor summed over the ranks (one all-reduce)."""
        if self.world == 1:
            return list(values)
        # NCCL reduces CUDA tensors, gloo CPU ones; the values may live on either
        on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        flat = torch.stack([v.detach().to(on, torch.float64).reshape(()) for v in values])
        dist.all_reduce(flat)
        return [flat[i].to(v.device, v.dtype) for i, v in enumerate(values)]

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def sync_state(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers (BatchNorm statistics) on every rank, before evaluating."""
        if self.world == 1:
            return
        for t in module.state_dict().values():
            if t.is_floating_point() or t.dtype == torch.long:
                dist.broadcast(t, src=0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


#: The trainer :func:`launch` runs as rank 0 (:func:`effnas.experiments.train.loop.train`).
TrainFn = Callable[..., dict[str, Any]]
#: The module each rank > 0 runs (``python -m RANK_MODULE JOB.json``).
RANK_MODULE = "effnas.experiments.train.rank"


def launch(train: TrainFn, cfg: JobConfig, *, device: torch.device, on_epoch: Any = None) -> dict[str, Any]:
    """``train(cfg, on_epoch=on_epoch)`` on ``cfg.devices`` processes of this machine; rank 0's metrics
    (this process is rank 0; the others run :data:`RANK_MODULE`).

    Raises:
        UserError: more processes than visible GPUs.
        RuntimeError: another rank crashed (its exit code and the tail of its log).
    """
    world = cfg.devices
    if device.type == "cuda" and torch.cuda.device_count() < world:
        raise UserError(f"train.devices = {world} needs {world} GPUs, {torch.cuda.device_count()} visible: lower "
                         "train.devices, or give the trial more (run.gpus_per_trial)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="effnas-ddp-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({**cfg.to_dict(), "quiet": True}))
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
               "EFFNAS_DDP_DIR": tmp}
        procs = []
        for rank in range(1, world):
            log = open(Path(tmp) / f"rank{rank}.log", "wb")  # noqa: SIM115 - closed below
            procs.append((rank, log, subprocess.Popen(
                [sys.executable, "-m", RANK_MODULE, str(job)],
                env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, stdout=log, stderr=subprocess.STDOUT)))
        try:
            store = dist.TCPStore("127.0.0.1", port, world, is_master=True, timeout=START_TIMEOUT,
                                  wait_for_workers=False)
            _wait_for_ranks(store, procs, Path(tmp))
            dist.init_process_group(backend(device), store=store, rank=0, world_size=world, timeout=STEP_TIMEOUT)
            try:
                metrics = train(cfg, on_epoch=on_epoch)
                dist.barrier()  # nobody tears the group down while another rank still uses it
            except Exception:
                other = _rank_outcome(Path(tmp), procs)
                if other is None:
                    raise
                metrics = other  # a rank ran out of memory: rank 0 only saw its peer leave
                if cfg.out_dir:
                    RunDir(cfg.out_dir).write_json(METRICS, metrics)
            finally:
                dist.destroy_process_group()
        except BaseException:
            _wait(procs, timeout=0)  # the others would wait for rank 0 in a collective: stop them now
            raise
        codes = _wait(procs)
        bad = [(r, c) for r, c in codes if c not in (0, 3)]
        if bad and metrics["status"] not in ("oom", "failed"):  # else the others just saw rank 0 leave
            rank, code = bad[0]
            raise RuntimeError(f"rank {rank} of {world} exited with code {code}: {_tail(Path(tmp), rank)}")
    return metrics


def _wait_for_ranks(store: dist.TCPStore, procs: list[tuple[int, Any, subprocess.Popen[bytes]]],
                    tmp: Path) -> None:
    """Until every other rank has joined the store; a rank that exits first is an error now (not
    after the timeout)."""
    deadline = time.monotonic() + START_TIMEOUT.total_seconds()
    while store.add(JOINED, 0) < len(procs):
        for rank, _, p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"rank {rank} exited with code {p.returncode} before joining: {_tail(tmp, rank)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the other ranks did not start within {START_TIMEOUT.total_seconds():.0f} s")
        time.sleep(0.1)


def _tail(tmp: Path, rank: int) -> str:
    return " | ".join((tmp / f"rank{rank}.log").read_text(errors="replace").strip().splitlines()[-5:])


def _wait(procs: list[tuple[int, Any, subprocess.Popen[bytes]]], timeout: float = 60) -> list[tuple[int, int]]:
    """Exit codes of the other ranks, killed after ``timeout`` seconds."""
    codes = []
    for rank, log, p in procs:
        try:
            code = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            code = p.wait()
        log.close()
        codes.append((rank, code))
    return codes


def _rank_outcome(tmp: Path, procs: list[tuple[int, Any, subprocess.Popen[bytes]]]) -> dict[str, Any] | None:
    """The first training outcome another rank recorded (after it exits), or None."""
    for rank, _, p in procs:
        try:
            p.wait(timeout=10)  # a rank that recorded an outcome exits at once
        except subprocess.TimeoutExpired:
            continue
        f = tmp / OUTCOME_FILE.format(rank=rank)
        if f.is_file():
            data = json.loads(f.read_text())
            return data if isinstance(data, dict) else None
    return None


@contextmanager
def process_group(backend_: str) -> Iterator[None]:
    """Join the group named by ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (the store
    is rank 0's, or torchrun's agent's)."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    host = rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=host,
                          timeout=START_TIMEOUT, wait_for_workers=False)
    store.add(JOINED, 1)
    dist.init_process_group(backend_, store=store, rank=rank, world_size=world, timeout=STEP_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()
