"""The review report rendered in headless Chromium: the plots and the summary are there, and
the page makes no request outside its own file.

Needs the Debian packages ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` Python
package; Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exposure_ctrl.report.review import write_review
from exposure_ctrl.store import Store

CHROMIUM = os.environ.get("EXPOSURE_CTRL_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not Path(CHROMIUM).is_file():  # pragma: no cover - depends on the machine
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _open_offline(browser: Any, path: Path) -> tuple[Any, list[str], list[str], list[str]]:
    """Open ``path`` with every request outside it failed and recorded."""
    url = path.resolve().as_uri()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    requests: list[str] = []
    console_errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("request", lambda req: requests.append(req.url))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(url, wait_until="load")
    return page, outside, [r for r in requests if r != url], console_errors


def test_the_report_renders_offline_with_plots_and_summary(
    browser: Any, demo: tuple[Store, int], tmp_path: Path
) -> None:
    store, sid = demo
    path = write_review(store, sid, tmp_path / "review.html")
    page, outside, requests, errors = _open_offline(browser, path)
    try:
        assert page.title().startswith(f"Session {sid} · patient P-0001")
        for sel in ("#fig-heart-rate svg", "#fig-scene svg", "#fig-sensitivity svg",
                    "#hr-smooth", "#window-band", "#ceiling-band", "#baseline-line",
                    "#shield-markers", "#gap-sensor-1", "#suds-points-therapist",
                    "#intensity-line", "#trigger-policy", "#param-size"):
            assert page.locator(sel).count() >= 1, sel
        box = page.locator("#fig-heart-rate svg").bounding_box()
        assert box is not None and box["width"] > 800 and box["height"] > 300
        cards = {
            key: page.locator(f'[data-key="{key}"] dd').inner_text()
            for key in ("outcome", "time-in-window", "peak-rise", "step-reached")
        }
        assert cards["outcome"].startswith("Completed")
        assert cards["time-in-window"].split()[1] == "%"
        assert cards["peak-rise"].startswith("+") and "bpm" in cards["peak-rise"]
        assert " of 12" in cards["step-reached"]
        assert page.locator("#levels-table tbody tr").count() >= 1
        shot = tmp_path / "review.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
        try:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, ARTIFACTS / "review.png")
        except OSError:  # pragma: no cover - a read-only checkout still passes
            pass
    finally:
        page.close()
    assert outside == [] and requests == []
    assert errors == []


def test_the_offline_check_catches_a_page_that_phones_home(browser: Any, tmp_path: Path) -> None:
    """The same check on a page with external references does see them (it can fail)."""
    path = tmp_path / "leaky.html"
    path.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.invalid/x.css">'
        '</head><body><img src="http://192.0.2.1/pixel.png"></body></html>',
        encoding="utf-8",
    )
    page, outside, requests, _ = _open_offline(browser, path)
    page.close()
    assert "https://cdn.invalid/x.css" in outside and "http://192.0.2.1/pixel.png" in outside
    assert set(requests) >= set(outside)
