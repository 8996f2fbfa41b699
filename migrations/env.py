from alembic import context
from sqlalchemy import Connection

from service.config import get_settings
from service.db.base import Base
from service.db.models import (  # noqa: F401  (register tables)
    Dataset,
    EpochRecord,
    Experiment,
    Run,
)
from service.db.session import make_engine

target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or (
        get_settings().resolved_database_url
    )
    engine = make_engine(url)
    with engine.connect() as connection:
        run_with(connection)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=get_settings().resolved_database_url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
