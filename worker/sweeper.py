"""Finds runs that nobody will finish and hands them out again, or gives up.

Each worker process runs a sweep at start and then periodically. Every change
is a compare-and-set on the run's state, so sweepers on many hosts agree.
"""

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update

from service.config import Settings
from service.db.base import utcnow
from service.db.models import Experiment, Run, RunStatus
from service.db.session import session_scope
from service.queue import publish_runs, queue_for
from worker.leases import exhausted_reason, give_up, is_abandoned

log = structlog.get_logger()


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def sweep(settings: Settings, *, judge_silence: bool = True) -> SweepReport:
    """One pass. Without `judge_silence`, only runs whose owner is known to be
    gone are taken back; silent owners wait for a later pass."""
    report = SweepReport()
    now = utcnow()

    with session_scope() as session:
        running = list(
            session.scalars(select(Run).where(Run.status == RunStatus.RUNNING))
        )
        for run in running:
            if not is_abandoned(run, settings, now, judge_silence=judge_silence):
                continue
            last_owner = run.lease_owner
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
                    Run.lease_owner == last_owner,
                )
                .values(status=RunStatus.QUEUED, lease_owner=None, enqueued_at=None)
            )
            if getattr(result, "rowcount", 0):
                report.requeued.append(run.id)
                log.warning(
                    "run.requeued",
                    run_id=run.id,
                    attempts=run.attempts,
                    last_owner=last_owner,
                )

    _resend_lost_messages(settings, now, report)

    grace = now - timedelta(seconds=settings.unpublished_grace_seconds)
    with session_scope() as session:
        waiting = session.execute(
            select(Run.id, Run.experiment_id)
            .where(
                Run.status == RunStatus.QUEUED,
                Run.enqueued_at.is_(None),
                (Run.created_at <= grace) | Run.id.in_(report.requeued),
            )
            .order_by(Run.experiment_id, Run.position)
        ).all()
    by_experiment: dict[str, list[str]] = defaultdict(list)
    for run_id, experiment_id in waiting:
        by_experiment[experiment_id].append(run_id)
    for experiment_id, run_ids in by_experiment.items():
        with session_scope() as session:
            spec = session.get_one(Experiment, experiment_id).spec
            report.published += publish_runs(session, experiment_id, spec, run_ids)
    return report


def _resend_lost_messages(
    settings: Settings, now: datetime, report: SweepReport
) -> None:
    """Queued runs whose message is gone: sent a while ago, and their queue is
    empty. A consumer that dies just after the broker handed it a message, or
    whose connection hangs half-open, takes the message with it."""
    sent_before = now - timedelta(seconds=settings.stale_after_seconds)
    with session_scope() as session:
        waiting = session.execute(
            select(Run.id, Experiment.id, Experiment.spec)
            .join(Experiment, Experiment.id == Run.experiment_id)
            .where(Run.status == RunStatus.QUEUED, Run.enqueued_at < sent_before)
            .order_by(Experiment.id, Run.position)
        ).all()
    if not waiting:
        return

    specs: dict[str, dict[str, Any]] = {}
    lost: dict[str, list[str]] = defaultdict(list)
    empty: dict[str, bool] = {}
    for run_id, experiment_id, spec in waiting:
        queue = queue_for(spec, settings)
        if queue not in empty:
            empty[queue] = queue_length(queue) == 0
        if empty[queue]:
            specs[experiment_id] = spec
            lost[experiment_id].append(run_id)

    for experiment_id, run_ids in lost.items():
        with session_scope() as session:
            sent = publish_runs(session, experiment_id, specs[experiment_id], run_ids)
        report.resent += sent
        log.warning("runs.resent", experiment_id=experiment_id, runs=len(sent))


def queue_length(queue: str) -> int | None:
    """Messages waiting in a queue; None when the broker cannot say."""
    from worker.celery_app import app

    try:
        with app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(
                queue=queue, passive=False
            )
    except Exception as exc:
        log.warning("queue.length_unknown", queue=queue, error=repr(exc))
        return None
    return int(declared.message_count)


class Sweeper:
    """Sweeps in a daemon thread until stopped."""

    def __init__(
        self, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        finished: float | None = None
        while True:
            started = self._clock()
            waited = 0.0 if finished is None else started - finished
            paused = was_paused(waited, self._settings)
            if paused:
                log.info("sweep.after_pause", waited_seconds=round(waited, 1))
            try:
                sweep(self._settings, judge_silence=not paused)
            except Exception as exc:
                log.warning("sweep.failed", error=repr(exc))
            finished = self._clock()
            if self._stop.wait(self._settings.sweep_interval_seconds):
                return


def was_paused(waited: float, settings: Settings) -> bool:
    """Whether a wait between sweeps took longer than a heartbeat beyond its
    interval: the machine slept or this process was starved, and the workers'
    heartbeats stopped with it, so their silence proves nothing yet. The clock
    is the wall clock, which unlike the waits' monotonic one counts a suspend."""
    return waited > settings.sweep_interval_seconds + settings.heartbeat_seconds
