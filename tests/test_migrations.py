"""The migrations build exactly the schema the ORM models describe."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db.base import Base
from service.db.migrate import upgrade
from service.db.models import Dataset  # noqa: F401  (register tables)
from service.db.session import make_engine


def differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.sqlite'}"
    upgrade(url)

    assert differences(url) == []


@pytest.mark.integration
def test_postgresql_schema_matches_the_models(database_url: str) -> None:
    assert differences(database_url) == []
