"""The demo page in a real browser (Debian's chromium driven by Playwright): upload, results, error message.

Skipped when /usr/bin/chromium is missing (install it with .ci/install-browser.sh); Playwright's own
browser downloads are never used. Set AGEGENDER_SAVE_SCREENSHOTS=1 to also refresh
benchmarks/screenshots/demo.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
REPO_SCREENSHOT = Path(__file__).resolve().parents[2] / "benchmarks" / "screenshots" / "demo.png"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (.ci/install-browser.sh) to run browser tests")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server) -> Iterator:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(live_server.url + "/", wait_until="domcontentloaded")
    pg.wait_for_selector("#photo input[type=file]", state="attached")
    yield pg
    context.close()


def _upload(page, path: Path) -> None:
    page.set_input_files("#photo input[type=file]", str(path))


def _wait_status(page, text: str) -> None:
    page.wait_for_function("t => (document.querySelector('#status')?.innerText || '').includes(t)", arg=text)


def test_upload_shows_annotated_photo_and_table(page, astronaut_file: Path, tmp_path: Path, service) -> None:
    _upload(page, astronaut_file)
    _wait_status(page, "1 face found")
    table = page.locator("#faces-table")
    assert "P(gender)" in table.inner_text()
    cells = [c.strip() for c in table.locator("[role=gridcell]").all_inner_texts()]
    assert len(cells) == 7, cells  # one face, seven columns
    assert cells[0] == "1" and cells[3] in ("male", "female") and cells[5] == "1.00" and cells[6] == "ok"
    drawing = page.locator("#annotated img").first
    drawing.wait_for(state="visible")
    assert "/gradio_api/file=" in (drawing.get_attribute("src") or "")
    assert drawing.evaluate("img => img.complete && img.naturalWidth") == 512
    assert service.info["backbone"] in page.locator("body").inner_text()  # the model description from its config

    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("AGEGENDER_SAVE_SCREENSHOTS") == "1":
        REPO_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, REPO_SCREENSHOT)


def test_no_face_and_not_an_image_are_explained(page, grey_png: bytes, tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    grey.write_bytes(grey_png)
    _upload(page, grey)
    _wait_status(page, "No face found")

    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not a picture")
    _upload(page, bad)
    page.get_by_text("not an image that can be read").first.wait_for(state="visible")
    assert "No face found" not in page.locator("#status").inner_text()  # the old result was cleared
    page.wait_for_timeout(500)  # let the toast finish sliding in before the screenshot
    page.screenshot(path=str(tmp_path / "not_an_image.png"))


@pytest.fixture(scope="module")
def strict_server(service, live_server_class) -> Iterator:
    """A second app around the same model with tiny limits: 100 KB per file, 0.2 megapixels."""
    from agegender.serving.app import create_app
    from agegender.serving.limits import ServeLimits
    from agegender.serving.service import Service

    strict = Service(service.predictor, ServeLimits(max_upload_bytes=100_000, max_pixels=200_000))
    with live_server_class(create_app(service=strict)) as server:
        yield server
    strict.close()


def test_limits_are_explained_on_the_page(browser, strict_server, astronaut_file: Path) -> None:
    from agegender.serving.examples import PACKAGE_DIR

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(strict_server.url + "/", wait_until="domcontentloaded")
        page.wait_for_selector("#photo input[type=file]", state="attached")
        _upload(page, astronaut_file)  # ~480 KB PNG: refused by the upload limit
        page.get_by_text("exceed the maximum allowed size").first.wait_for(state="visible")
        _upload(page, PACKAGE_DIR / "astronaut.jpg")  # 68 KB but 512x512 = 0.26 megapixels
        page.get_by_text("the limit is 0.2 megapixels").first.wait_for(state="visible")
    finally:
        context.close()


#: For each header cell: how many lines its text takes, how many words it has, and where it ends on screen.
_HEADER_LAYOUT = """() => [...document.querySelectorAll('#faces-table thead th')]
  .filter(th => th.innerText.trim()).map(th => {
    const tops = new Set();
    const walk = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
        if (!node.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.top));
    }
    const box = th.getBoundingClientRect();
    return {text: th.innerText.trim(), lines: tops.size, words: th.innerText.trim().split(/\\s+/).length,
            left: box.left, right: box.right};
})"""


def test_phone_width_shows_whole_headers_and_every_column(browser, live_server, astronaut_file: Path, tmp_path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(live_server.url + "/", wait_until="domcontentloaded")
        page.wait_for_selector("#photo input[type=file]", state="attached")
        _upload(page, astronaut_file)
        _wait_status(page, "1 face found")
        headers = page.evaluate(_HEADER_LAYOUT)
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        assert [h["text"] for h in headers] == ["#", "age", "80% interval", "gender", "P(gender)", "quality", "status"]
        for h in headers:  # a header wraps between its words at most, never inside one
            assert h["lines"] <= h["words"], h
        status = headers[-1]
        table = page.locator("#faces-table").bounding_box()
        assert status["right"] <= min(390, table["x"] + table["width"]) + 1, (status, table)  # not cut off
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        assert "Measured accuracy" in page.locator("#model-facts").inner_text()
    finally:
        context.close()
