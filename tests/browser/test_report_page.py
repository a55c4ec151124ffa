"""report.html in a real chromium: the embedded viewer, the Pareto front (hover, click for the
spec) and the scaling curves (toggle methods, band and axis) work, with no errors or requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from effnas.experiments.report.explorable import pareto_data
from effnas.scaling import PAPER, family
from effnas.search_spaces import load_spec

pytestmark = pytest.mark.browser


def test_report_viewer_pareto_and_curves(open_page: Any, explore_run: Path, shots: Path) -> None:
    w = open_page(explore_run / "report.html")
    page = w.page
    # The viewer of the run's baseline with the grid's coefficients: phi = 3 as 'effnas family' has it.
    page.locator(".ev-phi").fill("3")
    m3 = family(load_spec(str(explore_run / "baseline.json")), [3], coefficients=PAPER)[0]
    assert page.locator(".ev-input").inner_text() == f"{m3.spec.resolution}×{m3.spec.resolution} px"
    assert page.locator(".ev-total-macs").inner_text() == f"{m3.macs:,}"
    # Pareto: every finished trial is a point; hover shows its numbers, a click its spec JSON.
    data = pareto_data(explore_run)
    assert isinstance(data, dict)
    assert page.locator(".er-trial").count() == len(data["trials"])
    assert page.locator(".er-trial.er-on-front").count() == len(data["front"])
    # The y axis says what the search measured (here a trained search's accuracy; a proxy's is a score).
    assert page.locator(".effnas-pareto .er-label").all_text_contents()[1] == data["ylabel"] == "validation accuracy"
    best = data["front"][-1]
    point = page.locator(f".er-trial[data-trial='{best}']")
    point.hover()
    tip = page.locator(".effnas-pareto .er-tip")
    assert tip.is_visible()
    trial = next(t for t in data["trials"] if t["number"] == best)
    assert tip.inner_text().splitlines() == trial["tip"]
    page.locator(".effnas-pareto").screenshot(path=str(shots / "report_pareto_hover.png"))
    point.click()
    shown = json.loads(page.locator(".er-spec-json").input_value())
    row = pd.read_csv(explore_run / "search" / "trials.csv").set_index("number").loc[best]
    assert shown == json.loads(row["spec"])
    page.locator(".er-copy").click()
    page.wait_for_function("document.querySelector('.er-copy').textContent !== 'copy'", timeout=5000)
    assert page.locator(".er-copy").inner_text() in ("copied", "selected: press Ctrl+C")
    page.screenshot(path=str(shots / "report.png"), full_page=True, clip={"x": 0, "y": 0, "width": 1280,
                                                                            "height": 2600})
    # Curves: a group per method; unchecking one hides it, the band toggles, the axis switches.
    groups = ".effnas-curves .er-method-group"
    assert page.locator(groups).count() == 4 and page.locator(".er-band-area").count() == 1
    page.locator(".er-method[data-method='depth']").uncheck()
    assert page.locator(f"{groups}[data-method='depth']").is_hidden()
    assert page.locator(f"{groups}[data-method='compound'] .er-point").count() == 4
    page.locator(".er-band").uncheck()
    assert page.locator(".er-band-area").count() == 0
    page.locator(".er-axis").select_option("params")
    assert "parameters" in page.locator(".effnas-curves .er-plot").inner_html()
    page.locator(f"{groups}[data-method='compound'] .er-point").last.hover()  # phi 0 is shared by all methods
    assert page.locator(".effnas-curves .er-tip").inner_text().startswith("compound phi 3:")
    w.assert_clean()
