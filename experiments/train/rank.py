"""The entry point of one rank of a data-parallel run: ``python -m effnas.experiments.train.rank JOB.json``.

Started by :func:`effnas.experiments.train.distributed.launch` for ranks ``1..N-1`` (rank 0 is the
launching process), or by ``torchrun`` for every rank of a run across nodes (docs/gpu.md).
``JOB.json`` is a :class:`~effnas.experiments.config.schema.JobConfig`; ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` name the process group. Exit code 3: the run ended with a
training outcome (``oom``, ``failed``), written for rank 0 to report.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist

from effnas.experiments.config.schema import JobConfig
from effnas.experiments.train.devices import device_for
from effnas.experiments.train.distributed import OUTCOME_FILE, RANK_MODULE, process_group
from effnas.experiments.train.loop import train


def main(argv: list[str] | None = None) -> int:
    """Train the job of ``argv[0]`` as the rank the environment names; the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {RANK_MODULE} JOB.json  (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)",
              file=sys.stderr)
        return 2
    cfg = JobConfig.from_dict(json.loads(Path(args[0]).read_text()), source=args[0])
    use_cuda = device_for(cfg).type == "cuda"
    with process_group("nccl" if use_cuda else "gloo"):
        metrics = train(cfg)
        dist.barrier()
    rank = int(os.environ["RANK"])
    if metrics["status"] in ("oom", "failed") and os.environ.get("EFFNAS_DDP_DIR"):
        (Path(os.environ["EFFNAS_DDP_DIR"]) / OUTCOME_FILE.format(rank=rank)).write_text(json.dumps(metrics))
        return 3
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: gloo's threads have aborted it (SIGABRT) after a clean run
