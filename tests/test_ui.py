"""The MLflow UI, as `make ui` serves it, in headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium; nothing is downloaded): the runs are listed by name, a run page shows its
metrics, a logged validation grid renders as an image, and the registered model is listed.

Skipped when Chromium or chromedriver is missing, unless INPAINTLAB_REQUIRE_UI=1 (what `.ci/run`
sets, after installing them), where that is a failure. Screenshots go to the test's tmp dir
(reports/ui_*.png) and, when INPAINTLAB_SCREENSHOT_DIR is set, are copied there.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import BIN, ci_project, run_ok
from helpers.mlflow_server import mlflow_server
from mlflow.tracking import MlflowClient
from PIL import Image

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
]
WAIT_S = 90  # a 2-core machine under load renders the React app slowly


def browser_missing() -> str | None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (make install)"
    return None


run = run_ok


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A project whose sqlite store holds two ci runs: the full pipeline (train, test metrics,
    registered model) and a one-epoch run with another seed."""
    if reason := browser_missing():
        if os.environ.get("INPAINTLAB_REQUIRE_UI") == "1":
            pytest.fail(f"INPAINTLAB_REQUIRE_UI=1 but {reason}")
        pytest.skip(reason)
    project = ci_project(tmp_path_factory.mktemp("ui") / "project")
    run([sys.executable, "-m", "inpaintlab.params", "experiment=ci"], project)
    run([str(BIN / "dvc"), "repro"], project)
    run(
        [
            sys.executable,
            "-m",
            "inpaintlab.train",
            "experiment=ci",
            "seed=7",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "hydra.run.dir=logs/hydra/ui-seed7",
        ],
        project,
    )
    return project


@pytest.fixture(scope="module")
def ui(store: Path) -> Iterator[str]:
    """`mlflow ui` on the project's store, exactly as `make ui` starts it (another port)."""
    with mlflow_server(store, "sqlite:///mlflow.db", command="ui") as url:
        yield url


def chromium() -> Iterator:
    """Headless Debian Chromium through its chromedriver, with a throwaway profile (shared by the
    MLflow UI test and tests/test_serve_ui.py)."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="inpaintlab-chromium-")
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    yield from chromium()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Callable[[object, str], Path]:
    """shots(driver, name): save reports/ui_<name>.png (and copy to $INPAINTLAB_SCREENSHOT_DIR)."""
    reports = tmp_path_factory.mktemp("ui-shots") / "reports"
    reports.mkdir()

    def _save(driver, name: str) -> Path:
        path = reports / f"ui_{name}.png"
        driver.save_screenshot(str(path))
        if os.environ.get("INPAINTLAB_SCREENSHOT_DIR"):
            target = Path(os.environ["INPAINTLAB_SCREENSHOT_DIR"])
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name)
        return path

    return _save


def open_and_wait(driver, url: str, ready: Callable[[object], object], what: str, shots, name: str):
    """Load url, wait until ready(driver) is truthy, screenshot; on timeout fail with the page text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    try:
        value = WebDriverWait(driver, WAIT_S, poll_frequency=0.5).until(ready)
    except TimeoutException:
        shots(driver, f"{name}_timeout")
        pytest.fail(
            f"{what} not shown at {url} within {WAIT_S}s; page text:\n{page_text(driver)[:2000]}"
        )
    time.sleep(0.5)  # let the last paint land before the screenshot
    shots(driver, name)
    return value


def page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def has_text(*needles: str) -> Callable[[object], bool]:
    return lambda driver: all(n in page_text(driver) for n in needles)


def ci_runs(ui: str):
    client = MlflowClient(tracking_uri=ui)
    experiment = client.get_experiment_by_name("inpaintlab")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return client, experiment.experiment_id, runs


def test_experiment_page_lists_the_runs_by_name(ui, browser, shots):
    _, experiment_id, runs = ci_runs(ui)
    names = [r.info.run_name for r in runs]
    assert (
        len(names) == 2
        and names[0].startswith("unet-32px-s42")
        and names[1].startswith("unet-32px-s7")
    )
    # "Model training" view of the runs table (the UI opens experiments in its GenAI view)
    url = f"{ui}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    open_and_wait(browser, url, has_text(*names), "run names", shots, "runs")


def test_run_page_shows_the_metrics(ui, browser, shots):
    _, experiment_id, runs = ci_runs(ui)
    first = runs[0]
    psnr = first.data.metrics["val_psnr"]
    url = (
        f"{ui}/#/experiments/{experiment_id}/runs/{first.info.run_id}?workflowType=machine_learning"
    )
    open_and_wait(
        browser,
        url,
        has_text(first.info.run_name, "val_psnr", "test_box_psnr_masked"),
        "the run's metrics",
        shots,
        "run",
    )
    text = page_text(browser)
    shown = f"{math.floor(psnr * 100) / 100:.2f}"  # the UI prints more digits: compare a prefix
    assert shown in text, f"val_psnr {psnr} not on the page:\n{text[:2000]}"


def test_logged_sample_grid_renders_in_the_artifacts_view(ui, browser, shots, tmp_path):
    client, experiment_id, runs = ci_runs(ui)
    run_id = runs[0].info.run_id
    grids = sorted(
        a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")
    )
    assert grids, "no val_samples image logged"
    with Image.open(client.download_artifacts(run_id, grids[-1], str(tmp_path))) as image:
        width = image.width
    url = f"{ui}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{grids[-1]}?workflowType=machine_learning"

    def rendered(driver) -> int:
        """naturalWidth of the previewed artifact (a blob: image), 0 while loading."""
        return driver.execute_script(
            "return Math.max(0, ...Array.from(document.images)"
            ".filter(i => i.src.startsWith('blob:') && i.complete).map(i => i.naturalWidth))"
        )

    shown = open_and_wait(browser, url, rendered, "the sample grid image", shots, "artifact_image")
    assert shown == width  # the preview is the logged PNG itself
    shots(browser, "screenshot")  # reports/ui_screenshot.png: the run with its sample grid


def test_registered_model_page_lists_the_version(ui, browser, shots):
    client = MlflowClient(tracking_uri=ui)
    [version] = client.search_model_versions("name='inpaintlab'")
    url = f"{ui}/#/models/inpaintlab?workflowType=machine_learning"
    open_and_wait(
        browser,
        url,
        has_text("inpaintlab", f"Version {version.version}"),
        "the registered model's version",
        shots,
        "registered_model",
    )
