"""``effnas view``: the compound-coefficient architecture viewer, one self-contained HTML file."""

from __future__ import annotations

import argparse

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.config.choices import DEPTH_ROUNDINGS
from effnas.experiments.train import guard
from effnas.scaling import parse_phis
from effnas.search_spaces import load_spec
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "view", help="write an interactive HTML viewer of a network scaled over phi",
        description="Write one self-contained HTML file (scripts and data inline, no network; opens from "
        "file://) with a phi slider, the depth/width/resolution factors, the input size and a card per stage "
        "(operator, kernel, stride, repeats, output C x H x W, params, MACs); click a block for its "
        "expansion, SE ratio, stochastic-depth rate, params and MACs. The numbers are those 'effnas family' "
        "and 'effnas models show' print for each member.",
        epilog=c.examples(
            ("effnas view efficientnet_b0 --official -o b0.html", "B0..B8 of the official table"),
            ("effnas view efficientnet_nano --alpha 1.2 --beta 1.1 --gamma 1.15 --phis 0-4 -o nano.html",
             "a network scaled by coefficients, phi 0 to 4"),
            ("effnas view runs/search/best_spec.json --coefficients runs/grid/coefficients.json",
             "a search's best network scaled by a grid's coefficients, into viewer.html"),
        ),
    )
    p.add_argument("model", metavar="SPEC|MODEL", help="a registered model name or a spec .json file (phi = 0)")
    p.add_argument("--official", action="store_true", help="members are the official B0..B8 rows")
    p.add_argument("--phis", default="0-8", metavar="LIST", help="members on the slider, e.g. 0-8 or 0,1,3 "
                   "(default: %(default)s)")
    p.add_argument("--resolution", type=int, metavar="N", help="the base's input size in pixels (default: its own)")
    p.add_argument("--num-classes", type=int, metavar="N", help="the base's classifier outputs (default: its own)")
    c.output_file_arg(p, default="viewer.html", old_out=True, help="the HTML file to write (default: %(default)s)")
    p.add_argument("--depth-rounding", choices=DEPTH_ROUNDINGS, default="round",
                   help="repeats rounded to nearest (round) or up (ceil, TF) (default: %(default)s)")
    c.add_coefficient_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnas.experiments.report.viewer import is_effnas_page, viewer_data, write_viewer  # lazy: pulls in matplotlib

    for name in ("resolution", "num_classes"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
    guard.out_file(args.output, "-o", accept=is_effnas_page)  # never over a file effnas did not write
    coeffs = c.coefficients_from(args, c.experiment(args))
    if args.official and coeffs is not None:
        raise UserError("give either --official or coefficients (--coefficients FILE or --alpha/--beta/--gamma)")
    base = load_spec(args.model, num_classes=args.num_classes, resolution=args.resolution)
    data = viewer_data(base, coefficients=coeffs, official=args.official, depth_rounding=args.depth_rounding,
                       phis=parse_phis(args.phis), source=args.model)
    out = write_viewer(data, args.output)
    what = "official table" if args.official else "coefficients " + ", ".join(
        f"{k} = {data['coefficients'][k]}" for k in ("alpha", "beta", "gamma"))
    print(f"wrote {out} ({len(data['members'])} members, {what}; {out.stat().st_size / 1024:.0f} KiB)")
    return 0
