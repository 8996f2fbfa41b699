"""The dashboard's pages and files, through the app in process."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import catalog
from service.dashboard.endpoints import ASSETS
from tests.helpers import cancel

pytestmark = pytest.mark.integration

STATIC = Path(__file__).resolve().parents[1] / "service" / "dashboard" / "static"
CONTENT_TYPES = {
    "dashboard.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "index.js": "text/javascript; charset=utf-8",
    "experiment.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def linked_files(html: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', html))


def test_the_index_page_is_html_with_the_launch_form(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<form id="launch"' in response.text
    assert linked_files(response.text) == {
        "/dashboard/static/favicon.svg",
        "/dashboard/static/dashboard.css",
        "/dashboard/static/index.js",
    }
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy


def test_an_experiment_page_is_html(client: TestClient) -> None:
    created = client.post("/v1/experiments", json={"repeats": 1, "epochs": 1})
    assert created.status_code == 201
    experiment_id = created.json()["id"]
    cancel(client, experiment_id)

    response = client.get(f"/experiments/{experiment_id}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<h1 id="experiment-name">' in response.text
    assert linked_files(response.text) == {
        "/dashboard/static/favicon.svg",
        "/dashboard/static/dashboard.css",
        "/dashboard/static/experiment.js",
    }


def test_an_unknown_experiment_page_is_a_404_page(client: TestClient) -> None:
    response = client.get("/experiments/no-such-id")

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>No such experiment</h1>" in response.text
    assert 'href="/"' in response.text


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_static_files_are_served_with_their_content_type(
    client: TestClient, name: str
) -> None:
    response = client.get(f"/dashboard/static/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPES[name]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.content) > 100


@pytest.mark.parametrize(
    "name", ["endpoints.py", "..%2Fendpoints.py", "index.html", "missing.js"]
)
def test_only_the_listed_static_files_are_served(client: TestClient, name: str) -> None:
    response = client.get(f"/dashboard/static/{name}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


def test_no_file_of_the_dashboard_reaches_outside_the_app(client: TestClient) -> None:
    pages = [client.get(path).text for path in ["/", "/experiments/none"]]
    files = [client.get(f"/dashboard/static/{name}").text for name in ASSETS]

    for text in pages + files:
        # The SVG namespace names a vocabulary; nothing is fetched from it.
        text = text.replace('"http://www.w3.org/2000/svg"', "")
        addresses = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", text)
        assert addresses == [], addresses


def test_scripts_never_write_markup(client: TestClient) -> None:
    for name in ASSETS:
        text = client.get(f"/dashboard/static/{name}").text
        assert "innerHTML" not in text
        assert "outerHTML" not in text
        assert "insertAdjacentHTML" not in text
        assert "document.write" not in text


def test_the_form_offers_every_built_in_dataset(client: TestClient) -> None:
    body: dict[str, Any] = client.get("/dashboard/catalog.json").json()

    assert [entry["source"] for entry in body["datasets"]] == list(catalog.DATASETS)
    banknote = body["datasets"][0]
    assert banknote == {
        "source": "uci:banknote",
        "rows": 1372,
        "features": 4,
        "classes": 2,
    }
    assert body["optimizers"] == list(catalog.OPTIMIZERS)
    assert body["activations"] == list(catalog.ACTIVATIONS)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
@pytest.mark.parametrize(
    ("low", "high", "count", "expected"),
    [
        (0.0, 1.0, 5, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        # A span of one ulp, from means of equal values over different counts.
        (0.8, 0.8000000000000002, 5, None),
        (0.1, 0.1, 5, None),
    ],
)
def test_axis_ticks_end_even_on_a_span_of_a_few_ulps(
    tmp_path: Path, low: float, high: float, count: int, expected: list[float] | None
) -> None:
    module = tmp_path / "charts.mjs"
    module.write_text((STATIC / "charts.js").read_text())
    script = tmp_path / "ticks.mjs"
    script.write_text(
        'import { ticks } from "./charts.mjs";\n'
        f"console.log(JSON.stringify(ticks({low!r}, {high!r}, {count})));\n"
    )
    result = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=20, check=True
    )
    values = json.loads(result.stdout)

    assert len(values) <= 3 * count + 3
    if expected is not None:
        assert values == pytest.approx(expected)
