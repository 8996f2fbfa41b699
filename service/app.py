"""The HTTP API."""

from fastapi import FastAPI

from service.dashboard.endpoints import router as dashboard_router
from service.datasets.endpoints import UploadLimit
from service.datasets.endpoints import router as datasets_router
from service.errors import install_error_handlers
from service.experiments.endpoints import router as experiments_router
from service.health import router as health_router
from service.history.endpoints import router as history_router
from service.initializer_endpoints import router as initializers_router
from service.logs import configure_logging
from service.runs.endpoints import router as runs_router
from service.stats.endpoints import router as stats_router


def create_app() -> FastAPI:
    configure_logging()
    app = FastAPI(
        title="initlab",
        version="0.1.0",
        summary="How the choice of weight initializer changes training, over seeds.",
    )
    install_error_handlers(app)
    app.add_middleware(UploadLimit)
    app.include_router(datasets_router)
    app.include_router(experiments_router)
    app.include_router(runs_router)
    app.include_router(history_router)
    app.include_router(stats_router)
    app.include_router(initializers_router)
    app.include_router(health_router)
    app.include_router(dashboard_router)
    return app


app = create_app()
