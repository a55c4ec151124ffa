"""One stage of an architecture as frozen data: :class:`BlockSpec`, its choices and bounds.

Apart from :mod:`effnas.search_spaces.spec` (the whole network) so that the block-string codec
(:mod:`effnas.search_spaces.codec`) can build blocks and the network can read block strings
without the two modules importing each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from effnas.search_spaces.common.errors import UserError

OPS = ("mbconv", "fused_mbconv", "dsconv", "conv", "basic", "bottleneck")
SKIPS = ("identity", "pool", "none")
ACTIVATIONS = ("silu", "relu", "relu6")
PADDINGS = ("symmetric", "same")
#: Bounds that no trainable network reaches (B7 stacks at most 13 blocks per stage and 640
#: channels); larger values are typos or hostile input that would hang the builder.
MAX_REPEATS = 1000
MAX_CHANNELS = 1 << 16
MAX_KERNEL = 31
MAX_RESOLUTION = 8192


def _check_int(name: str, value: object, *, low: int, allowed: tuple[int, ...] = (), high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be an integer, got {value!r}")
    if high is not None and value > high:
        raise UserError(f"{name} must be <= {high}, got {value}: no network that trains needs more")
    if allowed and value not in allowed:
        raise UserError(f"{name} must be one of {allowed}, got {value}")
    if value < low:
        raise UserError(f"{name} must be >= {low}, got {value}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} {value!r}: expected one of {', '.join(choices)}")


@dataclass(frozen=True)
class BlockSpec:
    """One stage: a block type repeated ``repeats`` times.

    Args:
        op: ``mbconv`` (inverted residual: 1x1 expand, kxk depthwise, SE, 1x1 linear project),
            ``fused_mbconv`` (EfficientNetV2's Fused-MBConv: the expand conv and the depthwise conv
            fused into one regular kxk conv with the stride, then SE and a 1x1 linear project; with
            expansion 1 a single kxk conv + BN + activation, after SE when there is one; google/automl
            ``effnetv2_model.FusedMBConvBlock``), ``dsconv`` (MobileNetV1 separable conv: kxk
            depthwise then 1x1 pointwise, both with BN and activation), ``conv`` (regular kxk conv,
            BN, activation),
            ``basic`` / ``bottleneck`` (ResNet blocks; ``expansion`` is the bottleneck's
            channel expansion, 4 in ResNet-50).
        kernel: odd spatial kernel size of the depthwise/regular (fused: the kxk) conv.
        stride: 1 or 2, applied by the first block of the stage only.
        expansion: mbconv / fused_mbconv expand ratio (1 means no expansion conv); bottleneck expansion.
        in_channels, out_channels: channels into the first block and out of every block.
        se_ratio: squeeze-excitation ratio in [0, 1], relative to the *block input* channels
            (``max(1, int(in * se_ratio))`` squeezed channels, as in TF EfficientNet).
        skip: ``identity`` (residual where stride 1 and in == out; ResNet blocks project
            otherwise), ``pool`` (MnasNet's pooling skip: average-pool by the stride and a
            1x1 conv+BN projection when channels differ) or ``none``.
        repeats: number of blocks in the stage (>= 1).
        activation: overrides the network's activation for this stage; ``None`` inherits.
    """

    op: str = "mbconv"
    kernel: int = 3
    stride: int = 1
    expansion: int = 1
    in_channels: int = 32
    out_channels: int = 16
    se_ratio: float = 0.0
    skip: str = "identity"
    repeats: int = 1
    activation: str | None = None

    def __post_init__(self) -> None:
        _check_choice("op", self.op, OPS)
        _check_int("kernel", self.kernel, low=1, high=MAX_KERNEL)
        if self.kernel % 2 == 0:
            raise UserError(f"kernel must be odd, got {self.kernel}")
        _check_int("stride", self.stride, low=1, allowed=(1, 2))
        _check_int("expansion", self.expansion, low=1, high=MAX_CHANNELS)
        _check_int("in_channels", self.in_channels, low=1, high=MAX_CHANNELS)
        _check_int("out_channels", self.out_channels, low=1, high=MAX_CHANNELS)
        _check_int("repeats", self.repeats, low=1, high=MAX_REPEATS)
        if isinstance(self.se_ratio, bool) or not isinstance(self.se_ratio, int | float):
            raise UserError(f"se_ratio must be a number, got {self.se_ratio!r}")
        if not 0.0 <= float(self.se_ratio) <= 1.0:
            raise UserError(f"se_ratio must be in [0, 1], got {self.se_ratio}")
        _check_choice("skip", self.skip, SKIPS)
        if self.activation is not None:
            _check_choice("activation", self.activation, ACTIVATIONS)
        if self.op == "bottleneck" and self.out_channels % self.expansion:
            raise UserError(
                f"bottleneck out_channels {self.out_channels} must be divisible by its "
                f"expansion {self.expansion}"
            )

    @property
    def shortcut(self) -> str:
        """The shortcut the block gets (builder, cost counts and viewer all ask here):

        ``identity`` where stride is 1 and channels stay (skip ``identity`` or ``pool``);
        otherwise ``pool`` for skip ``pool`` (average-pool by the stride, then a 1x1 conv + BN
        when channels change), ``projection`` for ResNet ``basic``/``bottleneck`` blocks with skip
        ``identity`` (strided 1x1 conv + BN, as torchvision), else ``none``. Stochastic depth
        applies only to blocks with a shortcut.

        >>> [BlockSpec(in_channels=16, out_channels=16).shortcut, BlockSpec(stride=2).shortcut,
        ...  BlockSpec(op="basic", stride=2).shortcut, BlockSpec(stride=2, skip="pool").shortcut]
        ['identity', 'none', 'projection', 'pool']
        """
        if self.skip == "none":
            return "none"
        if self.stride == 1 and self.in_channels == self.out_channels:
            return "identity"
        if self.skip == "pool":
            return "pool"
        return "projection" if self.op in ("basic", "bottleneck") else "none"

    def layers(self) -> Iterator[BlockSpec]:
        """The stage expanded into single blocks (first one strided, the rest stride 1)."""
        yield dataclasses.replace(self, repeats=1)
        for _ in range(self.repeats - 1):
            yield dataclasses.replace(
                self, repeats=1, stride=1, in_channels=self.out_channels
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlockSpec:
        _reject_unknown(cls, data, "block")
        return cls(**data)


def _reject_unknown(cls: type, data: dict[str, Any], what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(
            f"unknown {what} field {unknown[0]!r}: expected one of {', '.join(sorted(known))}"
        )
