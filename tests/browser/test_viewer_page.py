"""The viewer page in a real chromium: it loads clean, the slider shows what ``effnas family``
prints, and a click on a block shows its details."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from effnas.experiments.cli.main import main
from effnas.search_spaces.counts import breakdown
from effnas.search_spaces.registry import load_spec

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def family_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], Path]:
    """The viewer of B0 (paper coefficients) and what ``effnas family --json`` prints for phi 0..8."""
    d = tmp_path_factory.mktemp("viewer")
    page = d / "viewer.html"
    assert main(["view", "efficientnet_b0", "--num-classes", "10", "--coefficients", str(_coefficients(d)),
                 "-o", str(page)]) == 0
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["family", "--base", "efficientnet_b0", "--coefficients", str(d / "coefficients.json"),
                     "--dataset", "shapes", "--no-baselines", "--phis", "0-8", "--json", "--out", str(d / "fam")]) == 0
    return page, json.loads(buf.getvalue()), d / "fam" / "specs"


def _coefficients(d: Path) -> Path:
    p = d / "coefficients.json"
    p.write_text(json.dumps({"alpha": 1.2, "beta": 1.1, "gamma": 1.15}))
    return p


def _int(n: int) -> str:
    return f"{n:,}"


def _text(page: Any, sel: str) -> str:
    return str(page.locator(sel).first.inner_text()).strip()


def test_slider_shows_the_family_numbers(open_page: Any, family_rows: Any, shots: Path) -> None:
    path, rows, specs = family_rows
    w = open_page(path)
    page = w.page
    page.screenshot(path=str(shots / "viewer_phi0.png"), full_page=True)
    for phi in (0, 3, 8):
        page.locator(".ev-phi").fill(str(phi))
        r = rows[phi]
        assert _text(page, ".ev-label").startswith(f"phi = {phi}")
        assert _text(page, ".ev-input") == f"{r['resolution']}×{r['resolution']} px"
        assert float(_text(page, ".ev-f-depth")) == pytest.approx(r["depth"], abs=6e-4)
        assert float(_text(page, ".ev-f-width")) == pytest.approx(r["width"], abs=6e-4)
        assert float(_text(page, ".ev-f-res")) == pytest.approx(r["resolution_mult"], abs=6e-4)
        assert (_text(page, ".ev-total-params"), _text(page, ".ev-total-macs")) == (_int(r["params"]), _int(r["macs"]))
        assert _text(page, ".ev-blocks-total") == str(r["blocks"])
        # Each card: output C x H x W, params and MACs of the member's stage, as models show counts them.
        parts = breakdown(load_spec(str(specs / f"{r['name']}.json")))
        cards = page.eval_on_selector_all(".ev-card", """cs => cs.map(c => [c.dataset.part,
            c.querySelector('.ev-out').textContent, c.querySelector('.ev-params').textContent,
            c.querySelector('.ev-macs').textContent, c.querySelectorAll('.ev-block').length])""")
        assert cards == [[p.name, str(p.out_channels) if p.name == "classifier" else
                          f"{p.out_channels}×{p.out_resolution}×{p.out_resolution}",
                          _int(p.params), _int(p.macs), len(p.blocks)] for p in parts]
        if phi == 3:
            page.screenshot(path=str(shots / "viewer_phi3.png"), full_page=True)
    w.assert_clean()


def test_block_click_opens_its_details(open_page: Any, family_rows: Any, shots: Path) -> None:
    path, rows, specs = family_rows
    w = open_page(path)
    page = w.page
    page.locator(".ev-phi").fill("3")
    assert page.locator(".ev-details").is_hidden()
    page.locator(".ev-block[data-block='stages.3.1']").click()
    details = page.locator(".ev-details")
    assert details.is_visible()
    spec = load_spec(str(specs / f"{rows[3]['name']}.json"))
    stage = next(p for p in breakdown(spec) if p.name == "stages.3")
    block = stage.blocks[1]
    index = sum(s.repeats for s in spec.stages[:3]) + 1
    assert _text(page, ".ev-d-expansion") == "6" and _text(page, ".ev-d-se") == "0.25"
    assert _text(page, ".ev-d-params") == _int(block.params) and _text(page, ".ev-d-macs") == _int(block.macs)
    assert _text(page, ".ev-d-drop") == f"{spec.drop_rates()[index]:.4f}"
    assert _text(page, ".ev-d-shortcut") == "identity"
    page.screenshot(path=str(shots / "viewer_block.png"), full_page=True)
    # The selection follows the slider while the block exists, and the close button hides it.
    page.locator(".ev-phi").fill("4")
    assert details.is_visible() and page.locator(".ev-block.ev-selected").get_attribute("data-block") == "stages.3.1"
    page.locator(".ev-close").click()
    assert details.is_hidden()
    w.assert_clean()


def test_missing_chromium_skips_or_fails_with_the_install_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               find_chromium: Any) -> None:
    monkeypatch.setenv("EFFNAS_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.delenv("EFFNAS_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install -y chromium"):
        find_chromium()
    monkeypatch.setenv("EFFNAS_REQUIRE_BROWSER", "1")  # as in CI: never a silent pass
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        find_chromium()
