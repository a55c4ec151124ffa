"""Training and inference throughput of a registered model, per execution variant.

    python bench/train_throughput.py --model efficientnet_b0 --resolution 224 --batch-size 16
    python bench/train_throughput.py --model tiny --resolution 32 --batch-size 128   # proxy regime

Variants, each measured in the same run on a fresh model with the same seed:

* ``eager_nchw``     eager fp32, contiguous (NCHW) tensors: the baseline (ratio 1.00)
* ``channels_last``  eager fp32, channels_last model and input: **the trainer's default on CPU**
* ``bf16``           channels_last under ``torch.autocast(dtype=bfloat16)`` (the trainer's CUDA default
                     where the GPU supports bf16)
* ``fp16``           channels_last under ``torch.autocast(dtype=float16)`` with a GradScaler (CUDA
                     only; the trainer's CUDA default on GPUs without bf16)
* ``compile``        channels_last, ``torch.compile(model)`` (compile time reported apart)

A training step is forward + label-smoothed cross-entropy + backward + SGD step on random
data; inference is a forward under ``torch.inference_mode`` in eval mode. The variants are
timed in interleaved rounds (each round: one warm-up step, then ``--steps`` timed steps per
phase, for every variant in turn), so that a change in machine load during the run hits all
variants alike; throughput is the batch divided by the median step time. Peak memory is the
tensor memory of one step beyond what existed before it: ``torch.cuda.max_memory_allocated``
on CUDA, the running sum of the profiler's allocation events on CPU. The header records
machine, torch version, thread count and load average: numbers are comparable within one
run, which is why every variant reports its ratio to ``eager_nchw``.

Measured on the project machine (2-core AMD EPYC, AVX-512 with bf16, torch 2.13.0 CPU): see
``docs/training.md`` for the tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch.profiler import ProfilerActivity, profile

import effnas.search_spaces as ss  # noqa: E402
from effnas.experiments.train.threads import set_threads  # noqa: E402
from effnas.search_spaces.cost import cost, default_device  # noqa: E402

VARIANTS = ("eager_nchw", "channels_last", "bf16", "fp16", "compile")


def peak_memory(fn: Callable[[], Any], device: torch.device) -> float:
    """Peak bytes of tensor memory allocated during one call of ``fn`` (beyond what existed before).

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the running sum of the profiler's per-op
    allocation and free events (``profile_memory=True``), in time order.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated() - base)

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    running = peak = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += e.self_cpu_memory_usage
        peak = max(peak, running)
    return float(peak)


class Variant:
    """One execution variant of the model: its own model copy, optimiser, input and step functions."""

    def __init__(self, name: str, spec: ss.NetworkSpec, *, batch: int, device: torch.device) -> None:
        self.name, self.batch, self.device = name, batch, device
        torch.manual_seed(0)
        fmt = torch.contiguous_format if name == "eager_nchw" else torch.channels_last
        self.model = ss.build(spec).to(device).to(memory_format=fmt)  # type: ignore[call-overload]
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name)
        self.autocast: AbstractContextManager[Any] = (
            torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext())
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
        self.run_model = torch.compile(self.model) if name == "compile" else self.model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        self.x = torch.randn(batch, 3, spec.resolution, spec.resolution, device=device).contiguous(memory_format=fmt)
        self.y = torch.randint(0, spec.num_classes, (batch,), device=device)
        self.times: dict[str, list[float]] = {"train": [], "infer": []}
        self.memory: dict[str, float] = {}
        self.compile_s: float | None = None

    def train_step(self) -> None:
        self.model.train()
        with self.autocast:
            loss = F.cross_entropy(self.run_model(self.x).float(), self.y, label_smoothing=0.1)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:  # fp16: the trainer's GradScaler path
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            return
        loss.backward()
        self.opt.step()

    def infer_step(self) -> None:
        self.model.eval()
        with torch.inference_mode(), self.autocast:
            self.run_model(self.x)

    def prepare(self) -> None:
        """Compile (timed) and measure peak memory, outside the timed rounds."""
        t0 = time.perf_counter()
        self.train_step()
        self.infer_step()
        if self.name == "compile":
            self.compile_s = time.perf_counter() - t0
        self.memory = {"train": peak_memory(self.train_step, self.device),
                       "infer": peak_memory(self.infer_step, self.device)}

    def round(self, steps: int) -> None:
        cuda = self.device.type == "cuda"
        for phase, fn in (("train", self.train_step), ("infer", self.infer_step)):
            fn()  # warm-up after the other variants ran
            for _ in range(steps):
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn()
                if cuda:
                    torch.cuda.synchronize()
                self.times[phase].append(time.perf_counter() - t0)

    def img_s(self, phase: str) -> float:
        return self.batch / statistics.median(self.times[phase])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="efficientnet_b0", help="a registered model name or a spec .json")
    p.add_argument("--resolution", type=int, default=None, help="input pixels (default: the model's own)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--variants", default=",".join(v for v in VARIANTS if v != "fp16"),
                   help=f"comma-separated subset of {', '.join(VARIANTS)} (fp16: CUDA only)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the trainer's rule, the cores other "
                   "processes leave free, 1 to 4)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the variants (robust to load drift)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per phase per round")
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        p.error(f"unknown variant {bad[0]!r}: expected a subset of {', '.join(VARIANTS)}")
    set_threads(args.threads)  # the trainer's rule (effnas.experiments.train.threads)
    device = default_device()
    spec = ss.load_spec(args.model, num_classes=args.num_classes, resolution=args.resolution)
    c = cost(spec)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"# machine: {cpu}, {os.cpu_count()} logical cores; device {device}; torch {torch.__version__}; "
          f"threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}")
    print(f"# model {spec.name} at {spec.resolution} px, batch {args.batch_size}, {spec.num_classes} classes: "
          f"{c.params / 1e6:.3f} M params, {c.macs / 1e6:.2f} M MACs/image")
    runs = [Variant(v, spec, batch=args.batch_size, device=device) for v in variants]
    for r in runs:
        r.prepare()
        print(f"#   prepared {r.name}", file=sys.stderr, flush=True)
    for i in range(args.rounds):
        for r in runs:
            r.round(args.steps)
        so_far = ", ".join(f"{r.name} {r.img_s('train'):.1f}/{r.img_s('infer'):.1f}" for r in runs)
        print(f"#   round {i + 1}/{args.rounds} done; train/infer img/s so far: {so_far}", file=sys.stderr, flush=True)
    rows = [{"variant": r.name, "train_img_s": r.img_s("train"), "infer_img_s": r.img_s("infer"),
             "train_peak_mb": r.memory["train"] / 2**20, "infer_peak_mb": r.memory["infer"] / 2**20,
             "compile_s": r.compile_s} for r in runs]
    base = next((r for r in rows if r["variant"] == "eager_nchw"), None)
    print("| variant | train img/s | x eager | train peak MB | infer img/s | x eager | infer peak MB | compile s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rt = r["train_img_s"] / base["train_img_s"] if base else float("nan")
        ri = r["infer_img_s"] / base["infer_img_s"] if base else float("nan")
        comp = f"{r['compile_s']:.0f}" if r["compile_s"] is not None else "-"
        default = "channels_last" if device.type == "cpu" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        name = r["variant"] + (" (default)" if r["variant"] == default else "")
        print(f"| {name} | {r['train_img_s']:.1f} | {rt:.2f} | {r['train_peak_mb']:.0f} | {r['infer_img_s']:.1f} | "
              f"{ri:.2f} | {r['infer_peak_mb']:.0f} | {comp} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
