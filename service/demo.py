"""`initlab demo`: run the reference experiment over HTTP and report it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from service.experiments.schemas import REFERENCE_EXAMPLE
from service.report import METRICS, curves, final_table, plot

TERMINAL = {"succeeded", "failed", "cancelled"}


class DemoError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    return subprocess.Popen(command, start_new_session=True)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(
    client: httpx.Client, timeout: float, server: subprocess.Popen[bytes] | None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise DemoError(f"the server exited with code {server.returncode}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise DemoError(f"the server was not ready within {timeout:.0f} s")


def follow(
    client: httpx.Client, experiment_id: str, console: Console
) -> dict[str, Any]:
    """Poll the experiment, showing a progress bar, until every run ends."""
    columns = (*Progress.get_default_columns()[:2], BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("training (epochs)", total=None)
        while True:
            experiment: dict[str, Any] = client.get(
                f"/v1/experiments/{experiment_id}"
            ).json()
            progress = experiment["progress"]
            bar.update(
                task,
                completed=progress["epochs_done"],
                total=progress["epochs_total"],
                description=f"training ({experiment['status']})",
            )
            if experiment["status"] in TERMINAL:
                return experiment
            time.sleep(0.5)


def fetch_history(client: httpx.Client, experiment_id: str) -> list[dict[str, Any]]:
    """Every point of an experiment, page by page."""
    points: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = client.get(
            f"/v1/experiments/{experiment_id}/history",
            params={"since": cursor, "limit": 10_000},
        ).json()
        points += page["points"]
        cursor = page["cursor"]
        if not page["has_more"]:
            return points


def print_table(console: Console, rows: list[dict[str, Any]], epochs: int) -> None:
    table = Table(title=f"Final epoch ({epochs}): mean ± std over repeats")
    table.add_column("initializer")
    table.add_column("repeats", justify="right")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for row in rows:
        table.add_row(
            row["initializer"],
            str(row["repeats"]),
            *(str(row[metric]) for metric in METRICS),
        )
    console.print(table)


def run_demo(
    *, url: str | None, repeats: int, epochs: int, plot_path: Path, timeout: float
) -> int:
    console = Console()
    if not console.is_terminal:
        # Logs and pipes have no width to fit; keep the table on one line a row.
        console = Console(width=120)
    server = None
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        console.print(f"starting the embedded service at {url}")
        server = start_server(port)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_ready(client, timeout, server)
            spec = {**REFERENCE_EXAMPLE, "repeats": repeats, "epochs": epochs}
            response = client.post("/v1/experiments", json=spec)
            if response.status_code != 201:
                raise DemoError(f"submission refused: {response.text}")
            experiment_id = response.json()["id"]
            console.print(
                f"experiment {experiment_id}: {response.json()['runs_total']} runs"
            )

            experiment = follow(client, experiment_id, console)
            points = fetch_history(client, experiment_id)
    finally:
        if server is not None:
            stop_server(server)

    data = curves(points)
    print_table(console, final_table(data), epochs)
    plot(data, plot_path, f"{experiment['name']} ({repeats} repeats)")
    console.print(f"status: {experiment['status']}; plot written to {plot_path}")
    return 0 if experiment["status"] == "succeeded" else 1
