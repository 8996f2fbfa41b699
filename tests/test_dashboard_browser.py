"""The dashboard in a real browser: headless Chromium launches an experiment
from the form against the real API, PostgreSQL, Redis and a Celery worker, and
watches its curves and summary appear."""

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.helpers import WorkerProcess, cancel, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Nothing in the browser may reach beyond the loopback server under test.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--window-size=1400,1800",
]
NAME = "<b>dashboard</b> & <script>run()</script>"
CHOSEN = ["zeros", "he_normal"]


@pytest.fixture(scope="module")
def base_url(database_url: str, redis_client: object) -> Iterator[str]:
    """The app on a loopback port, in this process, with the test settings."""
    from service.app import create_app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=5) as probe:
        wait_for(lambda: _ready(probe), 30, "the server")
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


def _ready(probe: httpx.Client) -> bool:
    try:
        return probe.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        # CI installs both and sets INITLAB_REQUIRE_BROWSER: there, no skip.
        if os.environ.get("INITLAB_REQUIRE_BROWSER"):
            pytest.fail("INITLAB_REQUIRE_BROWSER is set but Chromium is missing")
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # The driver's path is given, so Selenium Manager has nothing to look up.
    monkeypatch.setenv("SE_OFFLINE", "true")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.save_screenshot(str(tmp_path / "last-page.png"))
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess("dashboard", tmp_path)
    yield process
    process.kill()


def body_flag(driver: Any, name: str) -> str | None:
    value: str | None = driver.find_element("tag name", "body").get_attribute(
        f"data-{name}"
    )
    return value


def set_number(driver: Any, name: str, value: int) -> None:
    field = driver.find_element("name", name)
    field.clear()
    field.send_keys(str(value))


def test_an_experiment_launched_from_the_form_shows_curves_and_summary(
    base_url: str, browser: Any, worker: WorkerProcess
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(f"{base_url}/")
    wait.until(lambda d: body_flag(d, "form-ready") == "true")

    name = browser.find_element(By.NAME, "name")
    name.clear()
    name.send_keys(NAME)
    Select(browser.find_element(By.NAME, "source")).select_by_value("uci:banknote")
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name=initializer]"):
        if box.is_selected() != (box.get_attribute("value") in CHOSEN):
            box.click()
    set_number(browser, "epochs", 3)

    # A refused spec is explained beside the form, and nothing is launched.
    set_number(browser, "repeats", 0)
    browser.find_element(By.ID, "launch-button").click()
    errors = wait.until(lambda d: d.find_element(By.ID, "form-errors"))
    wait.until(lambda d: errors.is_displayed())
    assert browser.current_url == f"{base_url}/"
    assert errors.find_element(By.CSS_SELECTOR, "li code").text == "repeats"
    assert "greater than or equal to 1" in errors.text
    repeats = browser.find_element(By.NAME, "repeats")
    assert repeats.get_attribute("aria-invalid") == "true"

    set_number(browser, "repeats", 2)
    browser.find_element(By.ID, "launch-button").click()
    wait.until(lambda d: "/experiments/" in d.current_url)
    experiment_id = browser.current_url.rsplit("/", 1)[1]
    try:
        WebDriverWait(browser, 180).until(lambda d: body_flag(d, "polling") == "done")
    finally:
        with httpx.Client(base_url=base_url) as api:
            cancel(api, experiment_id)

    # The name is shown as text, never as markup.
    heading = browser.find_element(By.ID, "experiment-name")
    assert heading.text == NAME
    assert heading.find_elements(By.CSS_SELECTOR, "*") == []
    assert browser.title == f"initlab · {NAME}"
    assert browser.find_element(By.ID, "experiment-status").text == "succeeded"
    progress = browser.find_element(By.ID, "progress-text").text
    assert progress.startswith("12 / 12 epochs · 4 / 4 runs done"), worker.log()

    charts = browser.find_elements(By.CSS_SELECTOR, "#charts figure")
    assert [chart.get_attribute("data-metric") for chart in charts] == [
        "loss",
        "accuracy",
    ]
    for chart in charts:
        metric = chart.get_attribute("data-metric")
        lines = {
            line.get_attribute("data-series"): line.get_attribute("stroke-dasharray")
            for line in chart.find_elements(By.CSS_SELECTOR, "path.series")
        }
        assert lines == {
            f"{label} {prefix}{metric}": "6 4" if prefix else "none"
            for label in CHOSEN
            for prefix in ["", "val_"]
        }
        # Two repeats give each line a std band.
        assert len(chart.find_elements(By.CSS_SELECTOR, "polygon")) == 4

    rows = browser.find_elements(By.CSS_SELECTOR, "#summary tbody tr")
    assert sorted(row.get_attribute("data-initializer") for row in rows) == sorted(
        CHOSEN
    )
    assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == ["1", "2"]
    for row in rows:
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert " ± " in cells[1]
        assert " … " in cells[2]
        assert cells[3] == "2"

    with httpx.Client(base_url=base_url) as api:
        points = api.get(f"/v1/experiments/{experiment_id}/history").json()["points"]
    layer_keys = sorted(
        {key for point in points for key in point["metrics"] if key.startswith("layer")}
    )
    options = browser.find_elements(By.CSS_SELECTOR, "#diagnostic-key option")
    assert sorted(option.get_attribute("value") for option in options) == layer_keys
    empty = browser.find_element(By.ID, "diagnostics-empty")
    assert empty.is_displayed() == (layer_keys == [])
