"""ONNX export of any effnas network, and a check of the file against onnxruntime.

Export uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): it
needs only the ``onnx`` package, handles every effnas block (including TF "same" padding, whose
pads are fixed at the exported resolution) and takes about a second for B0 on this CPU. The
batch dimension is dynamic; height and width are the exported resolution.

What can be exported (``effnas export --onnx``): a registered model name or spec JSON (random
weights, for latency measurement), an effnas weights file (``effnas weights import``), a run
directory or a run checkpoint (``best.pt``: the EMA weights when the run used EMA).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import search_spaces as ss

OPSET = 17  #: ONNX opset written by default (onnxruntime >= 1.14 runs it)


def model_for_export(ref: str, *, num_classes: int | None = None, seed: int = 0) -> tuple[ss.NetworkSpec, nn.Module]:
    """(spec, model in eval mode) for ``ref``: a run directory, a ``.pt`` weights/run checkpoint,
    a spec JSON or a registered name (the last two with a seeded random initialisation)."""
    p = Path(ref)
    if p.is_dir() or p.suffix in (".pt", ".pth"):
        from experiments.weights import load_weights

        if num_classes is not None:
            raise ValueError("--num-classes applies to a model name or spec, not to weights: the weights fix it")
        w = load_weights(p)
        return w.spec, w.model()
    spec = ss.load_spec(ref, num_classes=num_classes)
    torch.manual_seed(seed)
    return spec, ss.build(spec).eval()


def export_onnx(model: nn.Module, path: str | Path, *, resolution: int, opset: int = OPSET) -> Path:
    """Write ``model`` (an image classifier taking ``(N, 3, resolution, resolution)``) as ONNX.

    Input ``images`` (float32, NCHW, normalised as in training), output ``logits``; the batch
    dimension is dynamic.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be a positive number of pixels, got {resolution}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = torch.zeros(1, 3, resolution, resolution)
    with warnings.catch_warnings():  # the legacy exporter announces its deprecation; tracing warns about shapes
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(out), dynamo=False, input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset)
    return out


def onnx_session(path: str | Path):  # -> onnxruntime.InferenceSession
    """An onnxruntime CPU session for ``path`` (one thread: it must not fight training for cores)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError("onnxruntime is not installed: pip install onnxruntime (or effnas[deploy])") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compare_onnx(path: str | Path, model: nn.Module, *, resolution: int, batch: int = 2, seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's logits on a seeded random batch."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, resolution, resolution, generator=g)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    got = onnx_session(path).run(["logits"], {"images": x.numpy()})[0]
    return float(np.abs(got - ref).max())
