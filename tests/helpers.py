"""Shared pieces for tests that talk to the real services."""

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from service.config import Settings
from service.db.models import EpochRecord, Experiment, Run
from service.db.session import session_scope
from service.experiments.schemas import ExperimentCreate
from service.experiments.service import create_experiment
from worker import leases

REFERENCE = {
    "name": "banknote initializers",
    "dataset": {"source": "uci:banknote", "standardize": "train", "stratify": False},
    "model": {
        "layers": [
            {
                "units": 1,
                "activation": "sigmoid",
                "kernel_initializer": None,
                "bias_initializer": None,
                "use_bias": True,
            }
        ]
    },
    "initializers": [
        {"name": name, "config": {}, "label": name}
        for name in ["zeros", "uniform", "normal", "he_normal", "lecun_uniform"]
    ],
    "repeats": 1,
    "optimizer": "rmsprop",
    "loss": "binary_crossentropy",
    "metrics": ["accuracy"],
    "batch_size": 16,
    "epochs": 5,
    "test_size": 0.3,
    "split_seed": 42,
    "seed": 0,
    "engine": "auto",
    "device": "auto",
    "diagnostics": True,
}


def counts() -> tuple[int, int, int]:
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(Experiment)) or 0,
            session.scalar(select(func.count()).select_from(Run)) or 0,
            session.scalar(select(func.count()).select_from(EpochRecord)) or 0,
        )


def cancel(client: httpx.Client | Any, *experiment_ids: str) -> None:
    """Workers of later tests skip cancelled runs instead of training them."""
    for experiment_id in experiment_ids:
        client.post(f"/v1/experiments/{experiment_id}/cancel")


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class WorkerProcess:
    """A real `celery worker` in its own process group."""

    def __init__(self, name: str, log_dir: Path, concurrency: int = 1) -> None:
        from service.config import get_settings
        from service.embedded import worker_command

        self.log_path = log_dir / f"{name}.log"
        command = worker_command(get_settings(), concurrency, name)
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def children(self) -> list[int]:
        result = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in result.stdout.split()]

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def experiment_done(
    client: httpx.Client | Any, experiment_id: str
) -> Callable[[], Any]:
    def check() -> Any:
        body = client.get(f"/v1/experiments/{experiment_id}").json()
        return body if body["status"] in {"succeeded", "failed", "cancelled"} else None

    return check


class Trainer:
    """Writes epochs the way a worker does, for a fresh experiment."""

    def __init__(
        self,
        settings: Settings,
        initializers: list[str | dict[str, Any]],
        epochs: int,
        repeats: int = 1,
    ) -> None:
        self.settings = settings
        self.epochs = epochs
        spec = ExperimentCreate(
            initializers=initializers, epochs=epochs, repeats=repeats
        )
        with session_scope() as session:
            experiment = create_experiment(session, spec)
            self.experiment_id = experiment.id
            self.run_ids = list(
                session.scalars(
                    select(Run.id)
                    .where(Run.experiment_id == experiment.id)
                    .order_by(Run.position)
                )
            )
        self.held: dict[str, leases.Lease] = {}

    @classmethod
    def attach(cls, settings: Settings, experiment_id: str, epochs: int) -> "Trainer":
        """A trainer for an experiment that already exists."""
        trainer = cls.__new__(cls)
        trainer.settings, trainer.epochs = settings, epochs
        trainer.experiment_id = experiment_id
        with session_scope() as session:
            trainer.run_ids = list(
                session.scalars(
                    select(Run.id)
                    .where(Run.experiment_id == experiment_id)
                    .order_by(Run.position)
                )
            )
        trainer.held = {}
        return trainer

    def claim(self, run_id: str, owner: str = "host/1") -> None:
        with session_scope() as session:
            lease = leases.claim(session, run_id, owner, self.settings)
        assert lease is not None
        self.held[run_id] = lease

    def epoch(self, run_id: str, epoch: int, **metrics: float) -> None:
        values = {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + epoch / 100, **metrics}
        with session_scope() as session:
            seq = leases.advance_history(session, self.experiment_id, 1)
            assert leases.record_epoch(
                session,
                self.held[run_id],
                epoch,
                values,
                last=epoch == self.epochs - 1,
                seq=seq,
            )
