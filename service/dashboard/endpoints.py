"""The dashboard's pages, its static files and the choices its form offers.

The pages are static HTML; their scripts read the JSON API. Everything is
served from the package, so the dashboard works with no network beyond the app.
"""

from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from service import catalog
from service.deps import SessionDep
from service.errors import NotFoundError
from service.experiments.service import get_experiment

router = APIRouter(include_in_schema=False)

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
ASSETS = frozenset(
    {
        "dashboard.css",
        "common.js",
        "charts.js",
        "index.js",
        "experiment.js",
        "favicon.svg",
    }
)
# Scripts and styles come only from the app; no inline script can run, so text
# that reaches the page by mistake as markup stays inert.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


def _file(name: str, status_code: int = 200) -> Response:
    suffix = name[name.rfind(".") :]
    return Response(
        _read(name),
        status_code=status_code,
        media_type=MEDIA_TYPES[suffix],
        headers=HEADERS,
    )


@router.get("/", response_class=HTMLResponse)
def index_page() -> Response:
    return _file("index.html")


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(experiment_id: str, session: SessionDep) -> Response:
    try:
        get_experiment(session, experiment_id)
    except NotFoundError:
        return _file("not_found.html", status_code=404)
    return _file("experiment.html")


@router.get("/dashboard/static/{name}")
def static_file(name: str) -> Response:
    if name not in ASSETS:
        raise NotFoundError("dashboard file", name)
    return _file(name)


@router.get("/dashboard/catalog.json")
def form_choices() -> dict[str, Any]:
    """What the launch form offers beside the initializers (GET /v1/initializers)."""
    return {
        "datasets": [
            {
                "source": source,
                "rows": shape.rows,
                "features": shape.features,
                "classes": shape.classes,
            }
            for source, shape in catalog.DATASET_SHAPES.items()
        ],
        "optimizers": list(catalog.OPTIMIZERS),
        "activations": list(catalog.ACTIVATIONS),
    }
