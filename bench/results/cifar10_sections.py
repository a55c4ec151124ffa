"""The result sections of the CIFAR-10 study page, each computed from the committed files.

Every number below is an f-string of a value read or computed from :class:`cifar10_data.Study`;
every verdict word comes from ``effnas.scaling.analysis.compare`` (docs/statistics.md). The text
around them is description and context, never a result.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from cifar10_data import (
    CIFAR10_CLASSES,
    Study,
    b0_spec,
    backbone_spec,
    final_map,
    found_base,
    subset_sizes,
    total_stride,
)
from scipy import stats as st

from effnas.scaling.analysis.compare import claim_row, compare_families, verdict_lines
from effnas.scaling.coefficients import Coefficients
from effnas.scaling.compound import PAPER_COEFFICIENTS
from effnas.search_spaces.common.stats import ALPHA, BETTER, LEVEL, POWER, TOO_FEW, compare, interval

METRIC = "test_accuracy"
SINGLE = ("depth", "width", "resolution")


# ---- formatting ------------------------------------------------------------------------------

def pct(x: float, digits: int = 1) -> str:
    """A fraction as percent: ``0.4675 -> '46.8'``."""
    return f"{100 * x:.{digits}f}"


def pts(x: float) -> str:
    """A difference of fractions in percentage points, signed: ``0.034 -> '+3.4'``."""
    return f"{100 * x:+.1f}"


def mmacs(x: float) -> str:
    return f"{x / 1e6:.2f} M"


def span(values: Any, fmt: Any = pct, sep: str = " to ") -> str:
    """``'low to high'`` of ``values`` in ``fmt``; one value when they are all equal."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}{sep}{hi}"


def ci(values: Any) -> str:
    """Mean and 95 % t-interval in percent, with n (``effnas.search_spaces.common.stats.interval``)."""
    return interval(list(values)).text()


def bullets(table: pd.DataFrame) -> list[str]:
    return [f"- `{line}`" for line in verdict_lines(table)]


def table(df: pd.DataFrame) -> str:
    """A Markdown table of cells as formatted here (no re-parsing of ``'+2.9'`` into ``2.9``)."""
    return df.to_markdown(index=False, disable_numparse=True)


def coefficients(df: pd.DataFrame) -> tuple[float, float, float]:
    """(alpha, beta, gamma) of a family from its phi = 1 compound member (depth, width, resolution_mult)."""
    r = df[(df["method"] == "compound") & (df["phi"] == 1)].iloc[0]
    return float(r["depth"]), float(r["width"]), float(r["resolution_mult"])


def triple(c: Any) -> str:
    return ", ".join(f"{x:g}" for x in c)


def side(n: int) -> str:
    return f"{n} x {n}"


def runs(n: int) -> str:
    return f"{n} run{'s' if n > 1 else ''}"


def members(df: pd.DataFrame) -> pd.DataFrame:
    """A row per (method, phi) of a family table: realised size and test accuracy over seeds."""
    rows = []
    for (m, phi), g in df.groupby(["method", "phi"], sort=False):
        r = g.iloc[0]
        rows.append({"method": m, "phi": int(phi), "depth": f"{r['depth']:g}", "width": f"{r['width']:g}",
                     "px": int(r["resolution"]), "blocks": int(r["blocks"]), "MACs": mmacs(r["macs"]),
                     "params": f"{int(r['params']):,}", f"test accuracy %, mean [{pct(LEVEL, 0)} % CI]": ci(g[METRIC])})
    return pd.DataFrame(rows).sort_values(["phi", "method"], key=lambda c: c.map(_order) if c.name == "method" else c)


def _order(m: str) -> int:
    return ("compound", "depth", "width", "resolution").index(m) if m in SINGLE + ("compound",) else -1


def _mean(df: pd.DataFrame, method: str, phi: int) -> float:
    return float(df[(df["method"] == method) & (df["phi"] == phi)][METRIC].mean())


# ---- the search and the grid -------------------------------------------------------------------

def search(s: Study) -> list[str]:
    t, cfg = s.trials, s.config["search"]
    done, pruned = t[t["status"] == "completed"], t[t["status"] == "pruned"]
    spec, best = found_base(s)
    n = subset_sizes(s.config)
    ratio = best["macs"] / cfg["target"]
    return ["## The search (MnasNet / EfficientNet Sec. 4)", "",
            f"{len(t)} {cfg['strategy'].upper()} trials in the `{cfg['space']}` space, each trained "
            f"{cfg['train']['epochs']} epochs on {n['proxy']:,} images (the proxy) and scored by reward = ACC x "
            f"(MACs / T)^w with T = {mmacs(cfg['target'])} MACs and w = {cfg['w']}: {len(done)} completed, "
            f"{len(pruned)} stopped early by the median pruner (`trials.csv`). The best reward "
            f"({best['reward']:.3f}, proxy validation accuracy {best['accuracy']:.3f}) went to trial "
            f"{int(best['number'])}, a {mmacs(best['macs'])}-MAC, {int(best['params']):,}-parameter network "
            f"(stem {spec.stem_channels}, head {spec.head_channels}): `{', '.join(str(best['blocks']).split())}`. "
            f"It is {ratio:.2f}x T: with w = {cfg['w']} a network twice as large loses "
            f"{pct(1 - 2 ** cfg['w'])} % of its reward, so T steers the search rather than bounding it.", "",
            f"The completed trials' proxy accuracy spans {span(done['accuracy'], lambda x: f'{x:.3f}')} "
            f"(pruned: {span(pruned['accuracy'], lambda x: f'{x:.3f}')}, scored at the epoch they stopped). Every "
            f"trial is one run of seed {s.config['run']['seed']}, so the proxy's seed-to-seed noise is not measured "
            f"here, and these data cannot say how well it ranks candidates (issue 16's cheap estimators address "
            f"that).", ""]


def pick_best(table: pd.DataFrame) -> Coefficients:
    """The point the study's grid chose, by the rule it ran with (before grids knew their noise):
    the highest validation accuracy of its one run, ties to fewer MACs."""
    ok = table[(table["status"] == "completed") & table["accuracy"].notna()]
    r = ok.sort_values(["accuracy", "macs", "alpha", "beta", "gamma"],
                       ascending=[False, True, True, True, True]).iloc[0]
    return Coefficients(float(r["alpha"]), float(r["beta"]), float(r["gamma"]))


def grid(s: Study) -> list[str]:
    g, cfg = s.grid.copy(), s.config["grid"]
    chosen = pick_best(g)
    g["dimensions"] = (g[["alpha", "beta", "gamma"]] > 1).sum(axis=1)
    g = g.sort_values(["accuracy", "macs"], ascending=[False, True]).reset_index(drop=True)
    g["rank"] = g.index + 1
    shown = pd.DataFrame({"rank": g["rank"], "alpha, beta, gamma": [f"{a:g}, {b:g}, {c:g}" for a, b, c in
                                                                  zip(g["alpha"], g["beta"], g["gamma"], strict=True)],
                          "dimensions scaled": g["dimensions"], "px": g["resolution"],
                          "realised MACs": [f"{x:.2f}x" for x in g["macs_ratio"]], "val acc": g["accuracy"].map(
                              lambda x: f"{x:.4f}")})
    top = g.head(6)
    three = int((top["dimensions"] == 3).sum())
    depth_only = g[(g["beta"] == 1) & (g["gamma"] == 1)]
    same = g.groupby(["resolution", "macs", "params", "blocks"]).filter(lambda x: len(x) > 1)
    groups = same.groupby(["resolution", "macs", "params", "blocks"])
    equal = "; ".join(" = ".join(f"({triple(r)})" for r in x[["alpha", "beta", "gamma"]].values) for _, x in groups)
    identical = all(x["accuracy"].nunique() == 1 for _, x in groups)
    one = compare([float(g.loc[0, "accuracy"])], [float(g.loc[1, "accuracy"])])
    seeds = cfg["seeds"]
    return [f"## The grid (paper Sec. 3.3: alpha, beta, gamma = {triple(PAPER_COEFFICIENTS)})", "",
            f"{len(g)} candidates with alpha beta^2 gamma^2 within {cfg['target']:g} +- {cfg['tolerance']:g} "
            f"(step {cfg['step']:g}), each brought to {span(g['macs_ratio'], lambda x: f'{x:.2f}x')} realised MACs "
            f"(tolerance {pct(cfg['cost_tolerance'], 0)} %) and trained {cfg['epochs']} epochs at phi = "
            f"{cfg['phi']:g}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} "
            f"(`grid.csv`; validation accuracy, the quantity the grid ranks by):", "", table(shown), "",
            f"The chosen point is ({chosen.alpha:g}, {chosen.beta:g}, {chosen.gamma:g}). Of the six best points, "
            f"{three} scale all three dimensions and {len(top) - three} leave one at 1.0; the points that scale "
            f"depth alone rank {span(depth_only['rank'], str, '-')} of {len(g)}. Each point is one run, so the "
            f"statistics rule gives no verdict between grid points (best against second: `{one.verdict}`): the "
            f"ranking, including depth-only last, is an observation of one seed, not a tested result.",
            "",
            f"{groups.ngroups} groups of candidates round to the same network (same resolution, MACs, parameters and "
            f"blocks: {equal}); "
            + ("within each group the runs scored identically, as the same network with the same seed should."
               if identical else "their scores differ, which the same network and seed should not produce."), ""]


# ---- the family ------------------------------------------------------------------------------

def _fit_lines(fits: dict[str, Any], bands: pd.DataFrame) -> list[str]:
    out = []
    for m, f in fits["macs"].items():
        if not isinstance(f, dict):
            out.append(f"- {m}: {f}")
            continue
        (sa, sb, sc), end = f["stderr"], bands[(bands["axis"] == "macs") & (bands["method"] == m)]
        end = end[end["x"] == end["x"].max()].iloc[0]
        if pd.isna(end["band_low"]):
            out.append(f"- {m}: {f['band']} ({f['n_points']} runs, rmse {pct(f['rmse'])} points)")
            continue
        loose = [k for k, v, e in (("a", f["a"], sa), ("b", f["b"], sb), ("c", f["c"], sc)) if e > abs(v)]
        out.append(f"- {m}: a = {f['a']:.3f} +- {sa:.3f}, b = {f['b']:.2f} +- {sb:.2f}, c = {f['c']:.3f} +- {sc:.3f} "
                   f"(standard errors; {f['n_points']} runs, rmse {pct(f['rmse'])} points); "
                   + (f"the standard error of {' and '.join(loose)} exceeds the value: the data do not pin "
                      f"{'it' if len(loose) == 1 else 'them'} down; " if loose else "")
                   + (f"fitted ceiling {pct(1 - f['c'])} +- {pct(sc)} % accuracy; " if "c" not in loose
                      else "no ceiling pinned down; ")
                   + f"at {mmacs(end['x'])} MACs ({fits['extrapolate']:g}x the largest member) the fit predicts "
                   f"{pct(end['predicted_accuracy'])} %, band [{pct(end['band_low'])}, {pct(end['band_high'])}] %")
    return out


def family(s: Study) -> list[str]:
    f = s.found
    cm, sizes = s.methods["found"], s.sizes["found"]
    depth = f[f["method"] == "depth"].groupby("phi").agg(blocks=("blocks", "first"), acc=(METRIC, "mean"))
    epochs = sorted(set(f["epochs_completed"]))
    better = cm[cm["verdict"] == BETTER]
    n = int(f.groupby(["method", "phi"])["seed"].nunique().min())
    t = float(st.t.ppf(0.5 + LEVEL / 2, n - 1))
    dgap = cm[cm["b"] == "depth"]["diff"]
    return ["## The family and single-dimension baselines (Fig. 3, Fig. 8, Table 7)", "",
            f"Every network trained {', '.join(map(str, epochs))} epochs; seeds "
            f"{', '.join(map(str, sorted(set(f['seed']))))}; each baseline at its compound member's realised MACs "
            f"(`family.csv`, figure `accuracy_vs_macs.png`). Test accuracy, mean over seeds with its {pct(LEVEL, 0)} % "
            f"t-interval ({n} seeds: t = {t:.1f}, so the intervals are wide; docs/statistics.md):", "",
            table(members(f)), "", "![accuracy against MACs](accuracy_vs_macs.png)", "",
            "**Compound against each single dimension at equal MACs** (paired t-test on the shared seeds; the "
            f"verdict rule of docs/statistics.md; `seeds would separate it`: seeds per side for {pct(POWER, 0)} % "
            "power if the observed difference were real):", "", *bullets(cm), "",
            f"{len(better)} of {len(cm)} comparisons reach p < {ALPHA:.2g}"
            + (f" ({', '.join(f'{r.b} at phi {r.phi}' for r in better.itertuples())})" if len(better) else "")
            + f"; the rest are ties within the noise of {n} seeds, including the depth gaps of {span(dgap, pts)} "
            "points.", "",
            "**Each method's largest member against the base (Fig. 3)**:", "", *bullets(sizes), "",
            f"Depth-only members have {', '.join(str(int(b)) for b in depth['blocks'][depth.index > 0])} blocks at "
            f"phi {', '.join(str(p) for p in depth.index[depth.index > 0])} and reach "
            f"{', '.join(pct(a) for a in depth['acc'][depth.index > 0])} % (means); the compound members grow depth "
            f"only {span(f[f['method'] == 'compound']['depth'], lambda x: f'{x:g}', '-')}x.", "",
            "**Power law** (`fits.json`, error = a (MACs / x0)^-b + c, x0 = the base's MACs):", "",
            *_fit_lines(s.fits, s.bands), "",
            f"A hypothesis for resolution's showing, not tested here: on {s.config['data']['resolution']}-px CIFAR "
            "images, scaling resolution is "
            "upsampling (no new detail), which buys larger feature maps, more positions per object, and that is "
            "much of what compound scaling buys too; width and depth add parameters that a short training does not "
            "use.", ""]


def longer(s: Study) -> list[str]:
    lo, f = s.longer, s.found
    cm, sizes = s.methods["longer"], s.sizes["longer"]
    e_lo, e_f = int(lo["epochs_completed"].max()), int(f["epochs_completed"].max())
    phis = sorted(set(lo[lo["method"] != "compound"]["phi"]))
    same_phi = sorted(set(lo[lo["method"] == "compound"]["phi"]))
    gains = {p: _mean(lo, "compound", p) - _mean(f, "compound", p) for p in same_phi}
    d_phi = max(phis)
    return [f"## The same family trained {e_lo // e_f}x longer ({e_lo} epochs)", "",
            f"Does the picture change with more training than {e_f} epochs? The same base, coefficients, data, "
            f"recipe and seeds, trained {e_lo} epochs, with the single-dimension baselines at phi "
            f"{', '.join(map(str, phis))} only ({lo['train_seconds'].sum():,.0f} s of training in all; "
            f"`longer/family.csv`, `longer/accuracy_vs_macs.png`):", "", table(members(lo)), "",
            "![the longer family](longer/accuracy_vs_macs.png)", "",
            f"Against the {e_f}-epoch family, the compound members gain "
            f"{', '.join(f'{pts(v)} (phi {p})' for p, v in gains.items())} points. At phi {d_phi} depth-only "
            f"reaches {pct(_mean(lo, 'depth', d_phi))} % ({pct(_mean(f, 'depth', d_phi))} % at {e_f} epochs), and its "
            f"gap to compound goes from {pts(_mean(f, 'compound', d_phi) - _mean(f, 'depth', d_phi))} to "
            f"{pts(_mean(lo, 'compound', d_phi) - _mean(lo, 'depth', d_phi))} points (longer training lifts the deep "
            f"network by {pts(_mean(lo, 'depth', d_phi) - _mean(f, 'depth', d_phi))} and the compound one by "
            f"{pts(_mean(lo, 'compound', d_phi) - _mean(f, 'compound', d_phi))} points), and it stays "
            f"{'below' if _mean(lo, 'depth', d_phi) < _mean(lo, 'compound', 0) else 'above'} the longer family's "
            f"base ({pct(_mean(lo, 'compound', 0))} %).", "",
            *bullets(cm), *bullets(sizes), "", "Power law (`longer/fits.json`):", "",
            *_fit_lines(s.longer_fits, s.longer_bands), ""]


# ---- Fig. 4, B0, backbones, efficiency ---------------------------------------------------------

def fig4_claim(s: Study) -> tuple[dict[str, str], pd.DataFrame]:
    """Fig. 4's claim (width gains more at larger depth and resolution) as comparisons of the
    width gain at each setting with the gain at the base setting, per width: with one run per
    network every comparison is ``too few seeds``."""
    d = s.fig4
    base = d[(d["depth"] == 1) & (d["resolution_mult"] == 1)].set_index("width")[METRIC]
    rows, verdicts = [], []
    for (dd, r), g in d.groupby(["depth", "resolution_mult"], sort=False):
        if (dd, r) == (1, 1):
            continue
        acc = g.set_index("width")[METRIC]
        for w in acc.index[acc.index > 1]:
            c = compare([acc[w] - acc[1.0]], [base[w] - base[1.0]])
            verdicts.append(c.verdict)
            rows.append({"setting": f"d {dd:g}, {int(g['resolution'].iloc[0])} px", "width": w, "gain": c.mean_a,
                         "base gain": c.mean_b, "verdict": c.verdict})
    row = claim_row("width gains more at larger depth and resolution", "Fig. 4", verdicts)
    if set(verdicts) == {TOO_FEW}:
        row["verdict"] += ": one seed"
    return row, pd.DataFrame(rows)


def fig4(s: Study) -> list[str]:
    d = s.fig4
    f0 = s.found[(s.found["method"] == "compound") & (s.found["phi"] == 0) & (s.found["seed"] == 0)][METRIC]
    grid = d.pivot_table(index=["depth", "resolution"], columns="width", values=METRIC, sort=False)
    macs = d.pivot_table(index=["depth", "resolution"], columns="width", values="macs", sort=False)
    shown = pd.DataFrame({"depth, px": [f"d {a:g}, {b} px" for a, b in grid.index],
                          **{f"w {w:g}": [f"{pct(grid.loc[i, w])} % ({mmacs(macs.loc[i, w])})" for i in grid.index]
                             for w in grid.columns}})
    row, comps = fig4_claim(s)
    n = int(d.groupby(["depth", "resolution_mult", "width"]).size().max())
    widths = sorted(set(comps["width"]))
    more = {w: comps[(comps["width"] == w) & (comps["gain"] > comps["base gain"])]["setting"].tolist() for w in widths}
    base_gain = comps.drop_duplicates("width").set_index("width")["base gain"]
    px = sorted({r for _, r in grid.index})  # the two resolutions
    lift = [grid.loc[(1.0, px[-1]), w] - grid.loc[(1.0, px[0]), w] for w in grid.columns]
    deeper = [grid.loc[(2.0, r), w] - grid.loc[(1.0, r), w] for w in grid.columns for r in px]
    own = float(grid.loc[(1.0, px[0]), 1.0])
    return ["## Fig. 4: does width help more at larger depth and resolution?", "",
            "The paper scales width at several settings of depth and resolution and finds that width gains more when "
            f"depth and resolution are larger. The same with the found base at {len(grid)} settings ({runs(n)} per "
            "network; `fig4.csv`, "
            "`fig4.png`; test accuracy and MACs):", "", table(shown), "", "![Fig. 4 on CIFAR-10](fig4.png)", "",
            f"Width gain over w = 1 at each setting, against the base setting's gain at the same width "
            f"({', '.join(f'w {w:g}: {pts(base_gain[w])}' for w in widths)} points):", "",
            table(comps.assign(gain=comps["gain"].map(pts), **{"base gain": comps["base gain"].map(pts)})), "",
            "Settings whose width gain exceeds the base setting's: "
            + "; ".join(f"at w {w:g}, {len(v)} of {len(comps[comps['width'] == w])}" for w, v in more.items())
            + (". The picture depends on which width one reads" if len({len(v) for v in more.values()}) > 1 else "")
            + f"; each number is {runs(n)} per network, and the claim verdict is "
            f"**{row['verdict']}**. Descriptively: higher resolution at depth 1 changes accuracy by "
            f"{span(lift, pts)} points at equal width, and doubling depth by {span(deeper, pts)} points at every "
            f"width and resolution. The d 1, w 1 network is the family's base; it scores {pct(own)} % "
            f"here and {pct(float(f0.iloc[0]))} % as the family's seed-0 phi-0 run"
            + (" (the same network and seed)." if abs(float(f0.iloc[0]) - own) < 1e-9 else
               " (they should agree: same network and seed)."), ""]


def b0(s: Study) -> list[str]:
    f, b = s.found[s.found["method"] == "compound"], s.b0
    fams = compare_families(s.found, b, labels=("found", "B0"))
    spec, best = found_base(s)
    b0s = b0_spec()
    rows = []
    for r in b.itertuples():
        m = f[f["phi"] == r.phi]
        rows.append({"phi": str(r.phi), "found: test % (n)": ci(m[METRIC]), "found MACs": mmacs(m["macs"].iloc[0]),
                     "B0: test % (n)": ci([getattr(r, METRIC)]), "B0 MACs": mmacs(r.macs), "B0 px": str(r.resolution),
                     "B0 on its MACs target": "yes" if r.within_tolerance else f"no: {r.reason}"})
    off = int((~b["within_tolerance"]).sum())
    res = int(s.config["data"]["resolution"])
    worst = b.loc[b[METRIC].idxmin()]
    n = int(b.groupby("phi").size().max())
    gap = fams.iloc[0]
    return [f"## Fig. 1 / Fig. 5: the found family against EfficientNet-B0 x ({triple(coefficients(b))})", "",
            f"EfficientNet-B0 scaled by ({triple(coefficients(b))}) on the same data and recipe, phi "
            f"{span(b['phi'], str, '-')}, seed{'s' if b['seed'].nunique() > 1 else ''} "
            f"{', '.join(map(str, sorted(set(b['seed']))))} (`family.csv` rows with `family = b0`, figure "
            "`b0_vs_found.png`):", "", table(pd.DataFrame(rows)), "",
            "![found family vs B0 family](b0_vs_found.png)", "", *bullets(fams), "",
            f"The data do not test the paper's Fig. 1 / 5. The B0 members cost "
            f"{span([x.macs_b / x.macs_a for x in fams.itertuples()], lambda x: f'{x:.1f}x')} the found members' "
            f"MACs, so no pair is at equal cost; {off} of {len(b)} B0 members are off their own MACs target; B0 has "
            f"{runs(n)} per member, and phi {int(worst['phi'])} scores {pct(worst[METRIC])} % against chance "
            f"{pct(1 / CIFAR10_CLASSES, 0)} %. B0 was built for {b0s.resolution}-px ImageNet and downsamples by "
            f"{total_stride(b0s)}: at {res} px its last feature map is {side(final_map(b0s, res))} (the found base, "
            f"stride {total_stride(spec)}: {side(final_map(spec, res))}), and it has "
            f"{span(b['params'], lambda x: f'{x / 1e6:.1f}', '-')} M parameters against the found base's "
            f"{int(best['params']):,}. The observed gap at phi 0 is {pts(float(gap['diff']))} points with B0 at "
            f"{gap['macs_b'] / gap['macs_a']:.1f}x the MACs: a description of B0 used unchanged at {res} px on this "
            "budget, not a verdict.", ""]


def backbones(s: Study) -> list[str]:
    out = ["## Other backbones (Table 3), phi = 2 with the found coefficients", "",
           "Each single dimension at the compound network's realised MACs (`backbones.csv`):", ""]
    for name, g in s.backbones.groupby("backbone", sort=False):
        spec = backbone_spec(str(name))
        c = g[g["method"] == "compound"].iloc[0]
        rows = [{"method": m, "px": str(x["resolution"].iloc[0]), "MACs": mmacs(x["macs"].iloc[0]),
                 f"test accuracy %, mean [{pct(LEVEL, 0)} % CI]": ci(x[METRIC]),
                 "last feature map": side(final_map(spec, int(x["resolution"].iloc[0])))}
                for m, x in g.groupby("method", sort=False)]
        out += [f"**{name}** (stride {total_stride(spec)}; the compound member is at {c['macs_ratio']:.2f}x the base's "
                f"MACs, its nominal {c['nominal_macs_ratio']:.2f}x"
                + (f": {c['reason']}" if not c["within_tolerance"] else "") + "):", "", table(pd.DataFrame(rows)),
                "", *bullets(s.methods[str(name)]), ""]
    return out + ["The paper (Table 3, ImageNet) has compound first on MobileNetV1, MobileNetV2 and ResNet-50.", ""]


def efficiency(s: Study) -> list[str]:
    e = s.efficiency.copy()
    shown = pd.DataFrame({"family": e["family"], "method": e["method"], "phi": e["phi"].map(str),
                          "MACs": e["macs"].map(mmacs), "test %": e["accuracy"].map(pct),
                          "train s": e["train_seconds"].map(lambda x: f"{x:.0f}"),
                          "acc per train minute": e["acc_per_train_minute"].map(lambda x: f"{x:.3f}")})
    ranked = e.sort_values("acc_per_train_minute", ascending=False).reset_index(drop=True)
    top = ranked.iloc[0]
    t = e[e["family"] == "found"].pivot_table(index="phi", columns="method", values="train_seconds")
    ratio = (t["resolution"] / t["compound"]).dropna()
    b0_rank = ranked.index[ranked["family"] == "b0"]
    return ["## Efficiency", "",
            "Accuracy per MAC and per training second, mean over seeds of every network (`efficiency.csv`, "
            f"`efficiency.png`). Training seconds are wall time on a shared {s.provenance['cpu_count']}-CPU machine "
            f"({s.provenance['torch_threads']} thread per run), so they are indicative:", "", table(shown), "",
            f"Most accuracy per training minute: {top['family']} {top['method']} phi {top['phi']} "
            f"({pct(top['accuracy'])} % at {mmacs(top['macs'])} MACs, {top['train_seconds']:.0f} s); then "
            + ", ".join(f"{r.family} {r.method} phi {r.phi} ({r.acc_per_train_minute:.3f})"
                        for r in ranked.iloc[1:5].itertuples())
            + f". The B0 members rank {', '.join(str(i + 1) for i in b0_rank)} of {len(ranked)}. Resolution-only "
            f"members take {', '.join(f'{v:.2f}x (phi {p})' for p, v in ratio.items())} the training time of the "
            "compound member of equal MACs: upsampled inputs make larger activations, which MACs do not count.", ""]
