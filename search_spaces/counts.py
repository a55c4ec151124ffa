"""Closed-form parameter and multiply-add counts of a spec, without building the model.

The scaling searches evaluate thousands of candidate specs (matched-MACs multipliers, grid
candidates, B7 at 600 px), and fvcore needs a traced forward pass for each (seconds for B7:
docs/training.md, "Measured numbers behind the code's choices"). These functions walk the spec
once, following ``effnas.search_spaces.builder`` layer by layer, and count what fvcore counts:
one MAC per multiply-add of convolutions
(``out_h * out_w * out_c * in_c / groups * k * k``) and linear layers, no bias terms; params
include BatchNorm weight and bias; activations are the output elements of every conv and linear
layer (Dollar, Singh, Girshick 2021, "Fast and Accurate Model Scaling", Section 3: the cost that
tracks runtime on memory-bound hardware better than FLOPs; fvcore's ``ActivationCountAnalysis``).
``tests/search_spaces/test_counts.py`` checks params and MACs against ``effnas.search_spaces.cost``
*exactly* for every registered model at several input sizes, and
``tests/search_spaces/test_reference_counts.py`` checks activations against fvcore, so a change
to the builder that breaks the agreement fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.spec import BlockSpec, NetworkSpec

#: Runtimes a batch-1 latency can be measured on (``search.latency_runtime``; measured by
#: ``effnas.search_spaces.cost``, named here where importing it needs no torch).
LATENCY_RUNTIMES = ("torch", "onnxruntime")


@dataclass(frozen=True)
class Counts:
    """Parameters and MACs (one image, papers' "FLOPs") of a spec at one input size."""

    params: int
    macs: int
    resolution: int
    #: Output elements of every conv and linear layer for one image (Dollar et al.'s "activations",
    #: fvcore's ``ActivationCountAnalysis``; BatchNorm and nonlinearity outputs are the same size
    #: again), and of the largest one: what training keeps for the backward pass, and an inference peak.
    activations: int = 0
    peak_activation: int = 0


def _out(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output side of a conv: TF ``same`` gives ``ceil(size / stride)``; PyTorch symmetric
    padding ``k // 2`` gives ``(size + 2 * (k // 2) - k) // stride + 1``.

    >>> _out(225, 3, 2, "symmetric"), _out(225, 3, 2, "same"), _out(224, 4, 2, "symmetric")
    (113, 113, 113)
    """
    if padding == "same":
        return -(-size // stride)
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class _Counter:
    def __init__(self, net: NetworkSpec) -> None:
        self.net = net
        self.params = 0
        self.macs = 0
        self.activations = 0
        self.peak = 0

    def conv(self, cin: int, cout: int, k: int, stride: int, size: int, *, groups: int = 1, bn: bool = True,
             bias: bool = False) -> int:
        out = _out(size, k, stride, self.net.padding)
        weights = cout * (cin // groups) * k * k
        self.params += weights + (2 * cout if bn else 0) + (cout if bias else 0)
        self.macs += weights * out * out
        self.activations += cout * out * out
        self.peak = max(self.peak, cout * out * out)
        return out

    def se(self, channels: int, reduced: int) -> None:
        # Two 1x1 convs with bias on the pooled 1x1 map.
        self.params += channels * reduced + reduced + reduced * channels + channels
        self.macs += 2 * channels * reduced
        self.activations += reduced + channels  # fvcore counts every conv output, these 1x1 ones too

    def shortcut(self, b: BlockSpec, size: int) -> None:
        cin, cout, s = b.in_channels, b.out_channels, b.stride
        if b.shortcut == "pool" and cin != cout:
            self.conv(cin, cout, 1, 1, -(-size // s))  # avg-pool (ceil mode) first, then a 1x1 conv
        elif b.shortcut == "projection":
            self.conv(cin, cout, 1, s, size)

    def block(self, b: BlockSpec, size: int) -> int:
        cin, cout, k, s = b.in_channels, b.out_channels, b.kernel, b.stride
        if b.op == "mbconv":
            mid = cin * b.expansion
            if b.expansion != 1:
                self.conv(cin, mid, 1, 1, size)
            out = self.conv(mid, mid, k, s, size, groups=mid)
            if b.se_ratio > 0:
                self.se(mid, max(1, int(cin * b.se_ratio)))
            self.conv(mid, cout, 1, 1, out)
        elif b.op == "fused_mbconv":
            mid = cin * b.expansion
            if b.expansion != 1:
                out = self.conv(cin, mid, k, s, size)
                if b.se_ratio > 0:
                    self.se(mid, max(1, int(cin * b.se_ratio)))
                self.conv(mid, cout, 1, 1, out)
            else:
                if b.se_ratio > 0:
                    self.se(cin, max(1, int(cin * b.se_ratio)))
                out = self.conv(cin, cout, k, s, size)
        elif b.op == "dsconv":
            out = self.conv(cin, cin, k, s, size, groups=cin)
            if b.se_ratio > 0:
                self.se(cin, max(1, int(cin * b.se_ratio)))
            self.conv(cin, cout, 1, 1, out)
        elif b.op == "conv":
            out = self.conv(cin, cout, k, s, size)
            if b.se_ratio > 0:
                self.se(cout, max(1, int(cin * b.se_ratio)))
        elif b.op == "basic":
            out = self.conv(cin, cout, k, s, size)
            self.conv(cout, cout, k, 1, out)
        elif b.op == "bottleneck":
            mid = cout // b.expansion
            self.conv(cin, mid, 1, 1, size)
            out = self.conv(mid, mid, k, s, size)
            self.conv(mid, cout, 1, 1, out)
        else:  # pragma: no cover - BlockSpec validates op
            raise AssertionError(b.op)
        self.shortcut(b, size)
        return out


@dataclass(frozen=True)
class PartCounts:
    """Parameters, MACs and activations (conv and linear output elements) of one part of a
    network, with its output shape.

    ``name`` follows the model's module names, as :class:`effnas.search_spaces.cost.StageCost` does:
    ``stem``, ``stages.i`` (with its blocks ``stages.i.j`` in ``blocks``), ``head``, ``classifier``
    (whose ``out_resolution`` is 1).
    """

    name: str
    params: int
    macs: int
    out_channels: int
    out_resolution: int
    blocks: tuple[PartCounts, ...] = ()
    activations: int = 0


def _check_resolution(spec: NetworkSpec, resolution: int | None) -> int:
    res = spec.resolution if resolution is None else resolution
    if isinstance(res, bool) or not isinstance(res, int) or res < 1:
        raise UserError(f"resolution must be a positive integer of pixels, got {res!r}")
    return res


def breakdown(spec: NetworkSpec, resolution: int | None = None) -> list[PartCounts]:
    """Per-part counts of ``spec`` on one ``resolution``-pixel image: the stem, every stage (with
    every block), the head conv when there is one, and the classifier.

    The parts add up to :func:`counts`; each stage equals the ``StageCost`` of the same name in
    ``effnas.search_spaces.cost.cost`` (``tests/search_spaces/test_counts.py``).

    >>> import effnas.search_spaces as ss
    >>> parts = breakdown(ss.get("efficientnet_b0", num_classes=10), 32)
    >>> [(p.name, p.out_channels, p.out_resolution, len(p.blocks)) for p in parts[:3]]
    [('stem', 32, 16, 0), ('stages.0', 16, 16, 1), ('stages.1', 24, 8, 2)]
    """
    size = _check_resolution(spec, resolution)
    return _breakdown(spec, size)[0]


def _breakdown(spec: NetworkSpec, size: int) -> tuple[list[PartCounts], int]:
    """:func:`breakdown` and the largest single conv/linear output."""
    c = _Counter(spec)
    mark = (0, 0, 0)

    def take(name: str, channels: int, out: int) -> PartCounts:
        nonlocal mark
        part = PartCounts(name, c.params - mark[0], c.macs - mark[1], channels, out,
                          activations=c.activations - mark[2])
        mark = (c.params, c.macs, c.activations)
        return part

    size = c.conv(3, spec.stem_channels, spec.stem_kernel, spec.stem_stride, size)
    if spec.stem_pool:
        size = (size + 2 - 3) // 2 + 1  # 3x3 max-pool, stride 2, padding 1
    parts = [take("stem", spec.stem_channels, size)]
    for i, stage in enumerate(spec.stages):
        blocks = []
        for j, b in enumerate(stage.layers()):
            size = c.block(b, size)
            blocks.append(take(f"stages.{i}.{j}", b.out_channels, size))
        parts.append(PartCounts(f"stages.{i}", sum(b.params for b in blocks), sum(b.macs for b in blocks),
                                stage.out_channels, size, tuple(blocks),
                                activations=sum(b.activations for b in blocks)))
    if spec.head_channels:
        c.conv(spec.stages[-1].out_channels, spec.head_channels, 1, 1, size)
        parts.append(take("head", spec.head_channels, size))
    c.params += spec.feature_channels * spec.num_classes + spec.num_classes
    c.macs += spec.feature_channels * spec.num_classes
    c.activations += spec.num_classes
    parts.append(take("classifier", spec.num_classes, 1))
    return parts, c.peak


def counts(spec: NetworkSpec, resolution: int | None = None) -> Counts:
    """Parameters, MACs and activations of ``spec`` on one ``resolution``-pixel image (default:
    the spec's).

    Equal to ``effnas.search_spaces.cost.cost(spec, resolution=...)``'s ``params`` and ``macs``,
    and ``activations`` to fvcore's ``ActivationCountAnalysis`` total.

    >>> import effnas.search_spaces as ss
    >>> c = counts(ss.get("efficientnet_b0", num_classes=10), 32)
    >>> c.params, c.macs, c.activations
    (4020358, 8474848, 146854)
    """
    res = _check_resolution(spec, resolution)
    parts, peak = _breakdown(spec, res)
    return Counts(params=sum(p.params for p in parts), macs=sum(p.macs for p in parts), resolution=res,
                  activations=sum(p.activations for p in parts), peak_activation=peak)


def count_macs(spec: NetworkSpec, resolution: int | None = None) -> int:
    """MACs of ``spec`` at ``resolution`` (see :func:`counts`)."""
    return counts(spec, resolution).macs


__all__ = ["LATENCY_RUNTIMES", "Counts", "PartCounts", "breakdown", "count_macs", "counts"]
