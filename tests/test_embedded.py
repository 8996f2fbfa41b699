"""`initlab serve` on the embedded default: SQLite and a folder queue, no
PostgreSQL or Redis, the same task code."""

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import experiment_done, wait_for

SERVER_ENV = {
    key: value
    for key, value in os.environ.items()
    if key not in {"INITLAB_DATABASE_URL", "INITLAB_BROKER_URL", "INITLAB_QUEUE_PREFIX"}
}


class Server:
    def __init__(self, home: Path, *args: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {
            **SERVER_ENV,
            "INITLAB_HOME": str(home),
            "INITLAB_DATA_DIR": str(SHARED_DATA),
        }
        home.mkdir(parents=True, exist_ok=True)
        self.log = (home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--port",
                str(self.port),
                *args,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        wait_for(self._ready, 60, "the embedded server")

    def _ready(self) -> bool:
        assert self.process.poll() is None, "the server exited"
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        self.client.close()
        self.log.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[Server], home: Path, *args: str) -> Server:
    server = Server(home, *args)
    servers.append(server)
    return server


def test_embedded_server_trains_the_reference_spec(
    servers: list[Server], tmp_path: Path
) -> None:
    server = start(servers, tmp_path)
    created = server.client.post("/v1/experiments", json={"epochs": 2})
    assert created.status_code == 201

    done: dict[str, Any] = wait_for(
        experiment_done(server.client, created.json()["id"]), 180, "training"
    )

    assert done["status"] == "succeeded"
    points = server.client.get(f"/v1/experiments/{done['id']}/history").json()["points"]
    assert len(points) == 10
    assert (tmp_path / "initlab.sqlite").exists()
    assert server.client.get("/readyz").json()["checks"] == {
        "database": "ok",
        "broker": "ok",
    }

    url = f"http://127.0.0.1:{server.port}"
    wide, plot = tmp_path / "wide.csv", tmp_path / "curves.svg"
    parquet = tmp_path / "long.parquet"
    cli = [sys.executable, "-m", "service.cli"]
    for command in (
        ["history", done["id"], "--format", "csv-wide", "-o", str(wide)],
        ["history", done["id"], "--format", "parquet", "-o", str(parquet)],
        ["plot", done["id"], "-o", str(plot), "--url", url],
    ):
        if command[0] == "history":
            command += ["--url", url]
        subprocess.run([*cli, *command], check=True, capture_output=True)
    as_json = subprocess.run(
        [*cli, "history", done["id"], "--url", url],
        check=True,
        capture_output=True,
        text=True,
    )
    assert wide.read_text().splitlines()[0].startswith("initializer,zeros,zeros")
    assert plot.read_bytes().startswith(b"<?xml")
    assert parquet.read_bytes().startswith(b"PAR1")
    missing_folder = str(tmp_path / "no" / "x.csv")
    unwritable = subprocess.run(
        [*cli, "history", done["id"], "-o", missing_folder, "--url", url],
        capture_output=True,
        text=True,
    )
    jpeg = subprocess.run(
        [*cli, "plot", done["id"], "-o", str(tmp_path / "x.jpg"), "--url", url],
        capture_output=True,
        text=True,
    )
    assert (unwritable.returncode, jpeg.returncode) == (1, 2)
    assert "cannot write" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr
    assert ".png or .svg" in jpeg.stderr
    assert len(json.loads(as_json.stdout)["points"]) == 10


def test_queued_work_survives_a_restart(servers: list[Server], tmp_path: Path) -> None:
    first = start(servers, tmp_path, "--no-worker")
    created = first.client.post(
        "/v1/experiments", json={"initializers": ["zeros", "he_normal"], "epochs": 2}
    ).json()
    first.stop()

    second = start(servers, tmp_path)
    done: dict[str, Any] = wait_for(
        experiment_done(second.client, created["id"]), 180, "training after restart"
    )

    assert done["status"] == "succeeded"
    runs = second.client.get(f"/v1/experiments/{created['id']}/runs").json()["data"]
    assert [(r["status"], r["attempts"]) for r in runs] == [("succeeded", 1)] * 2


def test_a_run_cut_short_by_a_stop_finishes_after_the_restart(
    servers: list[Server], tmp_path: Path
) -> None:
    first = start(servers, tmp_path)
    created = first.client.post(
        "/v1/experiments",
        json={"initializers": ["normal"], "epochs": 300, "engine": "keras"},
    ).json()
    wait_for(
        lambda: (
            first.client.get(f"/v1/experiments/{created['id']}").json()["progress"][
                "epochs_done"
            ]
            >= 2
        ),
        120,
        "the first epochs",
    )
    first.stop()

    second = start(servers, tmp_path)
    done: dict[str, Any] = wait_for(
        experiment_done(second.client, created["id"]), 240, "training after restart"
    )

    assert done["status"] == "succeeded"
    (run,) = second.client.get(f"/v1/experiments/{created['id']}/runs").json()["data"]
    points = second.client.get(f"/v1/runs/{run['id']}/history").json()["points"]
    assert [p["epoch"] for p in points] == list(range(300))
    assert run["attempts"] == 2


def test_a_taken_port_fails_at_once_without_starting_a_worker(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env={**SERVER_ENV, "INITLAB_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "worker.log").exists()
