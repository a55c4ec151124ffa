"""Scaling rules behind one interface (compound, fast compound, ResNet-RS-like, single dimension,
custom exponents, EfficientNetV2's non-uniform scaling) and the families they make: :mod:`.rule` parses
and defines them, :mod:`.members` builds and cost-fits the members of exponent rules, :mod:`.nonuniform`
those of ``nonuniform:MAX``, :mod:`.families` any rule's family."""

from effnas.scaling.rules.families import rule_family
from effnas.scaling.rules.members import rule_member, rule_name, rule_spec
from effnas.scaling.rules.nonuniform import nonuniform_member
from effnas.scaling.rules.rule import (
    FAST_DEFAULT,
    NONUNIFORM_MAX,
    SINGLE,
    SYNTAX,
    Rule,
    compound_exponents,
    fast_points,
    parse_rule,
)

__all__ = ["FAST_DEFAULT", "NONUNIFORM_MAX", "SINGLE", "SYNTAX", "Rule", "compound_exponents", "fast_points",
           "nonuniform_member", "parse_rule", "rule_family", "rule_member", "rule_name", "rule_spec"]
