"""Claiming, recording and sweeping runs, against PostgreSQL."""

import os
import socket
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from service.config import Settings, get_settings
from service.db.base import utcnow
from service.db.models import EpochRecord, Run, RunStatus
from service.db.session import session_scope
from service.experiments.schemas import ExperimentCreate
from service.experiments.service import cancel_experiment, create_experiment
from worker import leases
from worker.sweeper import sweep

pytestmark = pytest.mark.integration

METRICS = {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return get_settings().model_copy(
        update={"max_attempts": 2, "stale_after_seconds": 60.0}
    )


@pytest.fixture
def run_id(database_url: str, redis_client: Any) -> str:
    with session_scope() as session:
        experiment = create_experiment(
            session, ExperimentCreate(initializers=["zeros"], epochs=2)
        )
        (run,) = session.scalars(select(Run).where(Run.experiment_id == experiment.id))
        return run.id


def load(run_id: str) -> Run:
    with session_scope() as session:
        return session.get_one(Run, run_id)


def claim(run_id: str, owner: str, settings: Settings) -> leases.Lease | None:
    with session_scope() as session:
        return leases.claim(session, run_id, owner, settings)


def record(
    lease: leases.Lease, epoch: int, metrics: dict[str, float], last: bool
) -> bool:
    with session_scope() as session:
        seq = leases.advance_history(session, lease.experiment_id, 1)
        return leases.record_epoch(session, lease, epoch, metrics, last=last, seq=seq)


def epoch_rows(run_id: str) -> list[tuple[int, int]]:
    with session_scope() as session:
        rows = session.execute(
            select(EpochRecord.epoch, EpochRecord.attempt)
            .where(EpochRecord.run_id == run_id)
            .order_by(EpochRecord.epoch)
        )
        return [(epoch, attempt) for epoch, attempt in rows]


def gone_local_owner() -> str:
    """The owner name of a process of this host that has exited."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"{socket.gethostname()}/{gone.stdout.strip()}"


def age_heartbeat(run_id: str, seconds: float) -> None:
    with session_scope() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_a_run_is_claimed_once(run_id: str, settings: Settings) -> None:
    lease = claim(run_id, "host-a/1", settings)

    assert lease is not None
    assert lease.attempt == 1
    assert claim(run_id, "host-b/2", settings) is None
    run = load(run_id)
    assert (run.status, run.lease_owner, run.attempts) == (
        RunStatus.RUNNING,
        "host-a/1",
        1,
    )


def test_epochs_are_recorded_and_the_last_one_finishes_the_run(
    run_id: str, settings: Settings
) -> None:
    lease = claim(run_id, "host-a/1", settings)
    assert lease is not None

    assert record(lease, 0, METRICS, last=False)
    assert record(lease, 1, METRICS, last=True)

    run = load(run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert run.epochs_done == 2
    assert run.final_metrics == METRICS
    assert run.finished_at is not None
    assert epoch_rows(run_id) == [(0, 1), (1, 1)]
    assert claim(run_id, "host-b/2", settings) is None


def test_non_finite_metrics_are_stored_as_null_and_flag_divergence(
    run_id: str, settings: Settings
) -> None:
    lease = claim(run_id, "host-a/1", settings)
    assert lease is not None

    record(lease, 0, {"loss": float("nan"), "accuracy": 0.5}, last=False)

    run = load(run_id)
    assert run.diverged is True
    # The accuracy of a model whose loss is NaN says nothing: it goes too.
    assert run.final_metrics == {"loss": None, "accuracy": None}


def test_a_cancelled_run_refuses_further_epochs(
    run_id: str, settings: Settings
) -> None:
    lease = claim(run_id, "host-a/1", settings)
    assert lease is not None
    with session_scope() as session:
        cancel_experiment(session, load(run_id).experiment_id)

    assert record(lease, 0, METRICS, last=False) is False
    assert epoch_rows(run_id) == []
    assert load(run_id).status == RunStatus.CANCELLED


def test_a_silent_worker_loses_its_run_to_the_sweeper(
    run_id: str, settings: Settings
) -> None:
    stale = claim(run_id, "elsewhere/1", settings)
    assert stale is not None
    record(stale, 0, METRICS, last=False)
    age_heartbeat(run_id, 61)

    report = sweep(settings)

    assert report.requeued == [run_id]
    assert run_id in report.published
    run = load(run_id)
    assert (run.status, run.lease_owner) == (RunStatus.QUEUED, None)
    assert run.enqueued_at is not None

    fresh = claim(run_id, "host-b/2", settings)
    assert fresh is not None
    assert fresh.attempt == 2
    assert epoch_rows(run_id) == []
    assert record(stale, 1, METRICS, last=True) is False
    assert record(fresh, 0, METRICS, last=False)
    assert epoch_rows(run_id) == [(0, 2)]


def test_a_live_worker_keeps_its_run(run_id: str, settings: Settings) -> None:
    assert claim(run_id, "elsewhere/1", settings) is not None
    age_heartbeat(run_id, 30)

    report = sweep(settings)

    assert run_id not in report.requeued
    assert load(run_id).status == RunStatus.RUNNING


def test_a_dead_local_owner_is_noticed_without_waiting(
    run_id: str, settings: Settings
) -> None:
    assert claim(run_id, gone_local_owner(), settings) is not None

    lease = claim(run_id, "host-b/2", settings)

    assert lease is not None
    assert lease.attempt == 2


def test_an_exited_owner_nobody_reaped_counts_as_gone() -> None:
    import time

    here = socket.gethostname()
    unreaped = subprocess.Popen(["true"])
    try:
        # Until it is waited for, the exited child stays a zombie.
        deadline = time.monotonic() + 10
        while not leases.owner_is_gone(f"{here}/{unreaped.pid}"):
            assert time.monotonic() < deadline, "the exited child never looked gone"
            time.sleep(0.05)
        assert not leases.owner_is_gone(f"{here}/{os.getpid()}")
    finally:
        unreaped.wait()
    assert leases.owner_is_gone(f"{here}/{unreaped.pid}")


def test_after_max_attempts_the_run_fails_with_the_reason(
    run_id: str, settings: Settings
) -> None:
    for attempt in range(settings.max_attempts):
        assert claim(run_id, f"elsewhere/{attempt}", settings) is not None
        age_heartbeat(run_id, 61)
        sweep(settings)

    run = load(run_id)
    assert run.status == RunStatus.FAILED
    assert run.attempts == settings.max_attempts
    assert run.error is not None
    assert "worker lost" in run.error
    assert "attempt 2 of 2" in run.error


def test_runs_whose_message_was_never_sent_are_published(
    run_id: str, settings: Settings, redis_client: Any
) -> None:
    with session_scope() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(enqueued_at=None, created_at=utcnow() - timedelta(seconds=5))
        )

    report = sweep(settings)

    assert run_id in report.published
    assert load(run_id).enqueued_at is not None


def test_claim_deletes_rows_of_an_earlier_attempt(
    run_id: str, settings: Settings
) -> None:
    first = claim(run_id, "elsewhere/1", settings)
    assert first is not None
    record(first, 0, METRICS, last=False)
    age_heartbeat(run_id, 61)

    second = claim(run_id, "host-b/2", settings)

    assert second is not None
    with session_scope() as session:
        remaining = session.scalar(
            select(func.count())
            .select_from(EpochRecord)
            .where(EpochRecord.run_id == run_id)
        )
    assert remaining == 0


def test_a_queued_run_whose_message_vanished_is_sent_again(
    run_id: str, settings: Settings, redis_client: Any
) -> None:
    queue = settings.queue_name("cpu")
    redis_client.delete(queue)
    with session_scope() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(enqueued_at=utcnow() - timedelta(seconds=120))
        )

    report = sweep(settings)

    assert run_id in report.resent
    assert redis_client.llen(queue) >= 1
    sent_at = load(run_id).enqueued_at
    assert sent_at is not None
    assert sent_at > utcnow() - timedelta(seconds=60)


def test_a_queued_run_behind_a_backlog_is_left_alone(
    run_id: str, settings: Settings, redis_client: Any
) -> None:
    queue = settings.queue_name("cpu")
    redis_client.lpush(queue, "a message still waiting")
    with session_scope() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(enqueued_at=utcnow() - timedelta(seconds=120))
        )

    report = sweep(settings)

    assert run_id not in report.resent
    redis_client.delete(queue)


def test_after_a_pause_silence_waits_for_the_next_pass(
    run_id: str, settings: Settings
) -> None:
    assert claim(run_id, "elsewhere/1", settings) is not None
    age_heartbeat(run_id, 600)

    assert sweep(settings, judge_silence=False).requeued == []
    assert load(run_id).status == RunStatus.RUNNING
    assert sweep(settings).requeued == [run_id]


def test_a_gone_owner_is_taken_back_even_after_a_pause(
    run_id: str, settings: Settings
) -> None:
    assert claim(run_id, gone_local_owner(), settings) is not None

    assert sweep(settings, judge_silence=False).requeued == [run_id]


def test_the_sweeper_notices_its_own_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker import sweeper

    settings = get_settings().model_copy(
        update={"sweep_interval_seconds": 0.01, "heartbeat_seconds": 5.0}
    )
    # Each pass reads the clock as it starts and as it ends; between the second
    # and the third the machine slept for a minute.
    readings = iter([0.0, 0.2, 0.25, 0.3, 60.3, 60.4])
    judged: list[bool] = []
    loop = sweeper.Sweeper(settings, clock=lambda: next(readings))

    def fake_sweep(_: Settings, *, judge_silence: bool) -> None:
        judged.append(judge_silence)
        if len(judged) == 3:
            loop.stop()

    monkeypatch.setattr(sweeper, "sweep", fake_sweep)
    loop.start()
    loop.join(timeout=10)

    assert judged == [True, True, False]


def test_after_a_run_diverges_its_later_epochs_are_null_too(
    run_id: str, settings: Settings
) -> None:
    from worker.runner import EpochRecorder

    lease = claim(run_id, "host-a/1", settings)
    assert lease is not None
    recorder = EpochRecorder([lease], 2, one_at_a_time=True)

    # An overflow that comes back finite: the weights it left are garbage.
    assert recorder(0, 0, {"loss": float("inf"), "accuracy": 0.5})
    assert recorder(0, 1, {"loss": 8e35, "accuracy": 0.6})
    recorder.flush()

    with session_scope() as session:
        stored = list(
            session.scalars(
                select(EpochRecord.metrics)
                .where(EpochRecord.run_id == run_id)
                .order_by(EpochRecord.epoch)
            )
        )
    assert stored == [{"loss": None, "accuracy": None}] * 2
    run = load(run_id)
    assert (run.status, run.diverged) == (RunStatus.SUCCEEDED, True)
