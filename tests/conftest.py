"""Test settings. Integration tests use the real PostgreSQL and Redis at the
addresses below (or INITLAB_TEST_POSTGRES_URL / INITLAB_TEST_REDIS_URL): each
test session makes its own database and its own queue names, and removes them."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SESSION = uuid.uuid4().hex[:10]

POSTGRES_ADMIN_URL = os.environ.get(
    "INITLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("INITLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_DATABASE = f"initlab_test_{SESSION}"
DATABASE_URL = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{TEST_DATABASE}"
QUEUE_PREFIX = f"initlab-test-{SESSION}-"

# Settings are read from the environment once per process; the worker processes
# that integration tests start inherit the same values.
os.environ.update(
    {
        "INITLAB_HOME": f"/tmp/initlab-test-{SESSION}",
        "INITLAB_DATABASE_URL": DATABASE_URL,
        "INITLAB_BROKER_URL": REDIS_URL,
        "INITLAB_QUEUE_PREFIX": QUEUE_PREFIX,
        "INITLAB_DATA_DIR": str(SHARED_DATA),
        "INITLAB_HEARTBEAT_SECONDS": "0.5",
        # Owners that die are noticed at once by their process id; a live one
        # that goes silent this long loses its run. Shorter than this, a slow
        # machine busy loading TensorFlow can look silent and lose a run that
        # was fine.
        "INITLAB_STALE_AFTER_SECONDS": "30",
        "INITLAB_SWEEP_INTERVAL_SECONDS": "1",
        "INITLAB_UNPUBLISHED_GRACE_SECONDS": "1",
        "INITLAB_BROKER_VISIBILITY_TIMEOUT_SECONDS": "30",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    from service.db.migrate import upgrade

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{TEST_DATABASE}"'))
    upgrade(DATABASE_URL)
    yield DATABASE_URL

    from service.db.session import get_engine

    get_engine().dispose()
    with admin.connect() as connection:
        connection.execute(
            text(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
        )
    admin.dispose()


@pytest.fixture(scope="session")
def redis_client() -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield client
    for key in client.scan_iter(match=f"{QUEUE_PREFIX}*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def client(database_url: str, redis_client: object) -> Iterator[object]:
    """The app in process, against the session's database and broker."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    """A failed test that ran servers or workers shows the end of their logs."""
    report = yield
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and call.when == "call" and isinstance(tmp_path, Path):
        for log in sorted(tmp_path.rglob("*.log")):
            tail = log.read_text(errors="replace")[-6000:]
            report.sections.append((f"end of {log.relative_to(tmp_path)}", tail))
    return report
