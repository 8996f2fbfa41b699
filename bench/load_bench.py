"""History under load: what dashboards cost the production setup.

    .venv/bin/python bench/load_bench.py [--dashboards 200] [--seconds 60]
        [--api-workers 2] [--admin-url postgresql+psycopg://postgres@127.0.0.1/postgres]

Creates a scratch PostgreSQL database beside the admin URL's (dropped at the
end), migrates it and seeds a finished experiment of 50 runs x 200 epochs x 8
metrics. It then starts `initlab serve --no-worker --workers N` on a free
loopback port, as production runs it, and measures one client at a time:
the full history in one response, a `since` poll with nothing new, a `304`
revalidation, `/aggregate` and `/summary`.

Last comes the load run. A second experiment of 50 runs is live: a writer
process commits one epoch of every run each second, as a packed worker does.
Each of the dashboards polls the history of one of the two experiments (half
each; the finished one from its last cursor, as a page already drawn) once a
second with `since` and `If-None-Match`, keeping its own cursor and ETag.
Latency counts from each poll's scheduled time, so a server that falls behind
shows it. Every figure is printed beside its target.
"""

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url

from service.db.migrate import upgrade
from service.db.models import EpochRecord, Experiment, Run, RunStatus
from service.db.session import make_engine
from service.experiments.schemas import ExperimentCreate
from service.experiments.service import create_experiment
from service.seeding import derive_seed

ROOT = Path(__file__).resolve().parents[1]
INITIALIZERS = ("zeros", "uniform", "normal", "he_normal", "lecun_uniform")
REPEATS = 10
EPOCHS = 200
METRICS = (
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "layer0_weight_norm",
    "layer0_grad_norm",
    "layer0_act_mean",
    "layer0_act_std",
)


def spec(name: str) -> ExperimentCreate:
    return ExperimentCreate.model_validate(
        {
            "name": name,
            "initializers": list(INITIALIZERS),
            "repeats": REPEATS,
            "epochs": EPOCHS,
        }
    )


def epoch_metrics(rng: np.random.Generator, variant: int, epoch: int) -> dict[str, Any]:
    """Plausible curves: loss falls, accuracy rises, with noise per run."""
    progress = 1.0 - math.exp(-(epoch + 1) / (20.0 + 10 * variant))
    noise = rng.normal(0.0, 0.01, size=len(METRICS))
    base = (
        0.7 - 0.6 * progress,
        0.5 + 0.45 * progress,
        0.72 - 0.58 * progress,
        0.5 + 0.44 * progress,
        1.0 + 2.0 * progress,
        0.5 * (1.0 - progress),
        0.5,
        0.2 + 0.1 * progress,
    )
    return {
        name: float(value + jitter)
        for name, value, jitter in zip(METRICS, base, noise, strict=True)
    }


def seed(url: str) -> tuple[str, str, list[tuple[str, int]]]:
    """A finished experiment with every epoch, and a live one with none yet."""
    engine = make_engine(url)
    rng = np.random.default_rng(derive_seed(2024, 0))
    from sqlalchemy.orm import Session

    with Session(engine) as session, session.begin():
        finished = create_experiment(session, spec("finished: 50 runs x 200 epochs"))
        live = create_experiment(session, spec("live: one epoch a second"))
        session.flush()
        runs = session.query(Run.id, Run.variant, Run.experiment_id).all()
        done = [(run, variant) for run, variant, exp in runs if exp == finished.id]
        live_runs = [(run, variant) for run, variant, exp in runs if exp == live.id]
        rows: list[dict[str, Any]] = []
        seq = 0
        final: dict[str, dict[str, Any]] = {}
        for epoch in range(EPOCHS):
            for run, variant in done:
                seq += 1
                metrics = epoch_metrics(rng, variant, epoch)
                final[run] = metrics
                rows.append(
                    {
                        "run_id": run,
                        "experiment_id": finished.id,
                        "epoch": epoch,
                        "attempt": 1,
                        "seq": seq,
                        "metrics": metrics,
                    }
                )
        for start in range(0, len(rows), 2000):
            session.execute(insert(EpochRecord), rows[start : start + 2000])
        for run, _ in done:
            session.execute(
                update(Run)
                .where(Run.id == run)
                .values(
                    status=RunStatus.SUCCEEDED,
                    attempts=1,
                    epochs_done=EPOCHS,
                    final_metrics=final[run],
                )
            )
        session.execute(
            update(Experiment)
            .where(Experiment.id == finished.id)
            .values(history_seq=seq)
        )
        session.execute(
            update(Run)
            .where(Run.experiment_id == live.id)
            .values(status=RunStatus.RUNNING, attempts=1)
        )
        result = finished.id, live.id, live_runs
    engine.dispose()
    return result


def write_epochs(
    url: str, experiment_id: str, runs: list[tuple[str, int]], stop: Any
) -> None:
    """Commit one epoch of every live run a second, in one transaction."""
    from worker.leases import advance_history

    engine = make_engine(url)
    rng = np.random.default_rng(7)
    from sqlalchemy.orm import Session

    epoch = 0
    started = time.monotonic()
    while not stop.is_set() and epoch < EPOCHS:
        with Session(engine) as session, session.begin():
            last = advance_history(session, experiment_id, len(runs))
            first = last - len(runs) + 1
            session.execute(
                insert(EpochRecord),
                [
                    {
                        "run_id": run,
                        "experiment_id": experiment_id,
                        "epoch": epoch,
                        "attempt": 1,
                        "seq": first + index,
                        "metrics": epoch_metrics(rng, variant, epoch),
                    }
                    for index, (run, variant) in enumerate(runs)
                ],
            )
        epoch += 1
        stop.wait(max(0.0, started + epoch - time.monotonic()))
    engine.dispose()


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds) * 1000


def timed(times: int, call: Callable[[], httpx.Response], expect: int) -> Latencies:
    call()
    latencies = Latencies()
    for _ in range(times):
        started = time.perf_counter()
        response = call()
        latencies.seconds.append(time.perf_counter() - started)
        if response.status_code != expect:
            raise SystemExit(f"expected {expect}, got {response.status_code}")
    return latencies


@dataclass
class LoadResult:
    latencies: Latencies = field(default_factory=Latencies)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    points: int = 0


async def http_get(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    etag: str | None,
) -> tuple[int, dict[str, str], bytes]:
    """One GET over a kept-alive connection (the server always sends a length)."""
    extra = f"If-None-Match: {etag}\r\n" if etag else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode())
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


async def dashboard(
    port: int,
    watched: tuple[str, int],
    start: float,
    seconds: float,
    result: LoadResult,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    experiment_id, cursor = watched
    etag = None
    tick = 0
    loop = asyncio.get_running_loop()
    try:
        while (scheduled := start + tick) < start + seconds:
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            path = f"/v1/experiments/{experiment_id}/history?since={cursor}"
            try:
                status, headers, body = await asyncio.wait_for(
                    http_get(reader, writer, path, etag), timeout=5
                )
            except (TimeoutError, OSError, ValueError, IndexError) as exc:
                result.errors.append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                tick += 1
                continue
            result.latencies.seconds.append(loop.time() - scheduled)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == 200:
                page = json.loads(body)
                cursor, etag = page["cursor"], headers.get("etag")
                result.points += len(page["points"])
            elif status != 304:
                result.errors.append(f"HTTP {status}")
            # Catch up without a burst when a poll took longer than a second.
            tick = max(tick + 1, math.ceil(loop.time() - start))
    finally:
        writer.close()


async def load(
    port: int, watched: list[tuple[str, int]], dashboards: int, seconds: float
) -> Any:
    result = LoadResult()
    loop = asyncio.get_running_loop()
    start = loop.time() + 1.0
    await asyncio.gather(
        *(
            # Spread the dashboards evenly over each second and over the
            # experiments they watch.
            dashboard(
                port, watched[i % len(watched)], start + i / dashboards, seconds, result
            )
            for i in range(dashboards)
        )
    )
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INITLAB_DATABASE_URL": url}
    command = [sys.executable, "-m", "service.cli", "serve", "--no-worker"]
    command += ["--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("the server did not start")


def row(name: str, value: float, unit: str, target: float | None) -> None:
    if target is None:
        print(f"  {name:<34} {value:>10.1f} {unit:<3}")
        return
    verdict = "ok" if value <= target else "MISSED"
    print(
        f"  {name:<34} {value:>10.1f} {unit:<3} target < {target:<5g}"
        f" {target / max(value, 1e-9):>6.1f}x  {verdict}"
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument(
        "--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args.add_argument("--dashboards", type=int, default=200)
    args.add_argument("--seconds", type=float, default=60.0)
    args.add_argument("--api-workers", type=int, default=2)
    options = args.parse_args()

    admin = make_url(options.admin_url)
    name = f"initlab_bench_{os.getpid()}"
    url = admin.set(database=name).render_as_string(hide_password=False)
    conninfo = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    server = None
    try:
        upgrade(url)
        started = time.perf_counter()
        finished, live, live_runs = seed(url)
        points = len(INITIALIZERS) * REPEATS * EPOCHS
        print(
            f"seeded {points} points ({len(INITIALIZERS) * REPEATS} runs x {EPOCHS}"
            f" epochs x {len(METRICS)} metrics) in"
            f" {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        server = start_server(url, port, options.api_workers)
        print(
            f"server: initlab serve --no-worker --workers {options.api_workers},"
            f" PostgreSQL, 127.0.0.1:{port}; {os.cpu_count()} cores\n"
        )
        measure(port, finished)
        print(
            f"\nLoad: {options.dashboards} dashboards polling once a second for"
            f" {options.seconds:g} s. Half watch the live experiment, whose 50 runs"
            " each write an epoch a second; half watch the finished one, from its"
            " last cursor."
        )
        watched = [(live, 0), (finished, points)]
        stop = multiprocessing.Event()
        writer = multiprocessing.Process(
            target=write_epochs, args=(url, live, live_runs, stop)
        )
        writer.start()
        try:
            result = asyncio.run(
                load(port, watched, options.dashboards, options.seconds)
            )
        finally:
            stop.set()
            writer.join()
        report_load(result, options.dashboards, options.seconds)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(port: int, experiment_id: str) -> None:
    base = f"http://127.0.0.1:{port}/v1/experiments/{experiment_id}"
    with httpx.Client(timeout=30) as client:
        full = client.get(f"{base}/history", params={"limit": 10000})
        page = full.json()
        assert not page["has_more"], "the full history must fit one page"
        since = {"since": page["cursor"]}
        tag = client.get(f"{base}/history", params=since).headers["etag"]
        print(
            f"One client, sequential requests (p50 of n; full history:"
            f" {len(page['points'])} points, {len(full.content) / 1e6:.2f} MB JSON)"
        )
        history = timed(
            30, lambda: client.get(f"{base}/history", params={"limit": 10000}), 200
        )
        empty = timed(300, lambda: client.get(f"{base}/history", params=since), 200)
        revalidate = timed(
            300,
            lambda: client.get(
                f"{base}/history", params=since, headers={"If-None-Match": tag}
            ),
            304,
        )
        aggregate = timed(20, lambda: client.get(f"{base}/aggregate"), 200)
        summary = timed(20, lambda: client.get(f"{base}/summary"), 200)
    row("full history, p50 (n=30)", history.p50, "ms", 150)
    row("since poll, nothing new, p50 (n=300)", empty.p50, "ms", 5)
    row("304 revalidation, p50 (n=300)", revalidate.p50, "ms", 5)
    row("aggregate, p50 (n=20)", aggregate.p50, "ms", 200)
    row("summary, p50 (n=20)", summary.p50, "ms", None)


def report_load(result: LoadResult, dashboards: int, seconds: float) -> None:
    polls = len(result.latencies.seconds)
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    print(
        f"  {polls} polls ({polls / seconds:.0f}/s of {dashboards}/s asked);"
        f" {statuses}; {result.points} points delivered"
    )
    row("errors", float(len(result.errors)), "", None)
    for error in sorted(set(result.errors))[:5]:
        print(f"    {error}")
    row("p50", result.latencies.p50, "ms", None)
    row("p95", result.latencies.quantile(0.95), "ms", None)
    row("p99", result.latencies.quantile(0.99), "ms", 100)
    row("max", max(result.latencies.seconds) * 1000, "ms", None)


if __name__ == "__main__":
    main()
