"""Engine benchmark: the sequential Keras loop against the packed engine and
against the whole service.

    .venv/bin/python bench/engine_bench.py [--repeats 20] [--skip-keras]

First the reference grid (5 initializers x repeats, banknote, one sigmoid unit,
rmsprop, batch 16) through each compared engine and through the service (HTTP,
database, queue, worker), then the packed engine at growing run counts.
Every measurement runs in a fresh Python process of its own, so its peak
resident memory is its own and its wall time includes any tracing or compiling
the engine does on its first call (imports and data loading are not timed).
The service's memory is that of the server and its worker processes together.
The Keras loop records what a notebook records; the packed engine and the
service also record the per-layer diagnostics, as the service does by default.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
INITIALIZERS = ("zeros", "uniform", "normal", "he_normal", "lecun_uniform")
BENCH_SEED = 20240

Engine = Callable[[Any, Sequence[Any], Any, Any], None]


@dataclass(frozen=True)
class Measurement:
    engine: str
    runs: int
    epochs: int
    reported: int
    wall_s: float
    rss_before_mb: float
    peak_rss_mb: float

    @property
    def run_epochs_per_s(self) -> float:
        return self.runs * self.epochs / self.wall_s


def keras_engine(_: argparse.Namespace) -> Engine:
    from worker.engine.keras_engine import train_keras

    return train_keras


def packed_engine(args: argparse.Namespace) -> Engine:
    from worker.engine.packed import train_packed

    jit = {"auto": None, "on": True, "off": False}[args.jit]

    def train(plan: Any, runs: Sequence[Any], data: Any, on_epoch: Any) -> None:
        train_packed(plan, runs, data, on_epoch, jit_compile=jit)

    return train


ENGINES: dict[str, Callable[[argparse.Namespace], Engine]] = {
    "keras": keras_engine,
    "packed": packed_engine,
}
SERVICE = "service"
SERVICE_COLD = "svc-cold"
COMPARED = ("keras", "packed", SERVICE_COLD, SERVICE)


def reference_plan(epochs: int, diagnostics: bool) -> Any:
    from worker.engine.plan import LayerPlan, TrainingPlan

    return TrainingPlan(
        layers=(LayerPlan(1, "sigmoid"),),
        optimizer="rmsprop",
        loss="binary_crossentropy",
        metrics=("accuracy",),
        batch_size=16,
        epochs=epochs,
        diagnostics=diagnostics,
    )


def grid(n_runs: int) -> list[Any]:
    """The reference grid's runs: the initializers in turn, a seed per repeat."""
    from worker.engine.plan import InitializerRef, RunPlan, derive_seed

    return [
        RunPlan(
            seed=derive_seed(BENCH_SEED, index % len(INITIALIZERS), index),
            kernel_initializer=InitializerRef(INITIALIZERS[index % len(INITIALIZERS)]),
        )
        for index in range(n_runs)
    ]


def banknote() -> Any:
    from service.config import Settings
    from worker.datasets import load_table, split

    table = load_table("uci:banknote", Settings(data_dir=DATA_DIR))
    return split(table, test_size=0.3, split_seed=42, standardize="all")


def rss_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args: argparse.Namespace) -> Measurement:
    """One engine on one grid, in this process; called in the child."""
    engine = ENGINES[args.engine](args)
    # The Keras loop is the notebook's, which records no diagnostics; the
    # packed engine records them, as the service does by default.
    plan = reference_plan(args.epochs, diagnostics=args.engine != "keras")
    runs, data = grid(args.runs), banknote()
    reported = 0

    def sink(run: int, epoch: int, metrics: dict[str, float]) -> bool:
        nonlocal reported
        reported += 1
        return True

    before = rss_mb("VmRSS")
    start = time.perf_counter()
    engine(plan, runs, data, sink)
    wall = time.perf_counter() - start
    return Measurement(
        args.engine, args.runs, args.epochs, reported, wall, before, rss_mb("VmHWM")
    )


def process_tree(root: int) -> list[int]:
    """The pid and every descendant of it."""
    found, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            kids = [int(part) for part in children.read_text().split()]
            found += kids
            frontier += kids
    return found


def tree_mb(root: int, field: str) -> float:
    total = 0.0
    for pid in process_tree(root):
        status = Path(f"/proc/{pid}/status")
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) / 1024
    return total


def service_path(args: argparse.Namespace) -> Measurement:
    """POST the reference grid to a real `initlab serve` (embedded SQLite and
    folder queue unless INITLAB_DATABASE_URL / INITLAB_BROKER_URL say otherwise)
    with its real worker, until every run has succeeded and the history reads
    back complete. `service` runs a one-run warm-up first, so the worker has
    loaded TensorFlow and traced its epoch, as a long-running worker has;
    `svc-cold` times the first experiment of a fresh worker, imports and all."""
    import os
    import signal
    import socket
    import tempfile

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tempfile.mkdtemp(prefix="initlab-bench-")
    env = {**os.environ, "INITLAB_HOME": home, "INITLAB_DATA_DIR": str(DATA_DIR)}
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        _wait_ready(client)
        if args.engine == SERVICE:
            _run(client, {"initializers": ["zeros"], "epochs": 1})
        before = tree_mb(server.pid, "VmRSS")

        start = time.perf_counter()
        reported = _run(client, {"repeats": args.runs // 5, "epochs": args.epochs})
        wall = time.perf_counter() - start

        peak = tree_mb(server.pid, "VmHWM")
    finally:
        client.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    return Measurement(
        args.engine, args.runs, args.epochs, reported, wall, before, peak
    )


def _wait_ready(client: Any) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit("the service did not become ready")


def _run(client: Any, spec: dict[str, Any]) -> int:
    """Submit, wait for success, read the history back; the points read."""
    created = client.post("/v1/experiments", json=spec)
    created.raise_for_status()
    experiment_id = created.json()["id"]
    while True:
        status = client.get(f"/v1/experiments/{experiment_id}").json()["status"]
        if status == "succeeded":
            break
        if status in {"failed", "cancelled"}:
            sys.exit(f"the benchmark experiment ended {status}")
        time.sleep(0.02)
    from service.demo import fetch_history

    return len(fetch_history(client, experiment_id))


def in_child(
    args: argparse.Namespace, engine: str, runs: int, epochs: int
) -> Measurement:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--engine",
        engine,
        "--runs",
        str(runs),
        "--epochs",
        str(epochs),
        "--jit",
        args.jit,
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{engine} at {runs} runs failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    measurement = Measurement(**result)
    if measurement.reported != runs * epochs:
        sys.exit(f"{engine} reported {measurement.reported} of {runs * epochs} epochs")
    return measurement


def compare(args: argparse.Namespace) -> None:
    runs = len(INITIALIZERS) * args.repeats
    engines = [name for name in COMPARED if not (args.skip_keras and name == "keras")]
    print(
        f"Reference grid: {len(INITIALIZERS)} initializers x {args.repeats} repeats"
        f" = {runs} runs x {args.epochs} epochs (banknote, 1 sigmoid unit, rmsprop,"
        " batch 16)"
    )
    print(_header("engine"))
    baseline = None
    for name in engines:
        result = in_child(args, name, runs, args.epochs)
        baseline = baseline or (result.wall_s if name == "keras" else None)
        print(_row(name, result, baseline))


def scale(args: argparse.Namespace) -> None:
    print(f"\nPacked engine scaling ({args.scale_epochs} epochs)")
    print(_header("runs"))
    for runs in args.scale_runs:
        result = in_child(args, "packed", runs, args.scale_epochs)
        print(_row(str(runs), result, None))


def _header(first: str) -> str:
    return (
        f"{first:>8} {'wall s':>9} {'vs keras':>9} {'run-ep/s':>10}"
        f" {'RSS before MB':>14} {'peak RSS MB':>12}"
    )


def _row(label: str, result: Measurement, baseline: float | None) -> str:
    ratio = f"{baseline / result.wall_s:8.1f}x" if baseline else f"{'-':>9}"
    return (
        f"{label:>8} {result.wall_s:9.2f} {ratio} {result.run_epochs_per_s:10.1f}"
        f" {result.rss_before_mb:14.0f} {result.peak_rss_mb:12.0f}"
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--scale-epochs", type=int, default=20)
    parser.add_argument(
        "--scale-runs",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[5, 50, 500, 5000],
        help="comma-separated run counts",
    )
    parser.add_argument(
        "--jit", choices=("auto", "on", "off"), default="auto", help="packed: XLA"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--engine",
        choices=[*sorted(ENGINES), SERVICE, SERVICE_COLD],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    if args.child:
        sys.path.insert(0, str(ROOT))
        in_service = args.engine in {SERVICE, SERVICE_COLD}
        result = service_path(args) if in_service else measure(args)
        print(json.dumps(asdict(result)))
        return
    compare(args)
    if not args.skip_scaling:
        scale(args)


if __name__ == "__main__":
    main()
