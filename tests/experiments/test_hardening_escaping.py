"""User text in the pages effnas writes (issue 23): a hostile spec name or config description cannot end
or open an element of ``effnas view``'s page or ``report.html``, nor become raw HTML in ``report.md``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.report.escape import md_fence, md_text
from effnas.experiments.report.markdown import write_report

HOSTILE = "x<!--<script>alert(1)</script>--></script><b>&amp;`|*_[a](b)"
DESCRIPTION = "# not a heading\n```\n<script>alert(2)</script> <img src=x onerror=alert(3)> & `code` *em*\n- item"


def _scripts(page: str) -> dict[str, object]:
    """Every inline JSON element of ``page`` parsed back with json.loads, by id."""
    found = re.findall(r"<script type='application/json' id='([^']+)'>(.*?)</script>", page, re.S)
    assert found, "no inline JSON"
    return {element: json.loads(text) for element, text in found}


def _no_markup_from(page: str) -> None:
    assert "<!--" not in page and "<script>alert" not in page and "<img src=x" not in page and "<b>" not in page


def test_a_hostile_spec_name_stays_inside_the_viewers_json(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**ss.get("tiny").to_dict(), "name": HOSTILE}))
    out = tmp_path / "v.html"
    assert main(["view", str(spec), "--official", "--phis", "0-1", "-o", str(out)]) == 0, capsys.readouterr().err
    page = out.read_text()
    data = _scripts(page)["viewer-data"]
    assert isinstance(data, dict) and data["base"] == HOSTILE
    assert page.count("<script") == page.count("</script>")  # nothing in the data ends or opens an element
    _no_markup_from(page)


def test_a_hostile_config_name_and_description_are_escaped_in_the_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "baseline.json").write_text(json.dumps({**ss.get("tiny").to_dict(), "name": HOSTILE}))
    md, htm = write_report(run, config={"name": HOSTILE, "description": DESCRIPTION}, stages={})
    text = md.read_text()
    assert "<script" not in text and "<img" not in text and "<!--" not in text and "<b>" not in text
    head = text.split("\n## ")[0].splitlines()
    assert len([ln for ln in head if ln.startswith("#")]) == 1  # the description made no heading
    assert not any(ln.startswith(("- ", "```")) for ln in head)
    assert "## Provenance" in text and text.rstrip().endswith(("```", "`"))  # the config's fence is not broken
    page = htm.read_text()
    _no_markup_from(page)
    assert page.count("<script") == page.count("</script>")
    assert any(HOSTILE in json.dumps(v) or HOSTILE in str(v) for v in _scripts(page).values())


def test_markdown_helpers() -> None:
    assert md_text("<a>") == "&lt;a&gt;" and md_text("a | b") == "a \\| b"
    assert md_fence("x ``` y").startswith("````\n") and md_fence("plain") == "```\nplain\n```"
