"""Training img/s with 1 and 2 torch threads, interleaved in one process: the evidence behind the
default of ``train.threads`` (``effnas.experiments.config.threads``, docs/training.md).

    OMP_NUM_THREADS=1 python bench/threads.py --threads 1,2 --rounds 4

Two measurements per thread count, alternated round by round (the order flips every round) so
that a change in the machine's load hits every thread count alike:

* ``step``: training steps (forward, label-smoothed cross-entropy, backward, SGD) of a model on
  random data, channels_last fp32 as the trainer runs on CPU: ``tiny`` at 32 px batch 128 (the
  proxy regime) and ``efficientnet_b0`` at 32 px batch 64 (a B0-sized network on small images);
* ``trainer``: one epoch of the real trainer (``effnas.experiments.train.loop.train``) of
  ``tiny`` on ``digits`` (32 px, batch 128), its ``images_per_second``.

The header and footer record the load average before and after (``os.getloadavg``) and the
share of CPU time the whole machine spent idle during the run (``/proc/stat``): numbers are only
comparable within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import effnas.search_spaces as ss  # noqa: E402
from effnas.experiments.config.schema import JobConfig  # noqa: E402
from effnas.experiments.train.loop import train  # noqa: E402

#: (model, resolution, batch) of the ``step`` measurements.
MODELS = (("tiny", 32, 128), ("efficientnet_b0", 32, 64))


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of the whole machine since boot (Linux; (0, 0) elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return fields[3] + fields[4], sum(fields)  # idle + iowait


class Steps:
    """Training steps of one model on a fixed random batch."""

    def __init__(self, name: str, resolution: int, batch: int) -> None:
        torch.manual_seed(0)
        spec = ss.load_spec(name, num_classes=10, resolution=resolution)
        self.label, self.batch = f"{name} {resolution}px b{batch}", batch
        self.model = ss.build(spec).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        self.x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (batch,))

    def step(self) -> None:
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y, label_smoothing=0.1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def img_s(self, steps: int) -> float:
        self.step()  # warm-up at this thread count
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return self.batch * steps / (time.perf_counter() - t0)


def trainer_img_s(threads: int) -> float:
    m = train(JobConfig(model="tiny", dataset="digits", epochs=1, batch_size=128, threads=threads,
                        quiet=True))  # no out_dir: nothing written, nothing tracked
    return float(m["images_per_second"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per model, thread count and round")
    args = p.parse_args(argv)
    counts = [int(t) for t in args.threads.split(",") if t.strip()]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# {platform.machine()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
          f"python {platform.python_version()}; load average at start {load}")
    steps = [Steps(*m) for m in MODELS]
    trainer_img_s(1)  # the digits set loads once per process, outside the timed rounds
    rates: dict[tuple[str, int], list[float]] = {}
    idle0, total0 = cpu_times()
    for r in range(args.rounds):
        for t in counts if r % 2 == 0 else counts[::-1]:
            torch.set_num_threads(t)
            for s in steps:
                rates.setdefault((s.label, t), []).append(s.img_s(args.steps))
            rates.setdefault(("trainer: tiny digits 32px b128, 1 epoch", t), []).append(trainer_img_s(t))
        print(f"#   round {r + 1}/{args.rounds}, load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    idle1, total1 = cpu_times()
    idle = (idle1 - idle0) / max(total1 - total0, 1)
    print(f"# load average at end {' / '.join(f'{x:.2f}' for x in os.getloadavg())}; machine idle "
          f"{idle:.0%} of the CPU time during the run")
    base = counts[0]
    print(f"| measurement | threads | median img/s | per round | x {base} thread(s), per round |")
    print("|---|---:|---:|---|---|")
    for (label, t), xs in rates.items():
        ratio = ", ".join(f"{a / b:.2f}" for a, b in zip(xs, rates[(label, base)], strict=True))
        print(f"| {label} | {t} | {statistics.median(xs):,.0f} | {', '.join(f'{x:,.0f}' for x in xs)} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
