"""Scaling rules behind one interface (compound, fast compound, ResNet-RS-like, single dimension,
custom exponents) and the families they make: :mod:`.rule` parses and defines them,
:mod:`.members` builds and cost-fits their members."""

from effnas.scaling.rules.members import rule_family, rule_member, rule_name, rule_spec
from effnas.scaling.rules.rule import (
    FAST_DEFAULT,
    SINGLE,
    SYNTAX,
    Rule,
    compound_exponents,
    fast_points,
    parse_rule,
)

__all__ = ["FAST_DEFAULT", "SINGLE", "SYNTAX", "Rule", "compound_exponents", "fast_points", "parse_rule",
           "rule_family", "rule_member", "rule_name", "rule_spec"]
