"""Batch-1 CPU latency of a network in PyTorch (eval, inference mode) and in onnxruntime, one
thread each, medians measured in one run; prints the ratio.

    .venv/bin/python bench/onnx_latency.py --model efficientnet_lite0            # registered, symmetric padding
    .venv/bin/python bench/onnx_latency.py --model lite0.pt                      # imported TF weights ("same")
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effnas.experiments.weights.onnx_export import export_onnx, model_for_export, onnx_session  # noqa: E402


def median_ms(f: Callable[[], object], runs: int) -> float:
    for _ in range(3):
        f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0", help="name, spec .json, weights .pt or run directory")
    ap.add_argument("--resolution", type=int, help="default: the spec's")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec, model = model_for_export(args.model)
    res = args.resolution or spec.resolution
    x = torch.randn(1, 3, res, res)
    with tempfile.TemporaryDirectory() as tmp:
        session = onnx_session(export_onnx(model, Path(tmp) / "m.onnx", resolution=res))
        with torch.inference_mode():
            t_torch = median_ms(lambda: model(x), args.runs)
        t_ort = median_ms(lambda: session.run(["logits"], {"images": x.numpy()}), args.runs)
    print(f"{spec.name} ({spec.padding} padding) at {res} px, batch 1, 1 thread: torch {t_torch:.1f} ms, "
          f"onnxruntime {t_ort:.1f} ms, torch / onnxruntime {t_torch / t_ort:.2f}; torch {torch.__version__}, "
          f"{platform.machine()}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
