"""Architectures as plain, frozen data.

A network is a :class:`NetworkSpec`: a stem, a tuple of stages (each a :class:`BlockSpec`
whose ``repeats`` says how many times the block is stacked), a head and a classifier.
Only the first block of a stage has the stage's stride and channel change (EfficientNet
paper Table 1; TF ``efficientnet_builder``). Specs are never mutated: scaling and search
derive new specs with :func:`dataclasses.replace`.

Validation happens here, at construction, so that an impossible spec cannot exist; every
error is a one-line ``ValueError`` that names the bad value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effnas.search_spaces.block import (
    ACTIVATIONS,
    MAX_CHANNELS,
    MAX_KERNEL,
    MAX_RESOLUTION,
    PADDINGS,
    BlockSpec,
    _check_choice,
    _check_int,
    _reject_unknown,
)
from effnas.search_spaces.codec import decode_block, encode_block
from effnas.search_spaces.common.atomic import atomic_text
from effnas.search_spaces.common.errors import UserError, absent, user_file


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network: stem -> stages -> head (1x1 conv) -> global pool -> dropout -> linear.

    Defaults are EfficientNet-B0's (paper Table 1, TF reference implementation): SiLU,
    BatchNorm momentum 0.01 (TF 0.99) and eps 1e-3, dropout 0.2, drop-connect 0.2, 224 px.

    Args:
        name: a label; not part of the architecture's identity for cost purposes.
        stem_channels, stem_kernel, stem_stride: the first regular conv.
        stem_pool: a 3x3 stride-2 max-pool after the stem (ResNet).
        stages: the stages, in order.
        head_channels: channels of the final 1x1 conv; 0 means no head conv (ResNet,
            MobileNetV1 classify straight from the last stage).
        num_classes: classifier outputs.
        dropout: dropout probability before the classifier.
        drop_connect_rate: stochastic-depth rate of the last block; block ``i`` of ``n``
            drops with ``rate * i / n`` (TF EfficientNet).
        resolution: the default input size in pixels (square).
        activation: default activation (stages may override).
        bn_momentum, bn_eps: PyTorch BatchNorm momentum (= 1 - TF momentum) and epsilon.
        padding: ``symmetric`` (PyTorch ``k // 2``) or ``same`` (TF, asymmetric for stride 2);
            output sizes are equal for odd kernels, so costs do not depend on it.
    """

    name: str = "network"
    stem_channels: int = 32
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_pool: bool = False
    stages: tuple[BlockSpec, ...] = field(default_factory=tuple)
    head_channels: int = 1280
    num_classes: int = 1000
    dropout: float = 0.2
    drop_connect_rate: float = 0.2
    resolution: int = 224
    activation: str = "silu"
    bn_momentum: float = 0.01
    bn_eps: float = 1e-3
    padding: str = "symmetric"

    def __post_init__(self) -> None:
        if not isinstance(self.stages, tuple):
            object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise UserError(f"network {self.name!r} has no stages: give at least one block")
        for s in self.stages:
            if not isinstance(s, BlockSpec):
                raise UserError(f"stages must be BlockSpec objects, got {type(s).__name__}")
        _check_int("stem_channels", self.stem_channels, low=1, high=MAX_CHANNELS)
        _check_int("stem_kernel", self.stem_kernel, low=1, high=MAX_KERNEL)
        _check_int("stem_stride", self.stem_stride, low=1, allowed=(1, 2))
        _check_int("head_channels", self.head_channels, low=0, high=MAX_CHANNELS)
        _check_int("num_classes", self.num_classes, low=1, high=MAX_CHANNELS)
        _check_int("resolution", self.resolution, low=1, high=MAX_RESOLUTION)
        for name in ("dropout", "drop_connect_rate"):
            v = getattr(self, name)
            if not 0.0 <= float(v) < 1.0:
                raise UserError(f"{name} must be in [0, 1), got {v}")
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("padding", self.padding, PADDINGS)
        if not 0.0 < self.bn_momentum <= 1.0:
            raise UserError(f"bn_momentum must be in (0, 1], got {self.bn_momentum}")
        if not self.bn_eps > 0:
            raise UserError(f"bn_eps must be > 0, got {self.bn_eps}")
        prev = self.stem_channels
        for i, s in enumerate(self.stages):
            if s.in_channels != prev:
                raise UserError(
                    f"stage {i} in_channels {s.in_channels} does not match the "
                    f"{prev} channels coming into it"
                )
            prev = s.out_channels

    @property
    def num_blocks(self) -> int:
        return sum(s.repeats for s in self.stages)

    def drop_rates(self) -> tuple[float, ...]:
        """Stochastic-depth rate of every block, in order: ``drop_connect_rate * i / num_blocks``
        for block ``i = 0, 1, ...`` (TF EfficientNet), so the first block never drops.

        >>> spec = NetworkSpec(stages=(BlockSpec(repeats=2), BlockSpec(in_channels=16, repeats=2)))
        >>> [round(r, 4) for r in spec.drop_rates()]
        [0.0, 0.05, 0.1, 0.15]
        """
        n = self.num_blocks
        return tuple(self.drop_connect_rate * i / n for i in range(n))

    @property
    def feature_channels(self) -> int:
        return self.head_channels or self.stages[-1].out_channels

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"] = [s.to_dict() for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        if not isinstance(data, dict):
            raise UserError(f"a network spec must be a JSON object, got {type(data).__name__}")
        _reject_unknown(cls, data, "network")
        data = dict(data)
        stages = []
        for s in data.get("stages", []):
            if isinstance(s, str):
                stages.append(decode_block(s))
            elif isinstance(s, dict):
                stages.append(BlockSpec.from_dict(s))
            else:
                raise UserError(f"a stage must be a block string or an object, got {s!r}")
        data["stages"] = tuple(stages)
        return cls(**data)

    def to_json(self, *, block_strings: bool = True) -> str:
        """JSON text; stages as TF-style block strings (default) or as objects."""
        d = self.to_dict()
        if block_strings:
            d["stages"] = [encode_block(s) for s in self.stages]
        return json.dumps(d, indent=2)

    @classmethod
    def from_json(cls, text: str) -> NetworkSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"malformed spec JSON: {e}") from e
        except RecursionError as e:
            raise UserError("malformed spec JSON: nested too deeply to parse") from e
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write the spec JSON atomically (:func:`effnas.search_spaces.common.atomic.atomic_text`)."""
        atomic_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> NetworkSpec:
        p = Path(path)
        with user_file(p, "spec file", "give a path to a spec JSON"):
            if not p.is_file():
                raise UserError(f"spec file {str(p)!r} {absent(p)}: give a path to a spec JSON")
            text = p.read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"malformed spec JSON in {str(p)!r}: {e}") from e
        except RecursionError as e:
            raise UserError(f"spec file {str(p)!r} is nested too deeply to parse: give a path to a spec JSON") from e
        try:
            return cls.from_dict(data)
        except UserError as e:  # a bad value inside: say which file holds it
            raise UserError(f"spec file {str(p)!r}: {e}") from e


def safe_name(text: str, *, limit: int = 96) -> str:
    """``text`` as one file-name component: characters other than letters, digits, ``.``, ``_``,
    ``-`` and ``+`` become ``_``, leading dots are dropped (no ``..``, no hidden files) and long
    names are cut to ``limit`` characters with a hash of the whole name appended (distinct names
    stay distinct). Spec names and other user text pass through this before becoming paths.

    >>> safe_name("../../etc/passwd"), safe_name("b0-phi1"), safe_name(""), len(safe_name("x" * 300))
    ('_.._etc_passwd', 'b0-phi1', '_', 96)
    """
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", str(text)).lstrip(".") or "_"
    if len(name) > limit:
        digest = hashlib.sha1(str(text).encode()).hexdigest()[:8]
        name = f"{name[: limit - 9]}-{digest}"
    return name
