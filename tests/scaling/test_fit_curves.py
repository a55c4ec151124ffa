from __future__ import annotations

import json

import numpy as np
import pytest

import effnas.search_spaces as ss
from effnas.scaling import family, fit_power_law, matched_baselines, plot_curves, train_members


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
    assert (pts["std"] > 0).any()
