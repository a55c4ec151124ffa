"""Playwright driving Debian's chromium (never a browser of Playwright's own download).

The browser is found at ``$EFFNAS_CHROMIUM``, else ``chromium`` on the PATH. Without it, or without
the ``playwright`` package, the browser tests are SKIPPED with a reason that names the install line
(`pytest -rs` lists it; on a user's machine without chromium), and they FAIL when
``EFFNAS_REQUIRE_BROWSER=1``, which ``.ci/run`` sets after installing chromium: CI never passes
without having opened the pages.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

INSTALL = ("install Debian's chromium with `apt-get install -y chromium` (as root; or set EFFNAS_CHROMIUM to a "
           "chromium binary) and Playwright with `pip install -e '.[dev]'`; never `playwright install`")
#: Chromium flags: no sandbox (CI runs as root), and no background traffic of its own.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    given = os.environ.get("EFFNAS_CHROMIUM")
    path = given or shutil.which("chromium")
    if not path or not Path(path).is_file():
        where = f"EFFNAS_CHROMIUM={given} is not a file" if given else "no chromium on PATH"
        _missing(f"the browser tests need chromium ({where}): {INSTALL}")
    return path


def _missing(reason: str) -> None:
    if os.environ.get("EFFNAS_REQUIRE_BROWSER") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per test module."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing(f"the playwright package is missing: {INSTALL}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=ARGS)
        yield b
        b.close()


@dataclass
class Watched:
    """A page with what it logged and requested: console errors, page errors, non-file requests."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.requests == [], f"the page requested {self.requests}"


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """``open_page(path)``: a new 1280 px wide page on ``file://path`` that records errors and requests."""
    pages: list[Any] = []

    def _open(path: Path) -> Watched:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(5000)  # ms; these pages are local and small
        w = Watched(page)
        page.on("console", lambda m: w.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: w.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: w.errors.append(f"failed request: {r.url}"))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else w.requests.append(r.url))
        pages.append(page)
        page.goto(path.resolve().as_uri())
        return w

    yield _open
    for p in pages:
        p.close()


@pytest.fixture
def find_chromium() -> Any:
    """:func:`chromium_path`, for the test of its failure message (conftest modules are not importable)."""
    return chromium_path


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go for a person to look at: ``$EFFNAS_SCREENSHOTS`` or the test's tmp dir."""
    out = Path(os.environ.get("EFFNAS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out
