from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from scipy import stats

import effnas.search_spaces as ss
from effnas.scaling import aggregate, family, fit_power_law, matched_baselines, plot_curves, train_members
from effnas.scaling.curves import draw_curves, holdout, holdout_text, interval_text


def test_fit_recovers_parameters_from_noisy_seeds_and_band_widens() -> None:
    rng = np.random.default_rng(0)
    x = np.repeat([1e6, 2e6, 4e6, 8e6, 16e6], 3)
    y = 0.3 * (x / 1e6) ** -0.4 + 0.05 + rng.normal(0, 0.003, x.size)
    f = fit_power_law(x, y)
    assert f.a == pytest.approx(0.3, abs=0.03) and f.b == pytest.approx(0.4, abs=0.08)
    assert f.c == pytest.approx(0.05, abs=0.03)
    lo, hi = f.band([4e6, 64e6, 1e9])
    width = hi - lo
    assert np.all(width > 0) and width[0] < width[1] < width[2]


def test_fit_needs_three_sizes() -> None:
    with pytest.raises(ValueError, match="3 distinct"):
        fit_power_law([1e6, 1e6, 2e6], [0.2, 0.21, 0.1])


def test_curves_from_a_trained_family(tmp_path, evaluator) -> None:
    base = ss.get("tiny")
    members = family(base, range(4))
    t = train_members(members + matched_baselines(base, members), evaluator, train_config={"dataset": "test"},
                      out_dir=tmp_path, seeds=(0, 1))
    assert len(t) == (4 + 9) * 2
    res = plot_curves(t, tmp_path / "curves", metric="test_accuracy")
    for f in res["files"]:
        with open(f, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    fits = json.loads((tmp_path / "curves/fits.json").read_text())
    # The test evaluator's law is error = 0.6 (MACs/1e6)^-0.35 + 0.05 (test = val - 0.01): the fit must find it.
    comp = fits["macs"]["compound"]
    assert comp["b"] == pytest.approx(0.35, abs=0.05)
    pts = res["points"]
    assert set(pts.method) == {"compound", "depth", "width", "resolution"}
    assert (pts[pts.method == "depth"].phi == 0).any()  # the shared base point
    assert (pts["n"] == 2).all() and (pts["ci_low"] < pts["mean"]).all() and (pts["mean"] < pts["ci_high"]).all()
    # Every fit with sizes below its largest phi is checked on that phi, held out.
    assert comp["holdout"]["phi"] == 3 and abs(comp["holdout"]["difference"]) < 0.01
    # Activations are an axis beside MACs and params: a plot, fits and the counted value per point.
    assert [f.rsplit("/", 1)[-1] for f in res["files"]] == \
        ["accuracy_vs_macs.png", "accuracy_vs_params.png", "accuracy_vs_activations.png"]
    assert set(fits["activations"]) == {"compound", "depth", "width", "resolution"}
    c3 = pts[(pts.method == "compound") & (pts.phi == 3)]
    assert int(c3["activations"].iloc[0]) == ss.counts(members[3].spec).activations
    # A table without activations (written before they were counted) still gives the MACs and params curves.
    old = plot_curves(t.drop(columns="activations"), tmp_path / "old", metric="test_accuracy")
    assert len(old["files"]) == 2 and "activations" not in old["fits"]


def _law_table(phis: range, seeds: tuple[int, ...], *, error, noise: float = 0.0, method: str = "compound"):
    """A results table of one method: sizes x = 1e6 * 2**phi, accuracy 1 - error(x) plus a seeded
    normal noise per run."""
    rng = np.random.default_rng(0)
    rows = [{"method": method, "phi": phi, "macs": 2**phi * 10**6, "params": 2**phi * 10**4, "seed": s,
             "test_accuracy": 1 - float(error(2.0**phi)) + (rng.normal(0, noise) if noise else 0.0)}
            for phi in phis for s in seeds]
    return pd.DataFrame(rows)


def test_aggregate_gives_the_t_interval_for_three_seeds_and_none_for_one() -> None:
    df = pd.DataFrame({"method": ["compound"] * 4, "phi": [0, 0, 0, 1], "macs": [1, 1, 1, 2], "params": [3, 3, 3, 4],
                       "test_accuracy": [0.60, 0.62, 0.64, 0.70]})
    a = aggregate(df, metric="test_accuracy").set_index("phi")
    half = stats.t.ppf(0.975, 2) * 0.02 / np.sqrt(3)  # sd of 0.60, 0.62, 0.64 is 0.02
    assert a.loc[0, "n"] == 3 and a.loc[0, "mean"] == pytest.approx(0.62)
    assert (a.loc[0, "ci_low"], a.loc[0, "ci_high"]) == pytest.approx((0.62 - half, 0.62 + half))
    assert a.loc[0, "std"] == pytest.approx(0.02)
    assert a.loc[1, "n"] == 1 and a.loc[1, "mean"] == pytest.approx(0.70)
    assert np.isnan(a.loc[1, ["std", "ci_low", "ci_high"]].astype(float)).all()
    assert interval_text(a.loc[1]) == "70.00 (n = 1)"
    assert interval_text(a.loc[0]) == f"62.00 [{100 * (0.62 - half):.2f}, {100 * (0.62 + half):.2f}] (n = 3)"


def test_a_fit_whose_best_floor_is_zero_is_flagged_at_bound_and_drawn_without_band(tmp_path) -> None:
    # error = 0.6 x^-0.3 - 0.1: the best saturating law would need c = -0.1; within the bounds it is c = 0.
    df = _law_table(range(5), (0, 1, 2), error=lambda x: 0.6 * x**-0.3 - 0.1, noise=0.002)
    f = fit_power_law(df["macs"], 1 - df["test_accuracy"])
    assert f.at_bound == ("c",) and f.c < 1e-6 and f.status == "at bound" and not f.has_band
    assert np.isnan(f.band([1e6, 1e8])[0]).all()
    assert f.to_dict()["at_bound"] == ["c"] and f.to_dict()["status"] == "at bound"
    # The same law with a floor of 0.05 is determined, with a band.
    g = fit_power_law(df["macs"], 1 - df["test_accuracy"] + 0.15)
    assert g.at_bound == () and g.status == "determined" and np.isfinite(g.band([1e8])[0]).all()

    res = plot_curves(df, tmp_path, metric="test_accuracy")
    assert json.loads((tmp_path / "fits.json").read_text())["macs"]["compound"]["at_bound"] == ["c"]
    assert pd.read_csv(tmp_path / "bands.csv")[["band_low", "band_high"]].isna().all().all()
    fig = Figure()
    ax = fig.add_subplot()
    draw_curves(ax, res["points"], {"compound": f}, "macs", extrapolate=2.0)
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)  # no fill_between
    fitted = [line for line in ax.lines if len(line.get_xdata()) == 80]
    assert len(fitted) == 1 and fitted[0].get_linestyle() == "--"
    assert "at bound: c, no band" in ax.get_legend().get_texts()[0].get_text()
    assert "95 % t-interval over seeds" in ax.get_ylabel()


def test_an_undetermined_fit_is_drawn_as_points_only() -> None:
    df = _law_table(range(3), (0,), error=lambda x: 0.3 * x**-0.5 + 0.05 + 0.01 * np.sin(x))  # 3 points, 3 params
    f = fit_power_law(df["macs"], 1 - df["test_accuracy"])
    assert f.status == "undetermined" and not f.has_band
    fig = Figure()
    ax = fig.add_subplot()
    bands = draw_curves(ax, aggregate(df, metric="test_accuracy"), {"compound": f}, "macs", extrapolate=2.0)
    assert bands == [] and not ax.collections  # n = 1 everywhere: no error bars either
    assert [len(line.get_xdata()) for line in ax.lines] == [3]  # the three points, no curve
    assert ax.lines[0].get_markerfacecolor() == "none"  # one run each: hollow
    assert ax.get_legend().get_texts()[0].get_text() == "compound (n = 1); fit undetermined: no band, not drawn"


def test_the_held_out_prediction_of_a_power_law_is_accurate() -> None:
    law = lambda x: 0.3 * x**-0.5 + 0.05  # noqa: E731
    df = _law_table(range(5), (0, 1, 2), error=law, noise=0.002)
    h = holdout(df, metric="test_accuracy")["compound"]
    assert h["fit_phis"] == [0, 1, 2, 3] and h["phi"] == 4 and h["x"] == 16e6 and h["observed_n"] == 3
    assert h["predicted_accuracy"] == pytest.approx(1 - law(16.0), abs=0.005)
    assert h["difference"] == pytest.approx(h["predicted_accuracy"] - h["observed_accuracy"])
    assert abs(h["difference"]) < 0.006 and h["observed_ci_low"] < h["observed_accuracy"] < h["observed_ci_high"]
    assert "predicts phi 4" in holdout_text(h) and "(n = 3)" in holdout_text(h)
    # A curve that bends away after phi 3 is caught: the prediction misses by the bend.
    bent = df.assign(test_accuracy=df["test_accuracy"] - 0.05 * (df["phi"] == 4))
    assert holdout(bent, metric="test_accuracy")["compound"]["difference"] == pytest.approx(0.05, abs=0.006)
    # Three sizes in all leave two below the largest: no check, and why.
    assert holdout(df[df["phi"] <= 2], metric="test_accuracy")["compound"].startswith("not checked: ")


def test_bootstrap_over_seeds_brackets_the_fit() -> None:
    df = _law_table(range(5), (0, 1, 2), error=lambda x: 0.3 * x**-0.5 + 0.05, noise=0.003)
    f = fit_power_law(df["macs"], 1 - df["test_accuracy"], bootstrap=30)
    assert f.boot is not None and f.boot_draws == 30
    for (lo, hi), v in zip(f.boot, (f.a, f.b, f.c), strict=True):
        assert lo < v < hi
    assert "resampled with replacement within each size" in f.to_dict()["bootstrap"]["method"]
    one = df[df["seed"] == 0]
    assert fit_power_law(one["macs"], 1 - one["test_accuracy"], bootstrap=10).to_dict()["bootstrap"].startswith(
        "not possible: one run per size")
