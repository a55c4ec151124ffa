"""The TensorFlow block-string notation, extended for effnas' other block types.

``r2_k3_s22_e6_i16_o24_se0.25`` reads: 2 repeats, 3x3 kernel, stride 2 (TF writes both
spatial strides, ``s22``), expansion 6, 16 input and 24 output channels, SE ratio 0.25
(tensorflow/tpu ``efficientnet_builder.BlockDecoder``). ``noskip`` turns off the residual.

EfficientNetV2's notation (google/automl ``efficientnetv2/effnetv2_configs.py``) decodes too: a
single-digit stride (``s1``, ``s2``) and the conv-type token ``c1`` for a Fused-MBConv block
(``c0``, the default, is MBConv): ``r4_k3_s2_e4_i24_o48_c1``. The encoder writes ``c1`` after
the channels, as TF's encoder does, and strides in the two-digit form: ``r4_k3_s22_e4_i24_o48_c1``.

effnas adds, all optional so that every TF string decodes unchanged:

- a leading op token: ``mbconv`` (the default, never written), ``dsconv``, ``conv``,
  ``basic``, ``bottleneck`` (Fused-MBConv is written ``c1``, never as a leading token);
- ``poolskip`` for MnasNet's pooling skip;
- an activation token ``silu``, ``relu`` or ``relu6`` that overrides the network's.

This module is the only place that parses block strings; a bad string raises a
``ValueError`` naming the token.
"""

from __future__ import annotations

import re

from effnas.search_spaces.block import ACTIVATIONS, OPS, BlockSpec
from effnas.search_spaces.common.errors import UserError

_INT_KEYS = {"r": "repeats", "k": "kernel", "e": "expansion", "i": "in_channels", "o": "out_channels"}
_TOKEN = re.compile(r"^(se|r|k|s|e|i|o|c)(\d+(?:\.\d+)?)$")
#: TF's ``conv_type`` token: 0 = MBConv, 1 = Fused-MBConv.
_CONV_TYPES = {"0": "mbconv", "1": "fused_mbconv"}


def decode_block(text: str) -> BlockSpec:
    """Parse one block string into a :class:`BlockSpec`.

    >>> b = decode_block("r2_k3_s22_e6_i16_o24_se0.25")
    >>> (b.op, b.repeats, b.kernel, b.stride, b.expansion, b.in_channels, b.out_channels, b.se_ratio)
    ('mbconv', 2, 3, 2, 6, 16, 24, 0.25)
    >>> decode_block("dsconv_r1_k3_s11_e1_i32_o64_relu").op
    'dsconv'
    >>> decode_block("r4_k3_s2_e4_i24_o48_c1").op
    'fused_mbconv'
    """
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"empty block string {text!r}: expected e.g. 'r2_k3_s22_e6_i16_o24_se0.25'")
    tokens = text.strip().split("_")
    kwargs: dict[str, object] = {}
    seen: set[str] = set()
    if tokens[0] in OPS:  # "fused_mbconv" splits at its "_": Fused-MBConv is only ever "c1"
        kwargs["op"] = tokens.pop(0)
    for tok in tokens:
        if tok in ("noskip", "poolskip"):
            if "skip" in kwargs:
                raise UserError(f"block string {text!r}: skip token {tok!r} given twice")
            kwargs["skip"] = "none" if tok == "noskip" else "pool"
            continue
        if tok in ACTIVATIONS:
            kwargs["activation"] = tok
            continue
        m = _TOKEN.match(tok)
        if not m:
            raise UserError(
                f"unknown token {tok!r} in block string {text!r}: expected r,k,s,e,i,o,c,se "
                f"followed by a number, noskip, poolskip, an activation or a leading op"
            )
        key, num = m.groups()
        if key == "c":
            if num not in _CONV_TYPES:
                raise UserError(f"bad conv-type token {tok!r} in block string {text!r}: "
                                f"expected c0 (MBConv) or c1 (Fused-MBConv)")
            if "conv_type" in seen:
                raise UserError(f"block string {text!r}: token {tok!r} sets the conv type twice")
            if "op" in kwargs and kwargs["op"] != "mbconv":
                raise UserError(f"block string {text!r}: {tok!r} applies to MBConv blocks only: "
                                f"drop it or the leading {kwargs['op']!r}")
            seen.add("conv_type")
            kwargs["op"] = _CONV_TYPES[num]
            continue
        if key == "se":
            value: object = float(num)
            name = "se_ratio"
        elif key == "s":
            if len(num) == 2 and num[0] == num[1]:
                num = num[0]
            elif len(num) != 1:
                raise UserError(
                    f"bad stride token {tok!r} in block string {text!r}: "
                    f"expected s11, s22 (or s1, s2); non-square strides are not supported"
                )
            value, name = int(num), "stride"
        else:
            if "." in num:
                raise UserError(f"token {tok!r} in block string {text!r} must be an integer")
            value, name = int(num), _INT_KEYS[key]
        if name in kwargs:
            raise UserError(f"block string {text!r}: token {tok!r} sets {name} twice")
        kwargs[name] = value
    for key, name in (("i", "in_channels"), ("o", "out_channels")):
        if name not in kwargs:
            raise UserError(f"block string {text!r} lacks the {key}<channels> token ({name})")
    try:
        return BlockSpec(**kwargs)  # type: ignore[arg-type]
    except ValueError as e:
        raise UserError(f"block string {text!r}: {e}") from e


def encode_block(block: BlockSpec) -> str:
    """The inverse of :func:`decode_block` (TF form for MBConv and Fused-MBConv blocks).

    >>> encode_block(decode_block("r1_k3_s11_e1_i32_o16_noskip"))
    'r1_k3_s11_e1_i32_o16_noskip'
    >>> encode_block(decode_block("r4_k3_s2_e4_i24_o48_c1"))
    'r4_k3_s22_e4_i24_o48_c1'
    """
    parts = [] if block.op in ("mbconv", "fused_mbconv") else [block.op]
    parts += [
        f"r{block.repeats}",
        f"k{block.kernel}",
        f"s{block.stride}{block.stride}",
        f"e{block.expansion}",
        f"i{block.in_channels}",
        f"o{block.out_channels}",
    ]
    if block.op == "fused_mbconv":
        parts.append("c1")
    if block.se_ratio:
        parts.append(f"se{_fmt(block.se_ratio)}")
    if block.skip == "none":
        parts.append("noskip")
    elif block.skip == "pool":
        parts.append("poolskip")
    if block.activation is not None:
        parts.append(block.activation)
    return "_".join(parts)


def _fmt(x: float) -> str:
    return repr(float(x)).rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def decode_stages(strings: list[str] | tuple[str, ...]) -> tuple[BlockSpec, ...]:
    """Decode a list of block strings (one per stage)."""
    return tuple(decode_block(s) for s in strings)


def encode_stages(stages: tuple[BlockSpec, ...]) -> list[str]:
    return [encode_block(s) for s in stages]
