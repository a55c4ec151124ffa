"""Foreign checkpoints' key names, as data: for each layout, the ``(ours, theirs)`` layer pairs of a spec's
model, in network order (:func:`key_map`). :mod:`effnas.experiments.weights.convert` renames and checks
tensors with them; the layouts are described there and in docs/transfer.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

import effnas.search_spaces as ss
from effnas.search_spaces.common.errors import UserError

LAYOUTS = ("timm", "torchvision", "tfport")
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_SUFFIXES = {"conv": ("weight",), "conv_bias": ("weight", "bias"), "linear": ("weight", "bias"), "bn": _BN}

Slot = tuple[str, str, str]  # (our module path, their module path, kind)


def _blocks(spec: ss.NetworkSpec) -> Iterator[tuple[int, int, int, ss.BlockSpec]]:
    """(stage index, block index in stage, flat block index, block) in network order."""
    n = 0
    for i, stage in enumerate(spec.stages):
        for j, b in enumerate(stage.layers()):
            yield i, j, n, b
            n += 1


def _ops(spec: ss.NetworkSpec) -> set[str]:
    return {s.op for s in spec.stages}


def _resnet_slots(spec: ss.NetworkSpec) -> list[Slot]:
    """timm and torchvision ResNet: ``conv1``/``bn1``, ``layerN.B.convK``/``bnK``/``downsample``, ``fc``."""
    slots: list[Slot] = [("stem.0", "conv1", "conv"), ("stem.1", "bn1", "bn")]
    for i, j, _, b in _blocks(spec):
        ours, theirs = f"stages.{i}.{j}", f"layer{i + 1}.{j}"
        for k in range(1, (3 if b.op == "bottleneck" else 2) + 1):
            slots += [(f"{ours}.conv{k}.0", f"{theirs}.conv{k}", "conv"),
                      (f"{ours}.conv{k}.1", f"{theirs}.bn{k}", "bn")]
        slots += [(f"{ours}.shortcut.0", f"{theirs}.downsample.0", "conv"),
                  (f"{ours}.shortcut.1", f"{theirs}.downsample.1", "bn")]
    return slots + [("classifier", "fc", "linear")]


def _tfport_slots(spec: ss.NetworkSpec) -> list[Slot]:
    slots: list[Slot] = [("stem.0", "_conv_stem", "conv"), ("stem.1", "_bn0", "bn")]
    for i, j, n, _ in _blocks(spec):
        ours, theirs = f"stages.{i}.{j}", f"_blocks.{n}"
        slots += [(f"{ours}.expand.0", f"{theirs}._expand_conv", "conv"), (f"{ours}.expand.1", f"{theirs}._bn0", "bn"),
                  (f"{ours}.dw.0", f"{theirs}._depthwise_conv", "conv"), (f"{ours}.dw.1", f"{theirs}._bn1", "bn"),
                  (f"{ours}.se.reduce", f"{theirs}._se_reduce", "conv_bias"),
                  (f"{ours}.se.expand", f"{theirs}._se_expand", "conv_bias"),
                  (f"{ours}.project.0", f"{theirs}._project_conv", "conv"),
                  (f"{ours}.project.1", f"{theirs}._bn2", "bn")]
    return slots + [("head.0", "_conv_head", "conv"), ("head.1", "_bn1", "bn"), ("classifier", "_fc", "linear")]


def _timm_slots(spec: ss.NetworkSpec) -> list[Slot]:
    """timm ``EfficientNet``: an expansion-1 MBConv block is a ``DepthwiseSeparableConv``, others
    ``InvertedResidual``; an expansion-1 Fused-MBConv block is a ``ConvBnAct`` (no SE), others ``EdgeResidual``
    (timm ``_efficientnet_blocks.py``; EfficientNetV2's ``cn`` / ``er`` stages)."""
    slots: list[Slot] = [("stem.0", "conv_stem", "conv"), ("stem.1", "bn1", "bn")]
    for i, j, _, b in _blocks(spec):
        ours, theirs = f"stages.{i}.{j}", f"blocks.{i}.{j}"
        se = [(f"{ours}.se.reduce", f"{theirs}.se.conv_reduce", "conv_bias"),
              (f"{ours}.se.expand", f"{theirs}.se.conv_expand", "conv_bias")]
        if b.op == "fused_mbconv" and b.expansion == 1:
            slots += [(f"{ours}.project.0", f"{theirs}.conv", "conv"), (f"{ours}.project.1", f"{theirs}.bn1", "bn")]
        elif b.op == "fused_mbconv":
            slots += [(f"{ours}.expand.0", f"{theirs}.conv_exp", "conv"), (f"{ours}.expand.1", f"{theirs}.bn1", "bn"),
                      *se, (f"{ours}.project.0", f"{theirs}.conv_pwl", "conv"),
                      (f"{ours}.project.1", f"{theirs}.bn2", "bn")]
        elif b.expansion == 1:
            slots += [(f"{ours}.dw.0", f"{theirs}.conv_dw", "conv"), (f"{ours}.dw.1", f"{theirs}.bn1", "bn"), *se,
                      (f"{ours}.project.0", f"{theirs}.conv_pw", "conv"), (f"{ours}.project.1", f"{theirs}.bn2", "bn")]
        else:
            slots += [(f"{ours}.expand.0", f"{theirs}.conv_pw", "conv"), (f"{ours}.expand.1", f"{theirs}.bn1", "bn"),
                      (f"{ours}.dw.0", f"{theirs}.conv_dw", "conv"), (f"{ours}.dw.1", f"{theirs}.bn2", "bn"), *se,
                      (f"{ours}.project.0", f"{theirs}.conv_pwl", "conv"),
                      (f"{ours}.project.1", f"{theirs}.bn3", "bn")]
    return slots + [("head.0", "conv_head", "conv"), ("head.1", "bn2", "bn"), ("classifier", "classifier", "linear")]


def _torchvision_slots(spec: ss.NetworkSpec) -> list[Slot]:
    """torchvision ``efficientnet_b*`` when the spec has SE, else ``mobilenet_v2``."""
    slots: list[Slot] = [("stem.0", "features.0.0", "conv"), ("stem.1", "features.0.1", "bn")]
    efficientnet = any(s.se_ratio > 0 for s in spec.stages)
    last = 0
    for i, j, n, b in _blocks(spec):
        ours = f"stages.{i}.{j}"
        if efficientnet:  # features.S.B.block = [expand], dw, se, project (Conv2dNormActivation: 0 conv, 1 bn)
            p, k = f"features.{i + 1}.{j}.block", 0
            if b.expansion != 1:
                slots += [(f"{ours}.expand.0", f"{p}.0.0", "conv"), (f"{ours}.expand.1", f"{p}.0.1", "bn")]
                k = 1
            slots += [(f"{ours}.dw.0", f"{p}.{k}.0", "conv"), (f"{ours}.dw.1", f"{p}.{k}.1", "bn"),
                      (f"{ours}.se.reduce", f"{p}.{k + 1}.fc1", "conv_bias"),
                      (f"{ours}.se.expand", f"{p}.{k + 1}.fc2", "conv_bias"),
                      (f"{ours}.project.0", f"{p}.{k + 2}.0", "conv"), (f"{ours}.project.1", f"{p}.{k + 2}.1", "bn")]
            last = len(spec.stages) + 1
        else:  # features.N.conv = [expand CNA], dw CNA, project conv, project bn
            p, k = f"features.{n + 1}.conv", 0
            if b.expansion != 1:
                slots += [(f"{ours}.expand.0", f"{p}.0.0", "conv"), (f"{ours}.expand.1", f"{p}.0.1", "bn")]
                k = 1
            slots += [(f"{ours}.dw.0", f"{p}.{k}.0", "conv"), (f"{ours}.dw.1", f"{p}.{k}.1", "bn"),
                      (f"{ours}.project.0", f"{p}.{k + 1}", "conv"), (f"{ours}.project.1", f"{p}.{k + 2}", "bn")]
            last = n + 2
    return slots + [("head.0", f"features.{last}.0", "conv"), ("head.1", f"features.{last}.1", "bn"),
                    ("classifier", "classifier.1", "linear")]


def key_map(spec: ss.NetworkSpec, layout: str) -> list[tuple[str, str]]:
    """``(our key, their key)`` for every tensor of ``spec``'s model in ``layout``, in network order.

    Raises ValueError when the layout cannot express the spec (e.g. MBConv blocks in a ResNet
    layout, or a layer of ours the layout has no name for).
    """
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    ops = _ops(spec)
    if ops <= {"basic", "bottleneck"} and layout in ("timm", "torchvision"):
        slots = _resnet_slots(spec)
    elif ops == {"mbconv"} or (ops <= {"mbconv", "fused_mbconv"} and layout == "timm"):
        slots = {"tfport": _tfport_slots, "timm": _timm_slots, "torchvision": _torchvision_slots}[layout](spec)
    elif ops <= {"mbconv", "fused_mbconv"}:
        raise UserError(f"layout {layout!r} has no names for the Fused-MBConv blocks of {spec.name!r}: "
                         "use --layout timm (timm's EfficientNetV2 checkpoints)")
    else:
        raise UserError(f"layout {layout!r} has no names for {spec.name!r} (ops {', '.join(sorted(ops))}): "
                         "tfport holds MBConv networks, timm/torchvision MBConv networks or ResNets")
    ours_keys = shapes(spec)
    pairs = []
    for ours, theirs, kind in slots:
        for suffix in _SUFFIXES[kind]:
            if f"{ours}.{suffix}" in ours_keys:
                pairs.append((f"{ours}.{suffix}", f"{theirs}.{suffix}"))
    missing = [k for k in ours_keys if k not in {o for o, _ in pairs}]
    if missing:
        raise UserError(f"layout {layout!r} has no name for {missing[0]!r} of {spec.name!r} "
                         "(a pool skip or another layer the layout does not have)")
    return pairs


def shapes(spec: ss.NetworkSpec) -> dict[str, tuple[int, ...]]:
    """Our state dict's keys and shapes, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = ss.build(spec)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
