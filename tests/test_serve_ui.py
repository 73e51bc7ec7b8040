"""The `inpaintlab serve` page in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium, as tests/test_ui.py): upload a photo, paint a stroke with real mouse events, press Fill,
the result appears and its known pixels equal the upload's; extend by 20% on the right gives the
larger image; the before/after toggle and the download link; a bad file's error on the page.

Skipped when Chromium or chromedriver is missing, unless INPAINTLAB_REQUIRE_UI=1 (what `.ci/run`
sets), where that is a failure. Screenshots (reports/serve_*.png in the test's tmp dir) are copied
to INPAINTLAB_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.serve import photo, running_server, tiny_onnx
from PIL import Image
from test_ui import browser_missing, chromium

from inpaintlab.data.io import save_image
from inpaintlab.inference import load_model
from inpaintlab.serve.app import create_app

pytestmark = pytest.mark.slow

WAIT_S = 60
BRUSH_CSS_PX = 28  # the page's default brush


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Iterator[str]:
    if reason := browser_missing():
        if os.environ.get("INPAINTLAB_REQUIRE_UI") == "1":
            pytest.fail(f"INPAINTLAB_REQUIRE_UI=1 but {reason}")
        pytest.skip(reason)
    model = load_model(tiny_onnx(tmp_path_factory.mktemp("serve-ui") / "model.onnx"))
    with running_server(create_app(model)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from chromium()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Callable[[object, str], Path]:
    reports = tmp_path_factory.mktemp("serve-shots") / "reports"
    reports.mkdir()

    def _save(driver, name: str) -> Path:
        time.sleep(0.3)  # let the last paint land
        path = reports / f"serve_{name}.png"
        driver.save_screenshot(str(path))
        if os.environ.get("INPAINTLAB_SCREENSHOT_DIR"):
            target = Path(os.environ["INPAINTLAB_SCREENSHOT_DIR"])
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name)
        return path

    return _save


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def wait_for(driver, condition: Callable[[object], object], what: str, shots, name: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(condition)
    except TimeoutException:
        shots(driver, f"{name}_timeout")
        message = by_id(driver, "message").text
        pytest.fail(f"{what} not shown within {WAIT_S}s; page message: {message!r}")


def upload(driver, path: Path) -> None:
    field = by_id(driver, "file")
    driver.execute_script("arguments[0].style.display = 'block'", field)  # it sits in the label
    field.send_keys(str(path))
    driver.execute_script("arguments[0].style.display = ''", field)


def result_pixels(driver) -> np.ndarray:
    """The result image's own bytes (the PNG the server sent), decoded here, not a screenshot."""
    data = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById('result').src).then(r => r.arrayBuffer()).then(buffer => {
          let text = '';
          const bytes = new Uint8Array(buffer);
          for (let i = 0; i < bytes.length; i += 0x8000)
            text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
          done(btoa(text));
        });
        """
    )
    with Image.open(io.BytesIO(base64.b64decode(data))) as img:
        return np.asarray(img.convert("RGB"))


def near_stroke(shape: tuple[int, int], points: list[tuple[float, float]], radius: float):
    """Pixels within `radius` of the polyline through `points` (image coordinates)."""
    import cv2

    line = np.full(shape, 255, np.uint8)
    pts = np.round(np.array(points)).astype(np.int32)
    cv2.polylines(line, [pts], False, 0, thickness=1)
    return cv2.distanceTransform(line, cv2.DIST_L2, 5) <= radius


def test_paint_a_stroke_fill_and_the_known_pixels_are_the_uploads(page, browser, shots, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    image = photo(240, 320, seed=2)
    save_image(tmp_path / "photo.png", image)
    browser.set_window_size(1600, 1000)
    browser.get(page)
    upload(browser, tmp_path / "photo.png")
    wait_for(
        browser,
        lambda d: by_id(d, "original-size").text == "320 × 240",
        "the uploaded photo",
        shots,
        "uploaded",
    )
    time.sleep(0.3)  # layout settles
    canvas = by_id(browser, "paint")
    rect = canvas.rect
    scale = 320 / rect["width"]  # image pixels per CSS pixel
    # a stroke with real mouse events: press, move in steps, release (offsets from the centre)
    start, steps, step = (-70, -25), 12, (12, 4)
    actions = ActionChains(browser, duration=20)
    actions.move_to_element_with_offset(canvas, *start).click_and_hold()
    for _ in range(steps):
        actions.move_by_offset(*step)
    actions.release().perform()
    shots(browser, "painted")
    assert not by_id(browser, "fill").get_attribute("disabled")

    by_id(browser, "fill").click()
    wait_for(browser, lambda d: by_id(d, "result").is_displayed(), "the result", shots, "filled")
    wait_for(browser, lambda d: by_id(d, "status").text.startswith("Done"), "Done", shots, "filled")
    shots(browser, "filled")
    result = result_pixels(browser)
    assert result.shape == image.shape
    # where the stroke went, in image pixels
    cx, cy = rect["width"] / 2 + start[0], rect["height"] / 2 + start[1]
    points = [((cx + k * step[0]) * scale, (cy + k * step[1]) * scale) for k in range(steps + 1)]
    painted = near_stroke(image.shape[:2], points, BRUSH_CSS_PX * scale / 2 + 2)
    changed = (result != image).any(axis=-1)
    assert changed.sum() > 100, "nothing was generated"
    assert not changed[~painted].any(), "pixels outside the stroke changed"
    np.testing.assert_array_equal(result[~painted], image[~painted])
    # the painted area was generated: most of the stroke's core differs from the photo
    core = near_stroke(image.shape[:2], points, BRUSH_CSS_PX * scale / 2 - 3)
    assert changed[core].mean() > 0.5

    # before / after toggle, download link
    by_id(browser, "show-before").click()
    assert by_id(browser, "result").get_attribute("src").startswith("data:image/png")
    by_id(browser, "show-after").click()
    assert by_id(browser, "result").get_attribute("src").startswith("blob:")
    download = by_id(browser, "download")
    assert download.get_attribute("download") == "photo_filled.png"
    assert download.get_attribute("href").startswith("blob:")

    # undo removes the stroke: nothing left to fill
    by_id(browser, "undo").click()
    assert by_id(browser, "fill").get_attribute("disabled")


def test_extend_by_20_percent_on_the_right_gives_the_larger_image(page, browser, shots, tmp_path):
    image = photo(200, 300, seed=11)
    save_image(tmp_path / "lake.png", image)
    browser.get(page)
    upload(browser, tmp_path / "lake.png")
    wait_for(
        browser, lambda d: by_id(d, "original-size").text == "300 × 200", "the photo", shots, "ext"
    )
    by_id(browser, "mode-extend").click()
    for side, value in (("left", "0"), ("top", "0"), ("right", "20"), ("bottom", "0")):
        field = by_id(browser, f"ext-{side}")
        field.clear()
        field.send_keys(value)
    assert "Result: 360 × 200" in by_id(browser, "extend-size").text
    shots(browser, "extend_preview")
    by_id(browser, "fill").click()
    wait_for(
        browser,
        lambda d: by_id(d, "result-size").text == "360 × 200",
        "the extended result",
        shots,
        "extended",
    )
    shots(browser, "extended")
    result = result_pixels(browser)
    assert result.shape == (200, 360, 3)
    np.testing.assert_array_equal(result[:, :300], image)
    assert by_id(browser, "download").get_attribute("download") == "lake_extended.png"
    shots(browser, "screenshot")  # reports/serve_screenshot.png: the page with a result


def test_a_file_that_is_not_an_image_shows_the_servers_message(page, browser, shots, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture\n")
    browser.get(page)
    upload(browser, tmp_path / "notes.png")
    wait_for(
        browser,
        lambda d: "not an image this browser can show" in by_id(d, "message").text,
        "the browser's complaint",
        shots,
        "bad_file",
    )
    by_id(browser, "mode-extend").click()
    by_id(browser, "fill").click()
    wait_for(
        browser,
        lambda d: "cannot read image 'notes.png': not an image" in by_id(d, "message").text,
        "the server's one-line error",
        shots,
        "error",
    )
    shots(browser, "error")
    # the page and the server still work
    image = photo(64, 96)
    save_image(tmp_path / "ok.png", image)
    upload(browser, tmp_path / "ok.png")
    wait_for(browser, lambda d: by_id(d, "original-size").text == "96 × 64", "ok", shots, "ok")
    by_id(browser, "fill").click()
    wait_for(browser, lambda d: by_id(d, "result-size").text == "115 × 64", "result", shots, "ok")
    assert not by_id(browser, "message").is_displayed()
