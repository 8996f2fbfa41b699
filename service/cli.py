"""The `initlab` command."""

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from service.config import get_settings


def _serve(args: argparse.Namespace) -> int:
    from service.embedded import serve, unusable_address

    reason = unusable_address(args.host, args.port)
    if reason is not None:
        sys.stderr.write(
            f"initlab serve: cannot listen on {args.host}:{args.port}: {reason}\n"
        )
        return 1
    settings = get_settings()
    with_worker = settings.embedded_broker if args.worker is None else args.worker
    serve(settings, args.host, args.port, with_worker, args.workers)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from service.embedded import worker_command

    settings = get_settings()
    devices = ["gpu", "cpu"] if args.gpu else ["cpu"]
    command = worker_command(settings, args.concurrency, args.name, devices)
    os.execv(command[0], command)


def _migrate(_: argparse.Namespace) -> int:
    from service.db.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    return 0


def _sweep(_: argparse.Namespace) -> int:
    from worker.sweeper import sweep

    report = sweep(get_settings())
    print(
        f"requeued {len(report.requeued)}, failed {len(report.failed)}, "
        f"published {len(report.published)}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.demo import DemoError, run_demo

    try:
        return run_demo(
            url=args.url,
            repeats=args.repeats,
            epochs=args.epochs,
            plot_path=args.plot,
            timeout=args.timeout,
        )
    except DemoError as exc:
        print(f"initlab demo: {exc}", file=sys.stderr)
        return 1


def _experiment_path(experiment_id: str) -> str:
    from urllib.parse import quote

    return f"/v1/experiments/{quote(experiment_id, safe='')}"


def _history(args: argparse.Namespace) -> int:
    file_format, _, layout = args.format.partition("-")
    path = f"{_experiment_path(args.experiment_id)}/history.{file_format}"
    return _download(args.url, path, {"layout": layout or "long"}, args.output)


def _plot(args: argparse.Namespace) -> int:
    image_format = args.output.suffix.lower().removeprefix(".")
    if image_format not in ("png", "svg"):
        print(f"initlab plot: {args.output} must end in .png or .svg", file=sys.stderr)
        return 2
    path = f"{_experiment_path(args.experiment_id)}/plot.{image_format}"
    params = {"metric": args.metric} if args.metric else {}
    return _download(args.url, path, params, args.output)


def _download(url: str, path: str, params: dict[str, Any], output: Path | None) -> int:
    import httpx

    try:
        response = httpx.get(url + path, params=params, timeout=120)
    except httpx.TransportError as exc:
        print(f"initlab: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"initlab: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    if output is None:
        sys.stdout.buffer.write(response.content)
        sys.stdout.flush()
        return 0
    try:
        output.write_bytes(response.content)
    except OSError as exc:
        print(f"initlab: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"written to {output}")
    return 0


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="initlab", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (and, embedded, a worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run a worker process beside the API (default: only when embedded)",
    )
    serve.add_argument(
        "--workers",
        type=positive,
        default=1,
        help="API processes sharing the port (production: about one per core)",
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--concurrency", "-c", type=positive, default=1)
    worker.add_argument(
        "--gpu",
        action="store_true",
        help="a GPU host: read the gpu queue as well as the cpu queue",
    )
    worker.add_argument("--name", default="worker")
    worker.set_defaults(handler=_worker)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.set_defaults(handler=_migrate)

    sweep = commands.add_parser("sweep", help="requeue or fail abandoned runs once")
    sweep.set_defaults(handler=_sweep)

    history = commands.add_parser("history", help="an experiment's history")
    history.add_argument("experiment_id")
    history.add_argument(
        "--format",
        choices=["json", "json-wide", "csv", "csv-wide", "parquet", "parquet-wide"],
        default="json",
        help="long (a row per run and epoch) or -wide (the mean per initializer)",
    )
    history.add_argument("--output", "-o", type=Path, help="a file (default: stdout)")
    history.add_argument("--url", default="http://127.0.0.1:8000")
    history.set_defaults(handler=_history)

    plot = commands.add_parser("plot", help="an experiment's curves as PNG or SVG")
    plot.add_argument("experiment_id")
    plot.add_argument("--output", "-o", type=Path, default=Path("initlab-plot.png"))
    plot.add_argument("--metric", action="append", help="a metric to draw (repeatable)")
    plot.add_argument("--url", default="http://127.0.0.1:8000")
    plot.set_defaults(handler=_plot)

    demo = commands.add_parser("demo", help="train the reference experiment and report")
    demo.add_argument("--url", help="use a running server instead of starting one")
    demo.add_argument("--repeats", type=int, default=5)
    demo.add_argument("--epochs", type=int, default=5)
    demo.add_argument("--plot", type=Path, default=Path("initlab-demo.png"))
    demo.add_argument("--timeout", type=float, default=120.0)
    demo.set_defaults(handler=_demo)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
