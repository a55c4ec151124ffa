"""ONNX export of a network and onnxruntime sessions: the part shared by the search's onnxruntime
latency (:func:`effnas.search_spaces.cost.measure_latency_onnxruntime`) and ``effnas export --onnx``
(:mod:`effnas.experiments.weights.onnx_export`, which adds loading weights and the agreement check).

Export uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): it
needs only the ``onnx`` package, handles every effnas block (including TF "same" padding, whose
pads are fixed at the exported resolution) and is quick (docs/training.md, "Measured numbers
behind the code's choices"). The batch dimension is dynamic; height and width are the exported resolution. ``onnx`` and
``onnxruntime`` are imported only when used (``pip install 'effnas[deploy]'``).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.extras import needs

OPSET = 17  #: ONNX opset written by default (onnxruntime >= 1.14 runs it)


def write_onnx(model: nn.Module, f: str | Path | IO[bytes], *, resolution: int, opset: int = OPSET) -> None:
    """Write ``model`` (an image classifier taking ``(N, 3, resolution, resolution)``, put in eval
    mode) as ONNX to a path or a binary buffer: input ``images`` (float32, NCHW), output
    ``logits``, dynamic batch."""
    if resolution < 1:
        raise UserError(f"resolution must be a positive number of pixels, got {resolution}")
    with needs("onnx", "ONNX export"):
        import onnx  # noqa: F401  lazy: onnx is optional (effnas[deploy])
    model = model.eval()
    x = torch.zeros(1, 3, resolution, resolution, device=next(model.parameters()).device)
    with warnings.catch_warnings():  # the legacy exporter announces its deprecation; tracing warns about shapes
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), f if not isinstance(f, Path) else str(f), dynamo=False,  # type: ignore[arg-type]
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset)


def onnx_bytes(model: nn.Module, *, resolution: int, opset: int = OPSET) -> bytes:
    """``model`` as an ONNX file in memory."""
    buf = io.BytesIO()
    write_onnx(model, buf, resolution=resolution, opset=opset)
    return buf.getvalue()


def onnx_session(model: str | Path | bytes, *, threads: int = 1) -> Any:  # -> onnxruntime.InferenceSession
    """An onnxruntime CPU session for an ONNX file or its bytes, with ``threads`` intra-op threads
    (default one: it must not fight training for cores) and one inter-op thread."""
    with needs("onnxruntime", "running an ONNX network"):
        import onnxruntime as ort  # lazy: onnxruntime is optional (effnas[deploy])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


__all__ = ["OPSET", "onnx_bytes", "onnx_session", "write_onnx"]
