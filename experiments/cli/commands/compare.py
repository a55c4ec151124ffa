"""``effnas compare``: computed verdicts between scaling methods (one result set) or between two
families (two result sets), each with its difference, 95 % interval, p-value and seeds needed."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from effnas.experiments.cli.commands import _common as c
from effnas.scaling import load_results
from effnas.scaling.analysis.compare import compare_families, compare_methods, compare_sizes, paper_table, verdict_lines
from effnas.scaling.analysis.rules import compare_rules, rule_lines
from effnas.scaling.curves import check_results
from effnas.scaling.realised import FAMILY_TOLERANCE
from effnas.search_spaces.common.atomic import atomic_write
from effnas.search_spaces.common.errors import UserError

EXAMPLES = c.examples(
    ("effnas compare runs/demo/family", "compound against depth-, width- and resolution-only at every phi"),
    ("effnas compare runs/found runs/b0 --labels found B0", "two families member for member"),
    ("effnas compare runs/demo/family -o cmp.csv", "the comparisons as CSV as well"),
    ("effnas compare runs/rules --rules", "each rule of family.rules against compound at equal MACs, activations "
     "and training time"),
) + """

verdict rule (docs/statistics.md): paired t-test on shared seeds (Welch's t otherwise), 95 % interval;
better/worse when p < 0.05, tied within noise otherwise, too few seeds with one run a side; members
whose realised MACs differ by more than --tolerance are not comparable."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compare", help="computed verdicts: methods or families compared at equal phi, with intervals",
        description="With one DIR: at every phi >= 1 the family's method (compound or official, or --reference) "
        "against each single-dimension baseline, and each method's largest member against the base. With two "
        "DIRs: the two families member for member. Then the 'against the paper' table built from those verdicts.",
        epilog=EXAMPLES)
    p.add_argument("dirs", nargs="+", metavar="DIR", help="one or two family directories (or family.csv files)")
    p.add_argument("--metric", default="test_accuracy", help="accuracy column (default: %(default)s)")
    p.add_argument("--reference", default=None, metavar="METHOD", help="the method the others are compared with "
                   "(default: compound, or official for an official family)")
    p.add_argument("--labels", nargs=2, default=None, metavar=("A", "B"), help="names of the two families "
                   "(default: the directory names)")
    p.add_argument("--tolerance", type=float, default=FAMILY_TOLERANCE, metavar="X", help="largest relative gap of "
                   "realised MACs at which two members are compared (default: %(default)s)")
    c.output_file_arg(p, old_out=True, help="also write the comparisons as CSV to FILE")
    p.add_argument("--rules", action="store_true", help="with one DIR trained with family.rules: each rule against "
                   "--reference (default compound) member for member, at equal MACs, equal activations and equal "
                   "training time (not comparable where the realised cost differs by more than --tolerance)")
    p.add_argument("--json", action="store_true", help="print the comparisons as JSON instead of lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        raise UserError(f"--tolerance must be a number >= 0, got {args.tolerance}")
    if len(args.dirs) > 2:
        raise UserError(f"give one family directory (methods) or two (families), got {len(args.dirs)}")
    if args.labels and len(args.dirs) != 2:
        raise UserError("--labels names two families: give two directories")
    first = check_results(load_results(args.dirs[:1]), metric=args.metric)
    if args.rules:
        return _rules(args, first)
    other = None
    if len(args.dirs) == 2:
        other = check_results(load_results(args.dirs[1:]), metric=args.metric)
        a, b = args.labels or [Path(d).name for d in args.dirs]
        labels = (str(a), str(b))
        table = compare_families(first, other, labels=labels, metric=args.metric, tolerance=args.tolerance)
        claims = paper_table(first, other=other, labels=labels, metric=args.metric, tolerance=args.tolerance)
    else:
        table = compare_methods(first, metric=args.metric, reference=args.reference, tolerance=args.tolerance)
        sizes = compare_sizes(first, metric=args.metric)
        table = pd.concat([t for t in (table, sizes) if not t.empty], ignore_index=True) if len(sizes) else table
        claims = paper_table(first, metric=args.metric, tolerance=args.tolerance)
    if table.empty:
        raise UserError("nothing to compare: the results need members at phi >= 1 beside the base, trained "
                        "(a family.csv from 'effnas family --train')")
    if args.output:
        atomic_write(args.output, lambda t: table.to_csv(t, index=False))
    if args.json:
        print(json.dumps({"comparisons": json.loads(table.to_json(orient="records")),
                          "claims": json.loads(claims.to_json(orient="records"))}, indent=2))
        return 0
    print(f"{args.metric}, difference A - B in points with its 95 % interval:")
    print("\n".join(verdict_lines(table)))
    print("\nagainst the paper:")
    for r in claims.itertuples(index=False):
        print(f"  {r.claim}: {r.verdict} ({r.comparisons}; paper: {r.paper})")
    if args.output:
        print(f"wrote {args.output}")
    return 0


def _rules(args: argparse.Namespace, results: pd.DataFrame) -> int:
    if len(args.dirs) != 1:
        raise UserError("--rules compares the rules of one family directory: give one DIR")
    table = compare_rules(results, metric=args.metric, reference=args.reference or "compound",
                          tolerance=args.tolerance)
    if table.empty:
        raise UserError("nothing to compare: the rules need trained members at phi >= 1")
    if args.output:
        atomic_write(args.output, lambda t: table.to_csv(t, index=False))
    if args.json:
        print(json.dumps({"comparisons": json.loads(table.to_json(orient="records"))}, indent=2))
        return 0
    print(f"{args.metric}, difference A - B in points with its 95 % interval; members matched by phi, compared "
          f"where their realised cost is within {100 * args.tolerance:g} %:")
    print("\n".join(rule_lines(table)))
    if args.output:
        print(f"wrote {args.output}")
    return 0
