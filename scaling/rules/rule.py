"""Scaling rules: how a FLOPs (MACs) budget ``s`` times the base's is spent on depth, width and
resolution, behind one interface.

Every rule here is a triple of per-axis exponents ``(e_d, e_w, e_r)`` with ``e_d + e_w + e_r = 1``
(Dollar, Singh, Girshick, "Fast and Accurate Model Scaling", CVPR 2021, Section 4): scaling the
base's MACs by ``s`` multiplies depth by ``s**e_d``, width by ``s**(e_w / 2)`` and resolution by
``s**(e_r / 2)``, so that ``d * w**2 * r**2 = s`` (MACs grow linearly in depth and quadratically in
width and resolution). The rules, as text (``[family] rule``, ``--rule``):

``compound``
    EfficientNet's (Tan & Le 2019, Eq. 3): ``d = alpha**phi``, ``w = beta**phi``,
    ``r = gamma**phi`` from the family's coefficients; as exponents ``e_d = ln alpha / ln P``,
    ``e_w = 2 ln beta / ln P``, ``e_r = 2 ln gamma / ln P`` with ``P = alpha * beta**2 * gamma**2``
    (paper coefficients 1.2, 1.1, 1.15: 0.279, 0.292, 0.428).
``fast:A`` (``fast`` is ``fast:0.8``)
    Dollar et al.'s fast compound scaling, one parameter ``A`` in [0, 1]: ``e_w = A``,
    ``e_d = e_r = (1 - A) / 2``. ``A = 1`` is width-only, ``A = 1/3`` scales the three axes alike
    (each takes a third of the log-MACs), ``A = 0.8`` is their recommended "dWr" (pycls'
    ``scale_type = "d1_w8_g8_r1"``, facebookresearch/pycls, pycls/models/scaler.py). Under dWr
    activations grow about as ``sqrt(s)``, against about ``s`` under depth- or resolution-heavy rules.
``resnet-rs`` and ``resnet-rs:short``
    In the manner of ResNet-RS (Bello et al., "Revisiting ResNets", NeurIPS 2021): their strategy 1
    scales depth where overfitting can occur (long training, ``resnet-rs``) and width otherwise
    (short training, ``resnet-rs:short``); their strategy 2 grows resolution more slowly than
    EfficientNet. Our exponents, not fitted to their table: the regime's axis takes 2/3 of the
    log-MACs, resolution 1/3, the other axis none: ``(2/3, 0, 1/3)`` or ``(0, 2/3, 1/3)``.
    Resolution then grows as ``s**(1/6)`` against ``s**0.214`` under EfficientNet's coefficients.
``depth``, ``width``, ``resolution``
    One dimension only: ``(1, 0, 0)``, ``(0, 1, 0)``, ``(0, 0, 1)``.
``exponents:E_D,E_W,E_R``
    Custom exponents, each >= 0, summing to 1: ``exponents:0.2,0.6,0.2``.
``nonuniform:MAX`` (``nonuniform`` is ``nonuniform:480``)
    EfficientNetV2's non-uniform scaling (Tan & Le 2021, Section 4): compound's split of the MACs
    (the family's coefficients, the paper's by default) with the input capped at ``MAX`` pixels, and
    the MACs the cap leaves spent on more layers in the later stages only
    (:mod:`effnas.scaling.rules.nonuniform`). Not an exponent triple: which axis grows depends on
    whether the cap binds.

A rule names a family's members; :mod:`effnas.scaling.rules.members` builds them with the rounding
compound uses (repeats to whole blocks, channels to multiples of 8, whole pixels) and holds each to
its MACs ratio within the realised-cost tolerance, or flags it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from effnas.scaling.coefficients import Coefficients
from effnas.scaling.compound import Multipliers
from effnas.search_spaces.block import MAX_RESOLUTION
from effnas.search_spaces.common.errors import UserError

#: ``fast`` without a parameter: Dollar et al.'s recommended dWr.
FAST_DEFAULT = 0.8
#: ResNet-RS-like exponents of the regime's axis and of resolution (module docstring).
RS_AXIS, RS_RESOLUTION = 2 / 3, 1 / 3
#: The single-dimension rules and their exponents.
SINGLE = {"depth": (1.0, 0.0, 0.0), "width": (0.0, 1.0, 0.0), "resolution": (0.0, 0.0, 1.0)}
#: ``nonuniform`` without a cap: EfficientNetV2's largest inference size (Section 4: "480").
NONUNIFORM_MAX = 480
#: The rule syntax, for error messages and help.
SYNTAX = "compound, fast:A (A in [0, 1]; fast = fast:0.8), resnet-rs, resnet-rs:short, depth, width, resolution, " \
         "exponents:E_D,E_W,E_R (each >= 0, sum 1), or nonuniform:MAX (pixels; nonuniform = nonuniform:480)"


@dataclass(frozen=True)
class Rule:
    """A scaling rule: its canonical ``text`` and, except for ``compound`` and ``nonuniform`` (whose
    split comes from the family's coefficients), per-axis exponents ``(e_d, e_w, e_r)`` summing to 1;
    ``max_resolution``: ``nonuniform``'s cap in pixels."""

    text: str
    exponents: tuple[float, float, float] | None = None
    max_resolution: int | None = None

    @property
    def is_compound(self) -> bool:
        return self.exponents is None and self.max_resolution is None

    @property
    def label(self) -> str:
        """The ``method`` of its members in a family table: ``compound``, ``fast:0.8``, ...,
        ``width-only`` for a single-dimension rule (``width`` labels the matched baselines)."""
        return f"{self.text}-only" if self.text in SINGLE else self.text

    def multipliers(self, s: float) -> Multipliers:
        """Depth, width and resolution multipliers spending ``s`` times the base's MACs.

        >>> m = parse_rule("fast:0.8").multipliers(4.0)
        >>> round(m.depth, 4), round(m.width, 4), round(m.resolution, 4), round(m.nominal_macs_ratio, 6)
        (1.1487, 1.7411, 1.0718, 4.0)
        """
        if self.exponents is None:
            raise UserError(f"the {self.text} rule's multipliers come from alpha, beta, gamma: use "
                             "effnas.scaling.rules.rule_family")
        if not (math.isfinite(s) and s > 0):
            raise UserError(f"the MACs ratio a rule spends must be a finite number > 0, got {s!r}")
        e_d, e_w, e_r = self.exponents
        return Multipliers(s**e_d, s ** (e_w / 2), s ** (e_r / 2))

    def __str__(self) -> str:
        return self.text


def compound_exponents(alpha: float, beta: float, gamma: float) -> tuple[float, float, float]:
    """Compound coefficients as exponents (their shares of the log-MACs).

    >>> [round(e, 3) for e in compound_exponents(1.2, 1.1, 1.15)]
    [0.279, 0.292, 0.428]
    """
    total = math.log(alpha * beta**2 * gamma**2)
    if total <= 0:
        raise UserError(f"alpha * beta^2 * gamma^2 must be > 1 to scale, got {math.exp(total):.4g}")
    return math.log(alpha) / total, 2 * math.log(beta) / total, 2 * math.log(gamma) / total


def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"{what} must be a number, got {text!r}: a rule is {SYNTAX}") from None
    if not math.isfinite(v):
        raise UserError(f"{what} must be finite, got {text!r}")
    return v


def _g(v: float) -> str:
    return f"{v:.6g}"


def parse_rule(text: str) -> Rule:
    """A rule from its text (module docstring); a UserError names the syntax otherwise.

    >>> parse_rule("fast").text, parse_rule("fast:1").exponents
    ('fast:0.8', (0.0, 1.0, 0.0))
    >>> parse_rule("exponents:0.2,0.6,0.2").exponents
    (0.2, 0.6, 0.2)
    >>> parse_rule("resnet-rs").label, parse_rule("width").label
    ('resnet-rs', 'width-only')
    >>> parse_rule("nonuniform").max_resolution, parse_rule("nonuniform:64").text
    (480, 'nonuniform:64')
    """
    if not isinstance(text, str):
        raise UserError(f"a scaling rule is text, got {text!r}: {SYNTAX}")
    t = text.strip().lower()
    kind, colon, arg = t.partition(":")
    if t == "compound":
        return Rule("compound")
    if t in SINGLE:
        return Rule(t, SINGLE[t])
    if kind == "fast":
        a = _number(arg, "fast's alpha") if colon else FAST_DEFAULT
        if not 0 <= a <= 1:
            raise UserError(f"fast's alpha must be in [0, 1] (1: width only, 1/3: uniform, 0.8: dWr), got {a:g}")
        return Rule(f"fast:{_g(a)}", ((1 - a) / 2, a, (1 - a) / 2))
    if t in ("resnet-rs", "resnet-rs:long"):
        return Rule("resnet-rs", (RS_AXIS, 0.0, RS_RESOLUTION))
    if t == "resnet-rs:short":
        return Rule("resnet-rs:short", (0.0, RS_AXIS, RS_RESOLUTION))
    if kind == "exponents" and colon:
        parts = arg.split(",")
        if len(parts) != 3:
            raise UserError(f"exponents takes three numbers E_D,E_W,E_R, got {arg!r}: e.g. exponents:0.2,0.6,0.2")
        e = tuple(_number(p, "an exponent") for p in parts)
        if min(e) < 0 or abs(sum(e) - 1) > 1e-6:
            raise UserError(f"exponents must be >= 0 and sum to 1 (d * w^2 * r^2 = s), got {arg} "
                             f"(sum {sum(e):.6g}): e.g. exponents:0.2,0.6,0.2")
        return Rule(f"exponents:{','.join(_g(v) for v in e)}", (e[0], e[1], e[2]))
    if kind == "nonuniform":
        cap = _number(arg, "nonuniform's largest resolution") if colon else NONUNIFORM_MAX
        if cap != int(cap) or not 1 <= cap <= MAX_RESOLUTION:
            raise UserError(f"nonuniform's largest resolution must be whole pixels in [1, {MAX_RESOLUTION}], got "
                             f"{arg!r}: e.g. nonuniform:480")
        return Rule(f"nonuniform:{int(cap)}", None, int(cap))
    raise UserError(f"unknown scaling rule {text!r}: give {SYNTAX}")




def fast_points(step: float, target: float) -> list[tuple[float, Coefficients]]:
    """Fast scaling's ``A`` on ``0, step, 2 step, ..., 1`` as compound coefficients that spend
    ``target`` times the MACs per phi the same way: ``alpha = target**e_d``,
    ``beta = target**(e_w / 2)``, ``gamma = target**(e_r / 2)``, to 4 decimals (so ``fast:A`` at phi is compound at
    phi with these, and the grid's realised-cost fairness applies unchanged: ``grid.rule = "fast"``).

    >>> [(a, round(c.alpha, 4), round(c.beta, 4), round(c.gamma, 4)) for a, c in fast_points(0.5, 2.0)]
    [(0.0, 1.4142, 1.0, 1.1892), (0.5, 1.1892, 1.1892, 1.0905), (1.0, 1.0, 1.4142, 1.0)]
    """
    if not 0 < step <= 1:
        raise UserError(f"grid.step must be in (0, 1] (the step of fast scaling's A), got {step}")
    out, i = [], 0
    while (a := round(i * step, 10)) <= 1 + 1e-9:
        e_d, e_w, e_r = (1 - a) / 2, a, (1 - a) / 2
        out.append((a, Coefficients(round(target**e_d, 4), round(target ** (e_w / 2), 4),
                                    round(target ** (e_r / 2), 4))))
        i += 1
    return out


__all__ = ["FAST_DEFAULT", "NONUNIFORM_MAX", "SINGLE", "SYNTAX", "Rule", "compound_exponents", "fast_points",
           "parse_rule"]
