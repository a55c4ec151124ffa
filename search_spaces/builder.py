"""Spec -> ``nn.Module``.

One module class per block type; each takes its :class:`BlockSpec` (and the network's
defaults), never a pile of keyword arguments. Layer order and initialisation follow the TF
EfficientNet/MnasNet reference and torchvision's ResNet/MobileNet, so that parameter counts
equal the released models exactly (see ``tests/search_spaces/test_reference_counts.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effnas.search_spaces.spec import BlockSpec, NetworkSpec

_ACT: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "relu": nn.ReLU, "relu6": nn.ReLU6}


def make_activation(name: str) -> nn.Module:
    return _ACT[name](inplace=True)


class SameConv2d(nn.Conv2d):
    """Conv2d with TF "same" padding: output ``ceil(H / stride)``, extra pad bottom/right."""

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Ctx:
    """Network-wide defaults a block needs: activation, BN settings, padding mode."""

    def __init__(self, net: NetworkSpec) -> None:
        self.net = net

    def act(self, block: BlockSpec | None = None) -> nn.Module:
        name = (block.activation if block is not None else None) or self.net.activation
        return make_activation(name)

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
        if self.net.padding == "same":
            return SameConv2d(cin, cout, k, stride, padding=0, groups=groups, bias=bias)
        return nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=bias)

    def bn(self, c: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(c, eps=self.net.bn_eps, momentum=self.net.bn_momentum)

    def conv_bn(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                act: nn.Module | None = None) -> nn.Sequential:
        layers: list[nn.Module] = [self.conv(cin, cout, k, stride, groups), self.bn(cout)]
        if act is not None:
            layers.append(act)
        return nn.Sequential(*layers)


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth (Huang et al. 2016): zero whole samples of a residual branch."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class SqueezeExcite(nn.Module):
    """SE (Hu et al.): global pool, 1x1 reduce (bias), act, 1x1 expand (bias), sigmoid gate."""

    def __init__(self, channels: int, reduced: int, act: nn.Module) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = act
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * torch.sigmoid(s)


class Residual(nn.Module):
    """Base for blocks with an optional shortcut and stochastic depth on the branch."""

    shortcut: nn.Module | None

    def __init__(self, block: BlockSpec, ctx: Ctx, drop_rate: float) -> None:
        super().__init__()
        cin, cout, s = block.in_channels, block.out_channels, block.stride
        self.drop_rate = drop_rate
        self.identity = block.shortcut == "identity"
        self.shortcut = None
        if block.shortcut == "pool":
            layers: list[nn.Module] = []
            if s > 1:
                layers.append(nn.AvgPool2d(s, s, ceil_mode=True, count_include_pad=False))
            if cin != cout:
                layers += [nn.Conv2d(cin, cout, 1, bias=False), ctx.bn(cout)]
            self.shortcut = nn.Sequential(*layers)
        elif block.shortcut == "projection":
            # ResNet projection shortcut (torchvision: 1x1 conv with the stride, then BN).
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, s, bias=False), ctx.bn(cout))

    def branch(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        y = self.branch(x)
        if self.identity:
            return drop_path(y, self.drop_rate, self.training) + x
        if self.shortcut is not None:
            return drop_path(y, self.drop_rate, self.training) + self.shortcut(x)
        return y


class MBConv(Residual):
    """Inverted residual (MobileNetV2/MnasNet/EfficientNet): expand, depthwise, SE, project."""

    def __init__(self, block: BlockSpec, ctx: Ctx, drop_rate: float) -> None:
        super().__init__(block, ctx, drop_rate)
        cin, cout, mid = block.in_channels, block.out_channels, block.in_channels * block.expansion
        self.expand = ctx.conv_bn(cin, mid, 1, act=ctx.act(block)) if block.expansion != 1 else nn.Identity()
        self.dw = ctx.conv_bn(mid, mid, block.kernel, block.stride, groups=mid, act=ctx.act(block))
        self.se = (
            SqueezeExcite(mid, max(1, int(cin * block.se_ratio)), ctx.act(block))
            if block.se_ratio > 0 else nn.Identity()
        )
        self.project = ctx.conv_bn(mid, cout, 1)

    def branch(self, x: Tensor) -> Tensor:
        return self.project(self.se(self.dw(self.expand(x))))


class FusedMBConv(Residual):
    """EfficientNetV2's Fused-MBConv (google/automl ``effnetv2_model.FusedMBConvBlock``; timm ``EdgeResidual``):
    a regular kxk expand conv with the stride + BN + act, SE, 1x1 linear project + BN. With expansion 1 there
    is no expand conv: SE (if any) on the input, then the kxk project conv with the stride, BN and the
    activation (timm ``ConvBnAct``, which has no SE)."""

    def __init__(self, block: BlockSpec, ctx: Ctx, drop_rate: float) -> None:
        super().__init__(block, ctx, drop_rate)
        cin, cout, mid, k, s = (block.in_channels, block.out_channels, block.in_channels * block.expansion,
                                block.kernel, block.stride)
        fused = block.expansion != 1
        self.expand = ctx.conv_bn(cin, mid, k, s, act=ctx.act(block)) if fused else nn.Identity()
        self.se = (
            SqueezeExcite(mid, max(1, int(cin * block.se_ratio)), ctx.act(block))
            if block.se_ratio > 0 else nn.Identity()
        )
        self.project = ctx.conv_bn(mid, cout, 1) if fused else ctx.conv_bn(cin, cout, k, s, act=ctx.act(block))

    def branch(self, x: Tensor) -> Tensor:
        return self.project(self.se(self.expand(x)))


class DSConv(Residual):
    """Depthwise-separable conv as in MobileNetV1: depthwise+BN+act, (SE), pointwise+BN+act."""

    def __init__(self, block: BlockSpec, ctx: Ctx, drop_rate: float) -> None:
        super().__init__(block, ctx, drop_rate)
        cin, cout = block.in_channels, block.out_channels
        self.dw = ctx.conv_bn(cin, cin, block.kernel, block.stride, groups=cin, act=ctx.act(block))
        self.se = (
            SqueezeExcite(cin, max(1, int(cin * block.se_ratio)), ctx.act(block))
            if block.se_ratio > 0 else nn.Identity()
        )
        self.pw = ctx.conv_bn(cin, cout, 1, act=ctx.act(block))

    def branch(self, x: Tensor) -> Tensor:
        return self.pw(self.se(self.dw(x)))


class RegularConv(Residual):
    """A regular kxk conv + BN + act (MnasNet's ConvOp 'conv'), with optional SE."""

    def __init__(self, block: BlockSpec, ctx: Ctx, drop_rate: float) -> None:
        super().__init__(block, ctx, drop_rate)
        cin, cout = block.in_channels, block.out_channels
        self.conv = ctx.conv_bn(cin, cout, block.kernel, block.stride, act=ctx.act(block))
        self.se = (
            SqueezeExcite(cout, max(1, int(cin * block.se_ratio)), ctx.act(block))
            if block.se_ratio > 0 else nn.Identity()
        )

    def branch(self, x: Tensor) -> Tensor:
        return self.se(self.conv(x))


class Basic(Residual):
    """ResNet basic block: kxk conv (stride), BN, act, kxk conv, BN; add; act."""

    def __init__(self, block: BlockSpec, ctx: Ctx, drop_rate: float) -> None:
        super().__init__(block, ctx, drop_rate)
        cin, cout, k = block.in_channels, block.out_channels, block.kernel
        self.conv1 = ctx.conv_bn(cin, cout, k, block.stride, act=ctx.act(block))
        self.conv2 = ctx.conv_bn(cout, cout, k)
        self.out_act = ctx.act(block)

    def branch(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.out_act(super().forward(x))


class Bottleneck(Basic):
    """ResNet v1.5 bottleneck: 1x1 reduce, kxk (stride), 1x1 expand x``expansion``; add; act."""

    def __init__(self, block: BlockSpec, ctx: Ctx, drop_rate: float) -> None:
        Residual.__init__(self, block, ctx, drop_rate)
        cin, cout, k = block.in_channels, block.out_channels, block.kernel
        mid = cout // block.expansion
        self.conv1 = ctx.conv_bn(cin, mid, 1, act=ctx.act(block))
        self.conv2 = ctx.conv_bn(mid, mid, k, block.stride, act=ctx.act(block))
        self.conv3 = ctx.conv_bn(mid, cout, 1)
        self.out_act = ctx.act(block)

    def branch(self, x: Tensor) -> Tensor:
        return self.conv3(self.conv2(self.conv1(x)))


BLOCKS: dict[str, type[Residual]] = {
    "mbconv": MBConv, "fused_mbconv": FusedMBConv, "dsconv": DSConv, "conv": RegularConv, "basic": Basic,
    "bottleneck": Bottleneck,
}


class Network(nn.Module):
    """stem -> stages -> head -> global average pool -> dropout -> linear classifier."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        ctx = Ctx(spec)
        stem: list[nn.Module] = [
            ctx.conv(3, spec.stem_channels, spec.stem_kernel, spec.stem_stride),
            ctx.bn(spec.stem_channels), ctx.act(),
        ]
        if spec.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, padding=1))
        self.stem = nn.Sequential(*stem)
        rates = iter(spec.drop_rates())
        stages = []
        for stage in spec.stages:
            blocks = [BLOCKS[b.op](b, ctx, next(rates)) for b in stage.layers()]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = (
            ctx.conv_bn(spec.stages[-1].out_channels, spec.head_channels, 1, act=ctx.act())
            if spec.head_channels else nn.Identity()
        )
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.feature_channels, spec.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.classifier.weight.is_meta:  # a skeleton without storage (nas.estimators.supernet): nothing to set
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x).mean((2, 3))
        return self.classifier(self.dropout(x))


def build(spec: NetworkSpec) -> Network:
    """Build the PyTorch model of ``spec`` (random initialisation, training mode)."""
    return Network(spec)
