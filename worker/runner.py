"""Training a pack of runs: claim, train, record each epoch. No Celery here."""

import math
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy import select

from service.catalog import CLASSIFICATION_LOSSES, DATASET_SHAPES
from service.config import Settings
from service.datasets.service import load_content
from service.db.models import Experiment, Run
from service.db.session import session_scope
from worker import leases
from worker.datasets import (
    DatasetError,
    Table,
    labels_for_loss,
    load_table,
    split,
    uploaded_table,
)
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


_tables: dict[tuple[str, ...], tuple[Table, int]] = {}


def _table(spec: dict[str, Any], settings: Settings) -> tuple[Table, int]:
    """The experiment's table and its number of classes (0: regression), read
    once per worker process."""
    dataset = spec["dataset"]
    if "id" not in dataset:
        source = dataset["source"]
        builtin = (source, str(settings.data_dir), str(settings.resolved_cache_dir))
        if builtin not in _tables:
            _tables[builtin] = (load_table(source, settings), 0)
        table, _ = _tables[builtin]
        return table, DATASET_SHAPES[source].classes

    classification = spec["loss"] in CLASSIFICATION_LOSSES
    key = (
        dataset["id"],
        dataset["label"],
        repr(dataset.get("features")),
        repr(dataset.get("one_hot")),
        str(classification),
    )
    if key not in _tables:
        with session_scope() as session:
            stored = load_content(session, dataset["id"])
        if stored is None:
            raise DatasetError(
                f"no uploaded dataset has this id. Received: id={dataset['id']!r}"
            )
        content, header = stored
        _tables[key] = uploaded_table(
            content,
            header=header,
            label=dataset["label"],
            features=dataset.get("features"),
            one_hot=dataset.get("one_hot") or [],
            classification=classification,
        )
    return _tables[key]


def split_data(spec: dict[str, Any], settings: Settings) -> SplitData:
    """The experiment's split, labels shaped for its loss."""
    dataset = spec["dataset"]
    table, classes = _table(spec, settings)
    data = split(
        table,
        test_size=float(spec["test_size"]),
        split_seed=int(spec["split_seed"]),
        standardize=dataset["standardize"],
        stratify=bool(dataset.get("stratify", False)),
    )
    return labels_for_loss(data, spec["loss"], classes)


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


class EpochRecorder:
    """The engines' epoch sink: stores each epoch of a pack in one transaction.

    The packed engine reports every run of an epoch in turn, so the epoch is
    written when its last active run reports, or when a run reports again.
    Earlier runs of that epoch learn a lost lease one epoch later, which costs
    one epoch of compute and never a row: every write checks the lease.
    """

    def __init__(self, held: list[Lease], epochs: int, *, one_at_a_time: bool) -> None:
        self._held = held
        self._epochs = epochs
        self._one_at_a_time = one_at_a_time
        self._pending: dict[int, tuple[int, dict[str, float]]] = {}
        self._diverged: set[int] = set()
        self.lost: set[int] = set()

    def __call__(self, index: int, epoch: int, metrics: dict[str, float]) -> bool:
        if index in self.lost:
            return False
        if index in self._diverged or not all(map(math.isfinite, metrics.values())):
            # Numbers a run reports after it diverged (an overflow that came
            # back finite) describe nothing: its later epochs are null too.
            self._diverged.add(index)
            metrics = dict.fromkeys(metrics, math.nan)
        if index in self._pending:
            self.flush()
        self._pending[index] = (epoch, metrics)
        active = 1 if self._one_at_a_time else len(self._held) - len(self.lost)
        if len(self._pending) >= active:
            self.flush()
        return index not in self.lost

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        finished = []
        experiment_id = self._held[0].experiment_id
        with session_scope() as session:
            head = leases.advance_history(session, experiment_id, len(pending))
            first_seq = head - len(pending) + 1
            for offset, (index, (epoch, metrics)) in enumerate(pending.items()):
                lease = self._held[index]
                last = epoch == self._epochs - 1
                kept = leases.record_epoch(
                    session, lease, epoch, metrics, last=last, seq=first_seq + offset
                )
                if not kept:
                    self.lost.add(index)
                    log.info("run.lease_lost", run_id=lease.run_id, epoch=epoch)
                elif last:
                    finished.append(lease)
        for lease in finished:
            log.info("run.succeeded", run_id=lease.run_id, attempt=lease.attempt)


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

    from worker.engine.select import choose_engine, configure_tensorflow, device_scope

    configure_tensorflow()
    name, engine = choose_engine(spec.get("engine", "auto"), plan)
    log.info("pack.training", engine=name, runs=len(held), epochs=plan.epochs)
    recorder = EpochRecorder(held, plan.epochs, one_at_a_time=name == "keras")
    with device_scope(spec.get("device", "auto")):
        engine(plan, run_plans, data, recorder)
    recorder.flush()
