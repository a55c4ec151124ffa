"""A weight-sharing supernet over an MBConv search space (single-path one-shot).

One network holds the weights of the space's *largest* candidate: the widest filter multiplier,
the largest expansion, kernel, SE ratio and repeat count of every block. Any candidate of the
space is a slice of it (Once-for-All / BigNAS weight sharing, Cai et al. 2020, Yu et al. 2020):

* channels: the first ``c`` output channels and the first ``c_in`` input channels of every
  convolution, BatchNorm and linear layer (the expansion's ``c_in x e`` channels are the first
  ones of the largest expansion);
* kernel: the centre ``k x k`` of the largest depthwise kernel (OFA's kernel transformation
  matrices are not used);
* depth: the first ``r`` blocks of every stage;
* SE: the first ``max(1, int(c_in x se))`` squeezed channels of the largest SE; a candidate
  without SE does not use it.

A candidate's network is the ordinary :func:`search_spaces.build` module of its spec, so the
supernet never re-implements a block: :meth:`Supernet.forward` runs that module (built on the
``meta`` device, no memory, no initialisation) with :func:`torch.func.functional_call` on views
of the supernet's tensors, so gradients and BatchNorm statistics land in the shared weights;
:meth:`Supernet.extract` copies the slices into a real module (an inherited-weights network
that trains, exports and evaluates like any other). :func:`recalibrate_bn` re-estimates a
subnet's BatchNorm statistics on a few batches, which inherited statistics need (they were
accumulated over many different subnets).

Training and evaluation on data live in :mod:`effnas.experiments.estimators.supernet` (this package takes no
data path); the search uses it as the ``supernet:DIR`` estimator.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from effnas.nas.space import SearchSpace, parse_conv_op
from effnas.search_spaces import NetworkSpec, build
from effnas.search_spaces.common.errors import UserError

#: Skeletons (meta-device modules) kept per candidate: building one costs a few ms of Python.
SKELETONS = 64


def _largest_value(key: str, values: Iterable[Any]) -> Any:
    vals = list(values)
    if key == "conv_op":
        ops = {v: parse_conv_op(v) for v in vals}
        if any(op != "mbconv" for op, _ in ops.values()):
            raise UserError("a supernet shares weights between MBConv blocks: the space's conv_op choice 'conv' "
                             "(a regular convolution) has no slice in them; drop it from the space")
        return max(vals, key=lambda v: ops[v][1])
    if key == "conv_type" and "fused_mbconv" in vals:
        raise UserError("a supernet shares weights between MBConv blocks: the space's conv_type choice 'fused_mbconv' "
                         "(EfficientNetV2's Fused-MBConv) has no slice in them; drop it from the space")
    if key == "skip":
        return "pool" if "pool" in vals else vals[0]
    return max(vals)


def largest_params(space: SearchSpace) -> dict[str, Any]:
    """The parameters of the space's largest candidate (every other one is a slice of it)."""
    for i, base in enumerate(space.base):
        if base.op != "mbconv":
            raise UserError(f"a supernet shares weights between MBConv blocks: block {i} of space {space.name!r} "
                             f"is {base.op!r}")
    return {f"b{i}_{key}": _largest_value(key, vals) for i in range(space.num_blocks)
            for key, vals in space.choices.items()}


def random_params(space: SearchSpace, rng: random.Random) -> dict[str, Any]:
    """One candidate drawn uniformly: every choice of every block independently."""
    return {name: rng.choice(list(d.choices)) for name, d in space.distributions().items()}


def smallest_params(space: SearchSpace) -> dict[str, Any]:
    """The smallest candidate (fewest MACs per choice): the sandwich rule's lower bound."""
    def smallest(key: str, vals: tuple[Any, ...]) -> Any:
        if key == "conv_op":
            return min(vals, key=lambda v: parse_conv_op(v)[1])
        if key == "skip":
            return vals[0]
        return min(vals)
    return {f"b{i}_{key}": smallest(key, vals) for i in range(space.num_blocks) for key, vals in space.choices.items()}


def slice_tensor(full: Tensor, shape: torch.Size | tuple[int, ...], name: str = "") -> Tensor:
    """A view of ``full`` with ``shape``: the first entries of every dimension, except the two
    spatial dimensions of a 4-D convolution weight, where the centre is taken (kernel sharing)."""
    if tuple(full.shape) == tuple(shape):
        return full
    if full.ndim != len(shape) or any(s > f for s, f in zip(shape, full.shape, strict=True)):
        raise UserError(f"the candidate's {name or 'tensor'} {tuple(shape)} is not a slice of the supernet's "
                         f"{tuple(full.shape)}")
    index = []
    for d, (f, s) in enumerate(zip(full.shape, shape, strict=True)):
        o = (f - s) // 2 if full.ndim == 4 and d >= 2 else 0
        index.append(slice(o, o + s))
    return full[tuple(index)]


class Supernet(nn.Module):
    """The weights of every candidate of ``space`` (module docstring).

    ``num_classes`` and ``resolution`` as the candidates' (:meth:`SearchSpace.to_spec`).
    """

    def __init__(self, space: SearchSpace, *, num_classes: int | None = None, resolution: int | None = None) -> None:
        super().__init__()
        self.space = space
        self.num_classes = num_classes or space.num_classes
        self.resolution = resolution or space.resolution
        self.largest = self.spec(largest_params(space), name=f"{space.name}_supernet")
        self.net = build(self.largest)
        self._skeletons: OrderedDict[str, nn.Module] = OrderedDict()

    def spec(self, params: Mapping[str, Any], *, name: str | None = None) -> NetworkSpec:
        """The candidate network of ``params`` (a space sample) at the supernet's classes and resolution."""
        return self.space.to_spec(params, num_classes=self.num_classes, resolution=self.resolution, name=name)

    def _skeleton(self, spec: NetworkSpec) -> nn.Module:
        key = spec.to_json()
        sk = self._skeletons.get(key)
        if sk is None:
            with torch.device("meta"):
                sk = build(spec)
            self._skeletons[key] = sk
            if len(self._skeletons) > SKELETONS:
                self._skeletons.popitem(last=False)
        else:
            self._skeletons.move_to_end(key)
        return sk

    def tensors_for(self, spec: NetworkSpec) -> dict[str, Tensor]:
        """Every parameter and buffer of ``spec``'s network, by its name in that network, as a view
        of the supernet's tensor (gradients and in-place BatchNorm updates reach the supernet)."""
        own: dict[str, Tensor] = dict(self.net.named_parameters())
        own.update(self.net.named_buffers())
        sk = self._skeleton(spec)
        out = {}
        for name, t in [*sk.named_parameters(), *sk.named_buffers()]:
            if name not in own:
                raise UserError(f"candidate {spec.name!r} has {name} ({tuple(t.shape)}), which the supernet of "
                                 f"space {self.space.name!r} lacks")
            out[name] = slice_tensor(own[name], t.shape, name)
        return out

    def forward(self, x: Tensor, spec: NetworkSpec) -> Tensor:  # type: ignore[override]
        """``spec``'s network on ``x`` with the shared weights (training mode follows the supernet's)."""
        sk = self._skeleton(spec)
        sk.train(self.training)
        return functional_call(sk, self.tensors_for(spec), (x,))

    def extract(self, spec: NetworkSpec) -> nn.Module:
        """A stand-alone network of ``spec`` whose every parameter and buffer is a copy of its slice."""
        with torch.no_grad():
            tensors = {k: v.detach().clone() for k, v in self.tensors_for(spec).items()}
        with torch.device("meta"):
            model = build(spec)
        model.load_state_dict(tensors, assign=True)
        device = next(iter(tensors.values())).device
        return model.to(device).train(self.training)

    def to_checkpoint(self) -> dict[str, Any]:
        return {"space": self.space.to_dict(), "num_classes": self.num_classes, "resolution": self.resolution,
                "state": self.net.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: Mapping[str, Any]) -> Supernet:
        net = cls(SearchSpace.from_dict(ckpt["space"]), num_classes=int(ckpt["num_classes"]),
                  resolution=int(ckpt["resolution"]))
        net.net.load_state_dict(ckpt["state"])
        return net


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Re-estimate every BatchNorm's running mean and variance of ``model`` as the plain average
    over ``batches`` (BatchNorm in training mode with ``momentum=None``; every other layer, e.g.
    dropout and stochastic depth, in evaluation mode). Parameters are not touched; the model is
    left in evaluation mode. Returns the number of images seen."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    n = 0
    try:
        for x in batches:
            model(x)
            n += len(x)
    finally:
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.eval()
    if n == 0:
        raise UserError("recalibrating BatchNorm needs at least one batch of images")
    return n


__all__ = ["Supernet", "largest_params", "random_params", "recalibrate_bn", "slice_tensor", "smallest_params"]
