"""Realised vs nominal MACs of grid candidates and family members, before and after the
whole-pixel resolution adjustment (``effnas.scaling.realised``). Counts only (no training, no timing):
exact and deterministic, about 10 s on one core.

"Before" is each network counted at its nominal resolution ``round(base * gamma**phi)``; "after"
is what ``candidate_table`` / ``family`` now train. Tables in docs/scaling.md come from

    PYTHONPATH=. python bench/realised_cost.py
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

import effnas.search_spaces as ss
from effnas.scaling import Coefficients, candidate_table, family, family_table, grid_candidates, member
from effnas.search_spaces.counts import count_macs


def grid_rows(base: ss.NetworkSpec, *, step: float, tolerance: float, phi: float, target: float) -> None:
    t, _ = candidate_table(base, grid_candidates(step=step, tolerance=tolerance, target=target), phi=phi,
                           target=target)
    print(f"\n{base.name} at {base.resolution} px, grid step {step:g}, |product - {target:g}| <= {tolerance:g}, "
          f"phi {phi:g}: target {target**phi:.3g}x +-5 %")
    print("| alpha, beta, gamma | nominal | before: px, ratio | after: px, ratio | status |")
    print("|---|---|---|---|---|")
    for r in t.itertuples():
        status = "trained" if r.within_tolerance else f"not trained: {r.reason}"
        print(f"| {r.alpha:g}, {r.beta:g}, {r.gamma:g} | {r.nominal_macs_ratio:.2f} | {r.resolution_nominal}, "
              f"{r.macs_ratio_unadjusted:.2f} | {r.resolution}, {r.macs_ratio:.2f} | {status} |")


def grid_summary(base: ss.NetworkSpec, *, step: float = 0.05, tolerance: float = 0.1) -> str:
    t, _ = candidate_table(base, grid_candidates(step=step, tolerance=tolerance))
    ok = t[t.within_tolerance]
    before = t.macs_ratio_unadjusted
    after = f"{ok.macs_ratio.min():.2f}-{ok.macs_ratio.max():.2f}" if not ok.empty else "-"
    return (f"| {base.name} | {base.resolution} | {base.num_classes} | {len(t)} | "
            f"{before.min():.2f}-{before.max():.2f} (median {statistics.median(before):.2f}) | {len(ok)} | {after} |")


def family_rows(base: ss.NetworkSpec, coeffs: Coefficients, phis: range) -> None:
    t = family_table(family(base, phis, coefficients=coeffs))
    before = {}
    base_macs = count_macs(base)
    for phi in phis:
        spec, _ = member(base, phi, coefficients=coeffs.as_tuple())
        before[phi] = count_macs(spec) / base_macs
    print(f"\n{base.name} at {base.resolution} px, family {coeffs.alpha:g}, {coeffs.beta:g}, {coeffs.gamma:g}: "
          "target (alpha*beta^2*gamma^2)^phi +-10 %")
    print("| phi | nominal | before: px, ratio | after: px, ratio | within 10 % |")
    print("|---|---|---|---|---|")
    for r in t.itertuples():
        flag = "yes" if r.within_tolerance else f"no: {r.reason}"
        print(f"| {r.phi} | {r.nominal_macs_ratio:.2f} | {r.resolution_nominal}, {before[r.phi]:.2f} | "
              f"{r.resolution}, {r.macs_ratio:.2f} | {flag} |")


def sweep(name: str, resolutions: list[int]) -> None:
    print(f"\n{name}: how many networks fit, by base resolution (demo grid: step 0.2, 6 candidates; "
          "full grid: step 0.05, 111; families phi 0..4)")
    print("| base px | demo grid within 5 % | full grid within 5 % | family 1.2, 1.1, 1.15 within 10 % "
          "| family 1.0, 1.2, 1.2 within 10 % |")
    print("|---|---|---|---|---|")
    for px in resolutions:
        base = ss.get(name, resolution=px)
        demo, _ = candidate_table(base, grid_candidates(step=0.2))
        full, _ = candidate_table(base, grid_candidates())
        fams = [family_table(family(base, range(5), coefficients=Coefficients(*c)))
                for c in ((1.2, 1.1, 1.15), (1.0, 1.2, 1.2))]
        print(f"| {px} | {int(demo.within_tolerance.sum())}/6 | {int(full.within_tolerance.sum())}/111 | "
              + " | ".join(f"{int(f.within_tolerance.sum())}/5" for f in fams) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.parse_args()

    print(f"# {platform.node()} {platform.machine()}, python {platform.python_version()}, torch {torch.__version__}")
    nano = ss.get("efficientnet_nano")  # the demo's base: 16 px, 10 classes
    grid_rows(nano, step=0.2, tolerance=0.1, phi=1, target=2.0)
    print("\nFull default grid (step 0.05, tolerance 0.1) at phi 1, realised MACs ratio for a target of 2:")
    print("| base | px | classes | candidates | before: realised range | within 5 % after | after: range of those |")
    print("|---|---|---|---|---|---|---|")
    for spec in (nano, ss.get("efficientnet_b0", resolution=32), ss.get("efficientnet_b0", resolution=32,
                                                                         num_classes=10), ss.get("efficientnet_b0")):
        print(grid_summary(spec))
    for coeffs in (Coefficients(1.0, 1.2, 1.2), Coefficients(1.2, 1.1, 1.15)):
        family_rows(nano, coeffs, range(5))
    sweep("efficientnet_nano", [16, 24, 32, 48, 64])


if __name__ == "__main__":
    main()
