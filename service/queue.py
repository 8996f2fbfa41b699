"""Handing runs to workers: a message per pack, sent after the rows commit."""

from collections.abc import Sequence

import structlog
from sqlalchemy import update
from sqlalchemy.orm import Session

from service.config import get_settings
from service.db.base import utcnow
from service.db.models import Run, RunStatus

log = structlog.get_logger()


def publish(session: Session, experiment_id: str, run_ids: Sequence[str]) -> bool:
    """Send one training message and record when; False if the broker refused.

    Runs whose message was never sent keep `enqueued_at` null; the sweeper sends
    them later, so a broker outage delays work but loses none.
    """
    from worker.celery_app import TRAIN_PACK, app

    settings = get_settings()
    try:
        app.send_task(
            TRAIN_PACK,
            args=[experiment_id, list(run_ids)],
            queue=settings.queue_name("cpu"),
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
