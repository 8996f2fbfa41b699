"""`initlab serve`: the API plus a supervised worker process on one machine.

With no broker configured the worker reads a folder queue under the initlab
home and the database is a SQLite file there, so nothing else has to run.
TensorFlow stays out of this process: training happens in the worker's own
process tree, as it does in production.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn

from service.config import Settings
from service.db.migrate import upgrade

log = structlog.get_logger()


def worker_command(
    settings: Settings, concurrency: int, name: str, devices: Sequence[str] = ("cpu",)
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app:app",
        "worker",
        "--queues",
        ",".join(settings.queue_name(device) for device in devices),
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        settings.log_level,
    ]


class WorkerSupervisor:
    """Keeps one worker process alive until stopped; restarts it if it dies."""

    def __init__(self, command: list[str], log_path: Path) -> None:
        self._command = command
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="supervisor", daemon=True
        )

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as output:
            self._process = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("worker.started", pid=self._process.pid, log=str(self._log_path))

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            assert self._process is not None
            code = self._process.poll()
            if code is None:
                continue
            log.warning("worker.exited", pid=self._process.pid, code=code)
            if self._stopping.wait(2.0):
                return
            self._spawn()

    def stop(self, grace: float = 3.0) -> None:
        self._stopping.set()
        process = self._process
        if process is None or process.poll() is not None:
            return
        # A run cut short here is requeued by the sweeper at the next start.
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def unusable_address(host: str, port: int) -> str | None:
    """Why the API could not listen on host:port, or None if it can. Asked
    before the worker starts, so that a taken port fails at once and cleanly."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            # As uvicorn does, so that a port in TIME_WAIT counts as free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def serve(
    settings: Settings, host: str, port: int, with_worker: bool, workers: int = 1
) -> None:
    upgrade(settings.resolved_database_url)
    supervisor = None
    if with_worker:
        supervisor = WorkerSupervisor(
            worker_command(settings, 1, "embedded"), settings.home / "worker.log"
        )
        supervisor.start()
    # uvicorn re-raises SIGTERM once it has shut down; exiting from the handler
    # lets the worker be stopped below instead of being left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            "service.app:app",
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    finally:
        if supervisor is not None:
            supervisor.stop()
