"""Finds runs that nobody will finish and hands them out again, or gives up.

Each worker process runs a sweep at start and then periodically. Every change
is a compare-and-set on the run's state, so sweepers on many hosts agree.
"""

import threading
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import select, update

from service.config import Settings
from service.db.base import utcnow
from service.db.models import Run, RunStatus
from service.db.session import session_scope
from service.queue import publish
from worker.leases import exhausted_reason, give_up, is_abandoned

log = structlog.get_logger()


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)


def sweep(settings: Settings) -> SweepReport:
    report = SweepReport()
    now = utcnow()

    with session_scope() as session:
        running = list(
            session.scalars(select(Run).where(Run.status == RunStatus.RUNNING))
        )
        for run in running:
            if not is_abandoned(run, settings, now):
                continue
            if run.attempts >= settings.max_attempts:
                if give_up(session, run, exhausted_reason(run)):
                    report.failed.append(run.id)
                    log.warning("run.gave_up", run_id=run.id, attempts=run.attempts)
                continue
            result = session.execute(
                update(Run)
                .where(
                    Run.id == run.id,
                    Run.status == RunStatus.RUNNING,
                    Run.attempts == run.attempts,
                    Run.lease_owner == run.lease_owner,
                )
                .values(status=RunStatus.QUEUED, lease_owner=None, enqueued_at=None)
            )
            if getattr(result, "rowcount", 0):
                report.requeued.append(run.id)
                log.warning(
                    "run.requeued",
                    run_id=run.id,
                    attempts=run.attempts,
                    last_owner=run.lease_owner,
                )

    grace = now - timedelta(seconds=settings.unpublished_grace_seconds)
    with session_scope() as session:
        waiting = session.execute(
            select(Run.id, Run.experiment_id).where(
                Run.status == RunStatus.QUEUED,
                Run.enqueued_at.is_(None),
                (Run.created_at <= grace) | Run.id.in_(report.requeued),
            )
        ).all()
    for run_id, experiment_id in waiting:
        with session_scope() as session:
            if publish(session, experiment_id, [run_id]):
                report.published.append(run_id)
    return report


class Sweeper:
    """Sweeps in a daemon thread until stopped."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while True:
            try:
                sweep(self._settings)
            except Exception as exc:
                log.warning("sweep.failed", error=repr(exc))
            if self._stop.wait(self._settings.sweep_interval_seconds):
                return
