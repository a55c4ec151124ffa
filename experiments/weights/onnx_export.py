"""ONNX export of any effnas network, and a check of the file against onnxruntime.

The export itself and onnxruntime sessions live in :mod:`effnas.search_spaces.onnx` (the search's
onnxruntime latency uses them too): PyTorch's TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``), opset 17, dynamic batch, fixed height and width.

What can be exported (``effnas export --onnx``): a registered model name or spec JSON (random
weights, for latency measurement), an effnas weights file (``effnas weights import``), a run
directory or a run checkpoint (``best.pt``: the EMA weights when the run used EMA).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

import effnas.search_spaces as ss
from effnas.experiments.weights.convert import load_weights
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.onnx import OPSET, onnx_session, write_onnx

__all__ = ["OPSET", "compare_onnx", "export_onnx", "model_for_export", "onnx_session"]


def model_for_export(ref: str, *, num_classes: int | None = None, seed: int = 0) -> tuple[ss.NetworkSpec, nn.Module]:
    """(spec, model in eval mode) for ``ref``: a run directory, a ``.pt`` weights/run checkpoint,
    a spec JSON or a registered name (the last two with a seeded random initialisation)."""
    p = Path(ref)
    if p.is_dir() or p.suffix in (".pt", ".pth"):
        if num_classes is not None:
            raise UserError("--num-classes applies to a model name or spec, not to weights: the weights fix it")
        w = load_weights(p)
        return w.spec, w.model()
    spec = ss.load_spec(ref, num_classes=num_classes)
    torch.manual_seed(seed)
    return spec, ss.build(spec).eval()


def export_onnx(model: nn.Module, path: str | Path, *, resolution: int, opset: int = OPSET) -> Path:
    """Write ``model`` (an image classifier taking ``(N, 3, resolution, resolution)``) as ONNX.

    Input ``images`` (float32, NCHW, normalised as in training), output ``logits``; the batch
    dimension is dynamic (:func:`effnas.search_spaces.onnx.write_onnx`).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_onnx(model, out, resolution=resolution, opset=opset)
    return out


def compare_onnx(path: str | Path, model: nn.Module, *, resolution: int, batch: int = 2, seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's logits on a seeded random batch."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, resolution, resolution, generator=g)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    got = onnx_session(path).run(["logits"], {"images": x.numpy()})[0]
    return float(np.abs(got - ref).max())
