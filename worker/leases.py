"""Who trains a run: claiming it, recording its epochs, letting it go.

A run is held by a lease: its `lease_owner` (host/pid of the worker process)
and `attempts` (the attempt number). Every write a worker makes checks both, so
a worker that lost its lease (run cancelled, or taken over after it was
presumed dead) can no longer write, and a run never gets two sets of epochs.
"""

import math
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.db.base import utcnow
from service.db.models import EpochRecord, Experiment, Run, RunStatus

log = structlog.get_logger()


@dataclass(frozen=True)
class Lease:
    run_id: str
    experiment_id: str
    attempt: int
    owner: str


def lease_owner() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def owner_is_gone(owner: str | None) -> bool:
    """True when the owner is a process of this host that no longer exists."""
    if not owner or "/" not in owner:
        return False
    host, _, pid = owner.rpartition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """A process that has exited but was never reaped: in a container whose
    first process does not reap orphans, a killed worker's pool processes stay
    so, and still answer signal 0."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may
    # itself hold spaces or parentheses.
    return stat[stat.rfind(")") + 2 :].startswith("Z")


def is_abandoned(
    run: Run, settings: Settings, now: datetime, *, judge_silence: bool = True
) -> bool:
    """A running run whose worker is gone, or silent for too long when
    `judge_silence` holds."""
    if run.status != RunStatus.RUNNING:
        return False
    if owner_is_gone(run.lease_owner):
        return True
    if not judge_silence:
        return False
    stale_before = now - timedelta(seconds=settings.stale_after_seconds)
    return run.heartbeat_at is None or run.heartbeat_at < stale_before


def _same_state(run: Run) -> list[Any]:
    """Conditions that hold only while nobody else has changed the run."""
    return [
        Run.id == run.id,
        Run.status == run.status,
        Run.attempts == run.attempts,
        Run.lease_owner.is_(None)
        if run.lease_owner is None
        else Run.lease_owner == run.lease_owner,
    ]


def give_up(session: Session, run: Run, reason: str) -> bool:
    result = session.execute(
        update(Run)
        .where(*_same_state(run))
        .values(
            status=RunStatus.FAILED,
            error=reason,
            finished_at=utcnow(),
            lease_owner=None,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def advance_history(session: Session, experiment_id: str, count: int) -> int:
    """Take `count` history sequence numbers; returns the last one.

    The update locks the experiment's row until commit, so its writers take
    numbers in commit order and a reader's cursor never skips a point.
    """
    head = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id)
        .values(history_seq=Experiment.history_seq + count)
        .returning(Experiment.history_seq)
    ).scalar_one()
    return int(head)


def claim(
    session: Session, run_id: str, owner: str, settings: Settings
) -> Lease | None:
    """Take a queued or abandoned run for a new attempt; None if not ours to take."""
    run = session.get(Run, run_id)
    now = utcnow()
    if run is None:
        return None
    if run.status != RunStatus.QUEUED and not is_abandoned(run, settings, now):
        return None
    if run.attempts >= settings.max_attempts:
        give_up(session, run, exhausted_reason(run))
        return None

    attempt = run.attempts + 1
    # Lock the experiment before the run, in the order epoch writers use.
    reset_seq = advance_history(session, run.experiment_id, 1) if run.attempts else None
    result = session.execute(
        update(Run)
        .where(*_same_state(run))
        .values(
            status=RunStatus.RUNNING,
            attempts=attempt,
            lease_owner=owner,
            heartbeat_at=now,
            started_at=now,
            finished_at=None,
            epochs_done=0,
            final_metrics=None,
            diverged=False,
            error=None,
            reset_seq=reset_seq if reset_seq is not None else Run.reset_seq,
        )
    )
    if not getattr(result, "rowcount", 0):
        return None

    # An earlier attempt's epochs go; this attempt writes them again.
    session.execute(delete(EpochRecord).where(EpochRecord.run_id == run_id))
    return Lease(run_id, run.experiment_id, attempt, owner)


def exhausted_reason(run: Run) -> str:
    return (
        f"worker lost: attempt {run.attempts} of {run.attempts} ended without "
        f"finishing (last owner {run.lease_owner}, last heartbeat {run.heartbeat_at})"
    )


def _held(lease: Lease) -> list[Any]:
    return [
        Run.id == lease.run_id,
        Run.status == RunStatus.RUNNING,
        Run.lease_owner == lease.owner,
        Run.attempts == lease.attempt,
    ]


def finite_metrics(metrics: dict[str, float]) -> tuple[dict[str, float | None], bool]:
    """The epoch's metrics as stored, and whether the run diverged. One
    non-finite value makes every value of the epoch null: once the weights are
    NaN, the accuracy Keras still reports only counts the class that NaN
    outputs fall into, and it would enter every mean and curve."""
    numbers = {name: float(value) for name, value in metrics.items()}
    if all(math.isfinite(number) for number in numbers.values()):
        return dict(numbers), False
    return dict.fromkeys(numbers), True


def record_epoch(
    session: Session,
    lease: Lease,
    epoch: int,
    metrics: dict[str, float],
    *,
    last: bool,
    seq: int,
) -> bool:
    """Store one epoch; on the last one the run succeeds. False: lease lost."""
    clean, diverged = finite_metrics(metrics)
    now = utcnow()
    values: dict[str, Any] = {
        "epochs_done": epoch + 1,
        "final_metrics": clean,
        "heartbeat_at": now,
    }
    if diverged:
        values["diverged"] = True
    if last:
        values.update(status=RunStatus.SUCCEEDED, finished_at=now, lease_owner=None)

    result = session.execute(update(Run).where(*_held(lease)).values(**values))
    if not getattr(result, "rowcount", 0):
        return False
    session.add(
        EpochRecord(
            run_id=lease.run_id,
            experiment_id=lease.experiment_id,
            epoch=epoch,
            attempt=lease.attempt,
            metrics=clean,
            seq=seq,
        )
    )
    return True


def heartbeat(session: Session, leases: list[Lease]) -> None:
    now = utcnow()
    for lease in leases:
        session.execute(update(Run).where(*_held(lease)).values(heartbeat_at=now))


def fail(session: Session, lease: Lease, error: str) -> bool:
    result = session.execute(
        update(Run)
        .where(*_held(lease))
        .values(
            status=RunStatus.FAILED,
            error=error[:4000],
            finished_at=utcnow(),
            lease_owner=None,
        )
    )
    return bool(getattr(result, "rowcount", 0))
