"""Handing runs to workers: messages of packs, sent after the rows commit."""

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.orm import Session

from service import catalog
from service.config import Settings, get_settings
from service.db.base import utcnow
from service.db.models import Run, RunStatus

log = structlog.get_logger()


def uses_packed_engine(spec: dict[str, Any]) -> bool:
    engine = spec.get("engine", "auto")
    if engine == "auto":
        return catalog.packed_blocker(spec) is None
    return bool(engine == "packed")


def queue_for(spec: dict[str, Any], settings: Settings) -> str:
    """GPU-only work goes to the gpu queue; GPU workers also take the cpu queue."""
    device = "gpu" if spec.get("device") == "gpu" else "cpu"
    return settings.queue_name(device)


def runs_per_message(spec: dict[str, Any], settings: Settings) -> int:
    """A pack for the packed engine; one run at a time for Keras' fit, so that
    runs spread over every worker."""
    if not uses_packed_engine(spec):
        return 1
    if spec.get("device") == "gpu":
        return settings.gpu_pack_size
    return settings.cpu_pack_size


def publish_runs(
    session: Session, experiment_id: str, spec: dict[str, Any], run_ids: Sequence[str]
) -> list[str]:
    """Send the runs in packs; returns the ids whose message the broker took."""
    settings = get_settings()
    size = runs_per_message(spec, settings)
    sent: list[str] = []
    for start in range(0, len(run_ids), size):
        pack = list(run_ids[start : start + size])
        if publish(session, experiment_id, pack, queue_for(spec, settings)):
            sent += pack
    return sent


def publish(
    session: Session, experiment_id: str, run_ids: Sequence[str], queue: str
) -> bool:
    """Send one training message and record when; False if the broker refused.

    Runs whose message was never sent keep `enqueued_at` null; the sweeper sends
    them later, so a broker outage delays work but loses none.
    """
    from worker.celery_app import TRAIN_PACK, app

    try:
        app.send_task(
            TRAIN_PACK,
            args=[experiment_id, list(run_ids)],
            queue=queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2},
        )
    except Exception as exc:
        log.warning("runs.publish_failed", experiment_id=experiment_id, error=repr(exc))
        return False

    session.execute(
        update(Run)
        .where(Run.id.in_(run_ids), Run.status == RunStatus.QUEUED)
        .values(enqueued_at=utcnow())
    )
    return True
