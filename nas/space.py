"""Search spaces as data: a base layout plus per-block choice lists.

A :class:`SearchSpace` is a base network (stem, seven block strings, head) and, for every
block, the same lists of choices. A sample picks one value from each list for each block
and becomes a :class:`~search_spaces.NetworkSpec`; Optuna parameter names are
``b{block}_{choice}`` (e.g. ``b3_kernel``), so any sampler can drive it.

Choice names (all optional; an absent choice keeps the base block's value):

- ``conv_op``: ``conv`` (regular kxk conv), ``dsconv`` (depthwise-separable conv in TF
  MnasNet's form: an MBConv of expansion 1, i.e. kxk depthwise + BN + act, 1x1 linear
  projection; tensorflow/tpu ``mnasnet_models.py`` writes MnasNet's SepConv as ``e1``
  strings), ``mbconv_e<N>`` (MBConv with expansion N);
- ``conv_type``: ``mbconv`` or ``fused_mbconv`` (EfficientNetV2's choice of block; the expansion
  is then ``expansion``'s, exclusive with ``conv_op``); the space's ``se_by_conv_type`` can tie the
  SE ratio to it (V2: none on Fused-MBConv, 0.25 on MBConv);
- ``kernel`` (odd ints), ``se_ratio`` (floats in [0, 1]), ``skip`` (``identity``, ``pool``,
  ``none``), ``expansion`` (ints; MBConv or Fused-MBConv expansion, exclusive with ``conv_op``);
- ``filters``: output-channel multipliers of the base block, rounded to ``channel_divisor``
  (TF ``round_filters``);
- ``layers``: repeat deltas added to the base block's repeats (at least 1 remains);
  ``repeats``: absolute repeats (exclusive with ``layers``).

Space size is the product of the list lengths over all blocks (MnasNet §4.1: S^B).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from effnas.nas.benchmarks.cell_space import CELL_SPACES, CellSpace
from effnas.nas.benchmarks.mbconv import CHOICES as BENCH_CHOICES
from effnas.nas.benchmarks.mbconv import SPACE as BENCH_SPACE
from effnas.search_spaces import BlockSpec, NetworkSpec, decode_block, encode_block, round_filters
from effnas.search_spaces.block import SKIPS
from effnas.search_spaces.common.errors import UserError, absent, user_file
from effnas.search_spaces.zoo.efficientnetv2 import V2_S_STAGES

CHOICE_KEYS = ("conv_op", "conv_type", "kernel", "se_ratio", "skip", "filters", "layers", "expansion", "repeats")
#: ``conv_type`` values: EfficientNetV2's MBConv and Fused-MBConv (its search, Sec. 3.3).
CONV_TYPES = ("mbconv", "fused_mbconv")
_CONV_OP = re.compile(r"^(conv|dsconv|mbconv_e(\d+))$")


def parse_conv_op(name: str) -> tuple[str, int]:
    """A ``conv_op`` choice as a :class:`BlockSpec` ``(op, expansion)`` pair.

    >>> parse_conv_op("mbconv_e6"), parse_conv_op("dsconv"), parse_conv_op("conv")
    (('mbconv', 6), ('mbconv', 1), ('conv', 1))
    """
    m = _CONV_OP.match(str(name))
    if not m:
        raise UserError(f"unknown conv_op {name!r}: expected conv, dsconv or mbconv_e<N> (e.g. mbconv_e6)")
    if m.group(1) == "conv":
        return "conv", 1
    if m.group(1) == "dsconv":
        return "mbconv", 1
    return "mbconv", int(m.group(2))


@dataclass(frozen=True)
class SearchSpace:
    """A factorized hierarchical search space (MnasNet §4.1), as data.

    Args:
        name: a label, stored with every study.
        stages: the base layout, one TF-style block string per searchable block.
        choices: choice name -> list of values, applied to every block.
        stem_channels, head_channels, activation, resolution, num_classes: the base network.
        channel_divisor: output channels are rounded to multiples of this (TF uses 8).
        dropout, drop_connect_rate: of the sampled networks (B0: 0.2 and 0.2; MnasNet: 0.2, none).
        se_by_conv_type: the SE ratio a block gets with each ``conv_type`` value (a value not listed
            keeps the base block's); exclusive with the ``se_ratio`` choice.
    """

    name: str
    stages: tuple[str, ...]
    choices: Mapping[str, tuple[Any, ...]]
    stem_channels: int = 32
    head_channels: int = 1280
    activation: str = "relu"
    resolution: int = 224
    num_classes: int = 1000
    channel_divisor: int = 8
    dropout: float = 0.2
    drop_connect_rate: float = 0.0
    se_by_conv_type: Mapping[str, float] = field(default_factory=dict)
    base: tuple[BlockSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stages:
            raise UserError(f"search space {self.name!r} has no stages: give at least one base block string")
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "base", tuple(decode_block(s) for s in self.stages))
        choices = {}
        for key, values in dict(self.choices).items():
            if key not in CHOICE_KEYS:
                raise UserError(f"unknown choice {key!r} in space {self.name!r}: expected one of "
                                 f"{', '.join(CHOICE_KEYS)}")
            if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
                raise UserError(f"choice {key!r} must be a list of values, got {values!r}")
            vals = tuple(values)
            if not vals:
                raise UserError(f"choice list {key!r} of space {self.name!r} is empty: give at least one value")
            if len(set(vals)) != len(vals):
                raise UserError(f"choice list {key!r} has duplicates {list(vals)}: list each value once")
            choices[key] = vals
        for a, b in (("conv_op", "expansion"), ("conv_op", "conv_type"), ("layers", "repeats")):
            if a in choices and b in choices:
                raise UserError(f"choices {a!r} and {b!r} both set the same field: keep one of them")
        object.__setattr__(self, "choices", choices)
        for k in choices.get("conv_op", ()):
            parse_conv_op(k)
        for t in choices.get("conv_type", ()):
            if t not in CONV_TYPES:
                raise UserError(f"unknown conv_type {t!r}: expected one of {', '.join(CONV_TYPES)}")
        se = dict(self.se_by_conv_type)
        if se and "se_ratio" in choices:
            raise UserError("se_by_conv_type and the se_ratio choice both set the SE ratio: keep one of them")
        for t, r in se.items():
            if t not in CONV_TYPES or isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r <= 1:
                raise UserError(f"se_by_conv_type maps {', '.join(CONV_TYPES)} to an SE ratio in [0, 1], got "
                                 f"{t!r}: {r!r}")
        object.__setattr__(self, "se_by_conv_type", se)
        for m in choices.get("filters", ()):
            if isinstance(m, bool) or not isinstance(m, int | float) or m <= 0:
                raise UserError(f"filters multiplier must be a number > 0, got {m!r}")
        for s in choices.get("skip", ()):
            if s not in SKIPS:
                raise UserError(f"unknown skip {s!r}: expected one of {', '.join(SKIPS)}")
        # Every single choice must build: check each value once on the base blocks.
        for key, vals in choices.items():
            for v in vals:
                self._block(0, self.base[0], {key: v}, self.base[0].in_channels)
        self.to_spec(self.default_params())

    # -- sizes and Optuna distributions -------------------------------------------------

    @property
    def num_blocks(self) -> int:
        return len(self.base)

    @property
    def size(self) -> int:
        """Number of distinct parameter assignments: (prod of list lengths) ** blocks."""
        return math.prod(len(v) for v in self.choices.values()) ** self.num_blocks

    def distributions(self) -> dict[str, optuna.distributions.CategoricalDistribution]:
        return {
            f"b{i}_{key}": optuna.distributions.CategoricalDistribution(list(vals))
            for i in range(self.num_blocks)
            for key, vals in self.choices.items()
        }

    def default_params(self) -> dict[str, Any]:
        """The first value of every choice list."""
        return {n: d.choices[0] for n, d in self.distributions().items()}

    def sample(self, trial: optuna.trial.BaseTrial | Any) -> dict[str, Any]:
        """Ask ``trial`` (an Optuna trial, or anything with ``suggest_categorical``) for one
        value of every choice; returns the parameters (see :meth:`to_spec`)."""
        return {
            name: trial.suggest_categorical(name, list(dist.choices))
            for name, dist in self.distributions().items()
        }

    # -- params <-> specs ----------------------------------------------------------------

    def _block(self, i: int, base: BlockSpec, chosen: Mapping[str, Any], in_ch: int) -> BlockSpec:
        changes: dict[str, Any] = {"in_channels": in_ch}
        if "conv_op" in chosen:
            changes["op"], changes["expansion"] = parse_conv_op(chosen["conv_op"])
        if "conv_type" in chosen:
            changes["op"] = chosen["conv_type"]
            if chosen["conv_type"] in self.se_by_conv_type:
                changes["se_ratio"] = float(self.se_by_conv_type[chosen["conv_type"]])
        if "expansion" in chosen:
            changes["expansion"] = int(chosen["expansion"])
        if "kernel" in chosen:
            changes["kernel"] = int(chosen["kernel"])
        if "se_ratio" in chosen:
            changes["se_ratio"] = float(chosen["se_ratio"])
        if "skip" in chosen:
            changes["skip"] = chosen["skip"]
        if "filters" in chosen:
            changes["out_channels"] = round_filters(base.out_channels, float(chosen["filters"]),
                                                    divisor=self.channel_divisor)
        if "layers" in chosen:
            changes["repeats"] = max(1, base.repeats + int(chosen["layers"]))
        if "repeats" in chosen:
            changes["repeats"] = int(chosen["repeats"])
        try:
            return dataclasses.replace(base, **changes)
        except ValueError as e:
            raise UserError(f"space {self.name!r} block {i}: {e}") from e

    def to_spec(self, params: Mapping[str, Any], *, num_classes: int | None = None,
                resolution: int | None = None, name: str | None = None) -> NetworkSpec:
        """The network for one parameter assignment (missing parameters: the base value)."""
        stages = []
        ch = self.stem_channels
        for i, base in enumerate(self.base):
            chosen = {k: params[f"b{i}_{k}"] for k in self.choices if f"b{i}_{k}" in params}
            block = self._block(i, base, chosen, ch)
            stages.append(block)
            ch = block.out_channels
        return NetworkSpec(
            name=name or f"{self.name}_sample", stem_channels=self.stem_channels, stages=tuple(stages),
            head_channels=self.head_channels, activation=self.activation,
            num_classes=num_classes or self.num_classes, resolution=resolution or self.resolution,
            dropout=self.dropout, drop_connect_rate=self.drop_connect_rate,
        )

    def params_for(self, spec: NetworkSpec) -> dict[str, Any]:
        """The parameters that give ``spec``'s stages, or a ``ValueError`` naming the first
        block the space cannot express."""
        if len(spec.stages) != self.num_blocks:
            raise UserError(f"spec {spec.name!r} has {len(spec.stages)} stages, space {self.name!r} has "
                             f"{self.num_blocks}: it cannot be expressed")
        if spec.stem_channels != self.stem_channels:
            raise UserError(f"spec {spec.name!r} stem {spec.stem_channels} != space stem {self.stem_channels}")
        params: dict[str, Any] = {}
        ch = self.stem_channels
        for i, (base, want) in enumerate(zip(self.base, spec.stages, strict=True)):
            found = None
            keys = list(self.choices)
            for combo in _product([self.choices[k] for k in keys]):
                chosen = dict(zip(keys, combo, strict=True))
                if _same_block(self._block(i, base, chosen, ch), want):
                    found = chosen
                    break
            if found is None:
                raise UserError(f"space {self.name!r} cannot express block {i} {encode_block(want)!r} "
                                 f"of {spec.name!r}")
            params.update({f"b{i}_{k}": v for k, v in found.items()})
            ch = want.out_channels
        return params

    # -- files ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        d["stages"] = list(self.stages)
        d["choices"] = {k: list(v) for k, v in self.choices.items()}
        d["se_by_conv_type"] = dict(self.se_by_conv_type)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown search-space field {unknown[0]!r}: expected one of {', '.join(sorted(known))}")
        for req in ("name", "stages", "choices"):
            if req not in data:
                raise UserError(f"search-space file lacks {req!r}: give name, stages and choices")
        d = dict(data)
        d["stages"] = tuple(d["stages"])
        if not isinstance(d["choices"], Mapping):
            raise UserError(f"choices must be a table of lists, got {d['choices']!r}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """A space from a ``.json`` or ``.toml`` file with the fields of :meth:`to_dict`."""
        p = Path(path)
        with user_file(p, "search-space file", "give a built-in space name (mnasnet, efficientnet, ...) or a "
                       ".json/.toml file"):
            if not p.is_file():
                raise UserError(f"search-space file {str(p)!r} {absent(p)}: give a built-in space name "
                                 f"(mnasnet, efficientnet, ...) or a .json/.toml file")
            text = p.read_text()
        try:
            data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as e:
            raise UserError(f"malformed search-space file {str(p)!r}: {e or 'nested too deeply to parse'}") from e
        return cls.from_dict(data)


def _same_block(a: BlockSpec, b: BlockSpec) -> bool:
    return dataclasses.replace(a, activation=None) == dataclasses.replace(b, activation=None)


def _product(lists: list[tuple[Any, ...]]) -> Any:
    return itertools.product(*lists)


#: MobileNetV2's layout (Sandler et al. 2018, Table 2), MnasNet's base (MnasNet §4.1).
MOBILENET_V2_LAYOUT = (
    "r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r3_k3_s22_e6_i24_o32", "r4_k3_s22_e6_i32_o64",
    "r3_k3_s11_e6_i64_o96", "r3_k3_s22_e6_i96_o160", "r1_k3_s11_e6_i160_o320",
)
#: EfficientNet-B0's layout (EfficientNet paper Table 1).
B0_LAYOUT = (
    "r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25", "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)
_MNAS = {
    "conv_op": ("conv", "dsconv", "mbconv_e3", "mbconv_e6"), "kernel": (3, 5), "se_ratio": (0.0, 0.25),
    "skip": ("identity", "pool", "none"), "layers": (-1, 0, 1),
}

_V2 = {"conv_type": CONV_TYPES, "kernel": (3, 5), "expansion": (1, 4, 6), "layers": (-1, 0, 1)}
_V2_SE = {"mbconv": 0.25, "fused_mbconv": 0.0}

SPACES: dict[str, SearchSpace] = {
    # The paper's lists verbatim: filters {0.75, 1.0, 1.25} x MobileNetV2's.
    "mnasnet_paper": SearchSpace("mnasnet_paper", MOBILENET_V2_LAYOUT, {**_MNAS, "filters": (0.75, 1.0, 1.25)}),
    # The default adds 1.2 to the filter multipliers: MnasNet-A1's 112 (= 96 x 1.17) and
    # EfficientNet-B0's 112 and 192 (= 160 x 1.2) are not {0.75, 1, 1.25} x MobileNetV2's, but
    # round_filters(96, 1.2) = 112 and round_filters(160, 1.2) = 192. With it the space expresses
    # MnasNet-A1, MnasNet-B1 and EfficientNet-B0 (tests/nas/test_space.py).
    "mnasnet": SearchSpace("mnasnet", MOBILENET_V2_LAYOUT, {**_MNAS, "filters": (0.75, 1.0, 1.2, 1.25)}),
    # A smaller EfficientNet-style space around B0: kernel, expansion, SE, repeats per stage.
    "efficientnet": SearchSpace("efficientnet", B0_LAYOUT, {
        "kernel": (3, 5), "expansion": (1, 3, 6), "se_ratio": (0.0, 0.25), "layers": (-1, 0, 1),
    }, activation="silu", drop_connect_rate=0.2),
    # Narrow, 32 px, 10 classes: for tests and CPU demos.
    "tiny": SearchSpace("tiny", (
        "r1_k3_s11_e1_i16_o16_se0.25", "r1_k3_s22_e4_i16_o24_se0.25", "r1_k5_s22_e4_i24_o32_se0.25",
        "r1_k3_s22_e4_i32_o48_se0.25",
    ), {"conv_op": ("dsconv", "mbconv_e3", "mbconv_e6"), "kernel": (3, 5), "se_ratio": (0.0, 0.25),
        "filters": (0.75, 1.0), "layers": (0, 1)},
        stem_channels=16, head_channels=128, activation="silu", resolution=32, num_classes=10),
    # MnasNet-style choices around efficientnet_nano (16 px, 8x downsampling): the CPU demo's space.
    "nano": SearchSpace("nano", (
        "r1_k3_s11_e1_i16_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o32_se0.25",
        "r2_k3_s11_e4_i32_o48_se0.25", "r1_k5_s11_e6_i48_o64_se0.25",
    ), {"conv_op": ("dsconv", "mbconv_e3", "mbconv_e4", "mbconv_e6"), "kernel": (3, 5), "se_ratio": (0.0, 0.25),
        "filters": (0.75, 1.0, 1.25), "layers": (-1, 0, 1)},
        stem_channels=16, head_channels=256, activation="silu", resolution=16, num_classes=10,
        drop_connect_rate=0.1),
    # The nano layout at CIFAR's native 32 px with narrower filters (0.5x, 0.75x): about 0.5-3 M
    # MACs, so a family up to phi = 3 trains on a CPU (experiments/config/presets/cifar10-cpu.toml).
    "cifar": SearchSpace("cifar", (
        "r1_k3_s11_e1_i16_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o32_se0.25",
        "r2_k3_s11_e4_i32_o48_se0.25", "r1_k5_s11_e6_i48_o64_se0.25",
    ), {"conv_op": ("dsconv", "mbconv_e3", "mbconv_e4", "mbconv_e6"), "kernel": (3, 5), "se_ratio": (0.0, 0.25),
        "filters": (0.5, 0.75), "layers": (-1, 0, 1)},
        stem_channels=16, head_channels=256, activation="silu", resolution=32, num_classes=10,
        drop_connect_rate=0.1),
    # Small enough to train every network: the ground-truth table's space (``effnas bench-build``,
    # nas/benchmarks/mbconv.py). Three MBConv stages, kernel {3, 5, 7} x expansion {3, 6} per stage:
    # 6^3 = 216 networks of 1.2-2.9 M MACs, 32 px, 10 classes.
    BENCH_SPACE: SearchSpace(BENCH_SPACE, (
        "r1_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o32_se0.25", "r2_k3_s11_e6_i32_o48_se0.25",
    ), BENCH_CHOICES,
        stem_channels=16, head_channels=128, activation="silu", resolution=32, num_classes=10,
        drop_connect_rate=0.1),
    # EfficientNetV2's training-aware search (Sec. 3.3) around V2-S: per stage MBConv or Fused-MBConv,
    # kernel {3, 5}, expansion {1, 4, 6}, repeats {-1, 0, +1}; V2-S's channels (no filter choice: "reusing
    # the same channel sizes from the backbone") and SE as V2 places it (none on Fused-MBConv). 128 px:
    # the paper trains candidates "with reduced image size" without saying which. 36^6 = 2.2e9 networks.
    "efficientnetv2": SearchSpace("efficientnetv2", V2_S_STAGES, _V2, stem_channels=24, activation="silu",
                                  resolution=128, drop_connect_rate=0.2, se_by_conv_type=_V2_SE),
    # The same choices on V2-S's layout at a third of its widths and two blocks a stage, 32 px, 10
    # classes: for tests and CPU demos.
    "efficientnetv2_tiny": SearchSpace("efficientnetv2_tiny", (
        "r2_k3_s1_e1_i8_o8_c1", "r2_k3_s2_e4_i8_o16_c1", "r2_k3_s2_e4_i16_o24_c1",
        "r2_k3_s2_e4_i24_o40_se0.25", "r2_k3_s1_e6_i40_o56_se0.25", "r2_k3_s2_e6_i56_o88_se0.25",
    ), _V2, stem_channels=8, head_channels=256, activation="silu", resolution=32, num_classes=10,
        drop_connect_rate=0.1, se_by_conv_type=_V2_SE),
}


def get_space(ref: str | SearchSpace | CellSpace) -> SearchSpace | CellSpace:
    """A built-in space by name (``mnasnet``, ``mnasnet_paper``, ``efficientnet``, ``efficientnetv2``, ``tiny``,
    ``nano``, ..., and the benchmark table ``nasbench201``) or a ``.json`` / ``.toml`` file."""
    if isinstance(ref, SearchSpace | CellSpace):
        return ref
    if ref in SPACES:
        return SPACES[ref]
    if ref in CELL_SPACES:
        return CELL_SPACES[ref]
    if ref.endswith((".json", ".toml")) or Path(ref).is_file():
        return SearchSpace.load(ref)
    raise UserError(f"unknown search space {ref!r}: expected one of {', '.join([*SPACES, *CELL_SPACES])} "
                     f"or a .json/.toml file")


def get_mbconv_space(ref: str | SearchSpace) -> SearchSpace:
    """:func:`get_space` for callers that need networks (a benchmark table is an error)."""
    space = get_space(ref)
    if not isinstance(space, SearchSpace):
        raise UserError(f"space {space.name!r} is a benchmark table, not an MBConv space: use mnasnet, "
                         f"efficientnet, tiny, nano or a .json/.toml file")
    return space
