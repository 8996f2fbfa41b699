"""Training a pack of runs: claim, train, record each epoch. No Celery here."""

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy import select

from service.config import Settings
from service.db.models import Experiment, Run
from service.db.session import session_scope
from worker import leases
from worker.datasets import Table, load_table, split
from worker.engine.plan import SplitData
from worker.leases import Lease
from worker.planning import run_plan, training_plan

log = structlog.get_logger()


class Heartbeat:
    """Refreshes the leases' heartbeat from a thread while a pack trains."""

    def __init__(self, held: list[Lease], interval: float) -> None:
        self._held = held
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="heartbeat", daemon=True
        )

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with session_scope() as session:
                    leases.heartbeat(session, self._held)
            except Exception as exc:
                log.warning("heartbeat.failed", error=repr(exc))


_tables: dict[tuple[str, str, str], Table] = {}


def split_data(spec: dict[str, Any], settings: Settings) -> SplitData:
    """The experiment's split; the table is read once per worker process."""
    dataset = spec["dataset"]
    key = (dataset["source"], str(settings.data_dir), str(settings.resolved_cache_dir))
    if key not in _tables:
        _tables[key] = load_table(dataset["source"], settings)
    return split(
        _tables[key],
        test_size=float(spec["test_size"]),
        split_seed=int(spec["split_seed"]),
        standardize=dataset["standardize"],
    )


def execute_pack(
    experiment_id: str, run_ids: Sequence[str], settings: Settings
) -> list[Lease]:
    """Train whichever of the runs this worker may take; returns their leases."""
    owner = leases.lease_owner()
    held: list[Lease] = []
    for run_id in run_ids:
        with session_scope() as session:
            lease = leases.claim(session, run_id, owner, settings)
        if lease is None:
            log.info("run.skipped", run_id=run_id, experiment_id=experiment_id)
            continue
        log.info("run.claimed", run_id=run_id, attempt=lease.attempt)
        held.append(lease)
    if not held:
        return held

    with Heartbeat(held, settings.heartbeat_seconds):
        try:
            _train(experiment_id, held, settings)
        except Exception as exc:
            log.exception("pack.failed", experiment_id=experiment_id)
            reason = f"{type(exc).__name__}: {exc}"
            with session_scope() as session:
                for lease in held:
                    leases.fail(session, lease, reason)
    return held


def _train(experiment_id: str, held: list[Lease], settings: Settings) -> None:
    with session_scope() as session:
        experiment = session.get_one(Experiment, experiment_id)
        spec = experiment.spec
        by_id = {
            run.id: run
            for run in session.scalars(
                select(Run).where(Run.id.in_([lease.run_id for lease in held]))
            )
        }
        run_plans = [run_plan(spec, by_id[lease.run_id]) for lease in held]

    plan = training_plan(spec)
    data = split_data(spec, settings)

    def on_epoch(index: int, epoch: int, metrics: dict[str, float]) -> bool:
        lease = held[index]
        last = epoch == plan.epochs - 1
        with session_scope() as session:
            kept = leases.record_epoch(session, lease, epoch, metrics, last=last)
        if not kept:
            log.info("run.lease_lost", run_id=lease.run_id, epoch=epoch)
        elif last:
            log.info("run.succeeded", run_id=lease.run_id, attempt=lease.attempt)
        return kept

    from worker.engine.keras_engine import train_keras

    train_keras(plan, run_plans, data, on_epoch)
