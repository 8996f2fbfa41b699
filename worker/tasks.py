"""Celery tasks: thin wrappers that pass ids to plain functions."""

from typing import Any

import structlog
from celery import signals

from service.config import get_settings
from service.db.session import get_engine
from service.logs import configure_logging
from worker.celery_app import TRAIN_PACK, app

log = structlog.get_logger()


@app.task(name=TRAIN_PACK, bind=True)
def train_pack(self: Any, experiment_id: str, run_ids: list[str]) -> None:
    from worker.runner import execute_pack

    structlog.contextvars.bind_contextvars(
        task_id=self.request.id, experiment_id=experiment_id
    )
    try:
        execute_pack(experiment_id, run_ids, get_settings())
    finally:
        structlog.contextvars.clear_contextvars()


@signals.worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked pool process must not reuse its parent's database connections.
    get_engine().dispose(close=False)
    configure_logging()


@signals.worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    from worker.sweeper import Sweeper

    configure_logging()
    Sweeper(get_settings()).start()
    log.info("worker.ready")
