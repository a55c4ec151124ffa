"""NAS-Bench-201 cells as real PyTorch networks (the benchmark's own macro skeleton).

The skeleton of NAS-Bench-201 (Dong & Yang, ICLR 2020; ``TinyNetwork`` of its code): a 3x3
convolution stem to ``C = 16`` channels with BatchNorm, three stages of ``N = 5`` cells at 16, 32
and 64 channels, a residual reduction block between stages (ReLU-Conv3x3-BN stride 2,
ReLU-Conv3x3-BN, and a 2x2 average pool + 1x1 convolution shortcut), then BatchNorm-ReLU, global
average pooling and a linear classifier. A cell has 4 nodes; node ``i`` is the sum of ``op(node
j)`` over its 6 edges ``j -> i`` (:data:`~effnas.nas.benchmarks.nasbench201.EDGES`), and node 3 is the
output. The operations: ``none`` (zeros), ``skip_connect`` (identity), ``nor_conv_1x1`` and
``nor_conv_3x3`` (ReLU-Conv-BN), ``avg_pool_3x3`` (stride 1, padding not counted).

:func:`build_cell_network` counts the same parameters as the table's ``params`` (BatchNorm
affine): e.g. 0.073306 M for the all-``none`` cell and 1.531546 M for the all-``nor_conv_3x3``
cell, exactly (``tests/nas/test_zerocost.py`` checks random cells).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from effnas.nas.benchmarks.nasbench201 import EDGES, OPS, PARAMS
from effnas.search_spaces.common.errors import UserError


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    """The ``none`` operation: zeros of the input's shape (it keeps the graph, as NAS-Bench-201's)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    """One of the five operations at ``channels`` (stride 1 inside a cell)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise UserError(f"unknown NAS-Bench-201 operation {name!r}: expected one of {', '.join(OPS)}")


class Cell(nn.Module):
    """The 4-node cell of ``ops`` (parameter name -> operation, as :data:`PARAMS`)."""

    def __init__(self, ops: Mapping[str, Any], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_op(str(ops[p]), channels) for p in PARAMS)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for i in (1, 2, 3):
            nodes.append(sum((op(nodes[j]) for op, (n, j) in zip(self.edges, EDGES, strict=True) if n == i),
                             torch.zeros((), dtype=x.dtype, device=x.device)))
        return nodes[3]


class ResidualReduction(nn.Module):
    """Between stages: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus AvgPool2x2-Conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class CellNetwork(nn.Module):
    """NAS-Bench-201's ``TinyNetwork``: stem, 3 x ``cells`` cells with reductions, head."""

    def __init__(self, ops: Mapping[str, Any], *, num_classes: int = 10, channels: int = 16, cells: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers += [Cell(ops, c) for _ in range(cells)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.pool(x).flatten(1))


def build_cell_network(ops: Mapping[str, Any], *, num_classes: int = 10) -> CellNetwork:
    """The NAS-Bench-201 network of cell ``ops`` (the 6 ``edge_i_j`` choices).

    >>> from effnas.nas.benchmarks.nasbench201 import parse_arch
    >>> cell = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    >>> net = build_cell_network(parse_arch(cell))
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    missing = [p for p in PARAMS if p not in ops]
    if missing:
        raise UserError(f"a NAS-Bench-201 cell needs all 6 edges: {missing[0]!r} is missing "
                         f"(give {', '.join(PARAMS)})")
    return CellNetwork(ops, num_classes=num_classes)


__all__ = ["Cell", "CellNetwork", "ResidualReduction", "build_cell_network", "make_op"]
