"""The cost model: exact parameters, multiply-adds the papers' way, measured latency (torch, or
onnxruntime on the exported network: :func:`measure_latency_onnxruntime`; the median of timed calls
after warm-up is :func:`effnas.search_spaces.timing.median_time`, whose module holds the family's
documented timing protocol).

"FLOPs" in the EfficientNet and MnasNet papers are multiply-adds (MACs) of convolutions and
linear layers; fvcore counts one per multiply-add as well, so ``macs`` here is fvcore's count
restricted to convolutions and matrix products. Element-wise ops (activations, SE gating,
residual adds), BatchNorm and pooling get explicit handlers that count one op per output
element (one per input element for reductions) and are reported apart, in ``other_ops``.
Parameters include BatchNorm weight and bias but not running statistics (they are buffers).

Do not use torch's ``FlopCounterMode`` for training cost: it miscounts the backward of grouped
(depthwise) convolutions in torch 2.13/2.14.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from math import prod
from typing import Any

import numpy as np
import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

from effnas.search_spaces.builder import Network, build
from effnas.search_spaces.counts import breakdown
from effnas.search_spaces.onnx import onnx_bytes, onnx_session
from effnas.search_spaces.spec import NetworkSpec
from effnas.search_spaces.timing import median_time

#: fvcore operator names whose counts are multiply-adds of the papers' kind.
MAC_OPERATORS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum"})


def _per_output(inputs: list[Any], outputs: list[Any]) -> int:
    shape = get_shape(outputs[0])
    return int(prod(shape)) if shape else 1


def _per_input(inputs: list[Any], outputs: list[Any]) -> int:
    shape = get_shape(inputs[0])
    return int(prod(shape)) if shape else 1


def _zero(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


#: Explicit handlers for everything that is not a conv/linear, so fvcore warns about nothing.
_OTHER_HANDLERS: dict[str, Callable[[list[Any], list[Any]], int]] = {
    **{f"aten::{op}": _per_output for op in (
        "silu", "silu_", "relu", "relu_", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_",
        "mul", "mul_", "add", "add_", "div", "div_", "batch_norm", "max_pool2d", "avg_pool2d",
        "constant_pad_nd", "pad",
    )},
    **{f"aten::{op}": _per_input for op in ("mean", "adaptive_avg_pool2d")},
    **{f"aten::{op}": _zero for op in ("dropout", "dropout_", "feature_dropout", "bernoulli_",
                                        "empty_like", "new_empty", "flatten", "view", "reshape",
                                        "size", "contiguous")},
}


def count_params(model: nn.Module) -> int:
    """Trainable-or-not parameters (BN weight/bias included, running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class StageCost:
    name: str
    params: int
    macs: int
    other_ops: int
    out_channels: int
    out_resolution: int
    #: Output elements of the part's conv and linear layers (Dollar et al.'s activations).
    activations: int = 0


@dataclass(frozen=True)
class Cost:
    """A model's cost at one input size. MACs and activations for batch 1."""

    name: str
    resolution: int
    num_classes: int
    params: int
    macs: int
    other_ops: int
    stages: list[StageCost] = field(default_factory=list)
    latency_ms: float | None = None
    latency_batch: int | None = None
    latency_batch_ms: float | None = None
    device: str | None = None
    #: Output elements of every conv and linear layer for one image (equal to fvcore's
    #: ``ActivationCountAnalysis``; closed form: :func:`effnas.search_spaces.counts.counts`).
    activations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flop_analysis(model: nn.Module, resolution: int) -> FlopCountAnalysis:
    """A configured fvcore analysis of ``model`` on one ``3 x resolution x resolution`` image."""
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, resolution, resolution, device=device)
    fa = FlopCountAnalysis(model, x)
    for op, handler in _OTHER_HANDLERS.items():
        fa.set_op_handle(op, handler)
    return fa.uncalled_modules_warnings(False)


def _split(counts: Counter[str] | dict[str, int]) -> tuple[int, int]:
    macs = sum(v for k, v in counts.items() if k in MAC_OPERATORS)
    return int(macs), int(sum(counts.values()) - macs)


def cost(
    spec: NetworkSpec,
    *,
    resolution: int | None = None,
    model: Network | None = None,
    latency: bool = False,
    latency_batch: int = 16,
    device: str | torch.device | None = None,
) -> Cost:
    """Parameters, MACs, other ops, per-stage breakdown and optionally measured latency."""
    res = resolution or spec.resolution
    model = model if model is not None else build(spec)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        fa = flop_analysis(model, res)
        by_mod = fa.by_module_and_operator()
        macs, other = _split(fa.by_operator())
        # Output sizes per stage, from a forward pass with hooks.
        sizes: dict[str, tuple[int, int]] = {}
        hooks = []
        for name, mod in _stage_modules(model):
            hooks.append(mod.register_forward_hook(
                lambda _m, _i, out, name=name: sizes.__setitem__(
                    name, (out.shape[1], out.shape[-1] if out.ndim == 4 else 1))
            ))
        dev = next(model.parameters()).device
        model(torch.zeros(1, 3, res, res, device=dev))
        for h in hooks:
            h.remove()
    acts = {p.name: p.activations for p in breakdown(spec, res)}
    stages = []
    for name, mod in _stage_modules(model):
        m, o = _split(by_mod.get(name, {}))
        ch, r = sizes.get(name, (0, 0))
        stages.append(StageCost(name, count_params(mod), m, o, ch, r, acts.get(name, 0)))
    lat = lat_b = None
    dev_name = None
    if latency:
        lat, lat_b, dev_name = measure_latency(model, res, batch=latency_batch, device=device)
    model.train(was_training)
    return Cost(spec.name, res, spec.num_classes, count_params(model), macs, other, stages,
                lat, latency_batch if latency else None, lat_b, dev_name, sum(acts.values()))


def _stage_modules(model: Network) -> list[tuple[str, nn.Module]]:
    mods: list[tuple[str, nn.Module]] = [("stem", model.stem)]
    mods += [(f"stages.{i}", s) for i, s in enumerate(model.stages)]
    if not isinstance(model.head, nn.Identity):
        mods.append(("head", model.head))
    mods.append(("classifier", model.classifier))
    return mods


def macs(spec: NetworkSpec, resolution: int | None = None) -> int:
    """Multiply-adds of convolutions and linear layers for one image (papers' "FLOPs")."""
    model = build(spec).eval()
    with torch.no_grad():
        return _split(flop_analysis(model, resolution or spec.resolution).by_operator())[0]


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def measure_latency(
    model: nn.Module,
    resolution: int,
    *,
    batch: int = 16,
    device: str | torch.device | None = None,
    warmup: int = 3,
    repeats: int = 10,
) -> tuple[float, float, str]:
    """Median forward latency in ms at batch 1 and at ``batch`` (eval, channels_last),
    after ``warmup`` runs; on ``device`` (default: CUDA when present, else CPU)."""
    dev = torch.device(device) if device is not None else default_device()
    model = model.to(dev).eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def run(b: int) -> float:
        x = torch.randn(b, 3, resolution, resolution, device=dev).contiguous(memory_format=torch.channels_last)

        def call() -> None:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()

        with torch.inference_mode():
            return median_time(call, warmup=warmup, repeats=repeats).median_ms

    r1, rb = run(1), run(batch)
    model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    return r1, rb, str(dev)


def measure_latency_onnxruntime(model: nn.Module, resolution: int, *, threads: int = 1, warmup: int = 3,
                                repeats: int = 10) -> float:
    """Median batch-1 latency in ms of ``model`` exported to ONNX (in memory) and run by
    onnxruntime's CPU provider with ``threads`` intra-op threads (default 1: one core, as MnasNet
    timed one phone core), after ``warmup`` runs. Needs ``onnx`` and ``onnxruntime``."""
    model = model.to("cpu")
    session = onnx_session(onnx_bytes(model, resolution=resolution), threads=threads)
    x = {"images": np.random.default_rng(0).standard_normal((1, 3, resolution, resolution), dtype=np.float32)}
    return median_time(lambda: session.run(["logits"], x), warmup=warmup, repeats=repeats).median_ms
