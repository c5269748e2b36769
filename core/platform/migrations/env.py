"""Alembic's environment: revisions run on the connection core.platform.store hands over, inside its write transaction.

``Store`` opens the transaction (BEGIN IMMEDIATE on SQLite, the advisory write lock on PostgreSQL) and puts
its connection in ``config.attributes["connection"]``; Alembic sees a transaction already begun and leaves
the commit to the Store, so servers starting together migrate one after another. A new revision:
``alembic.command.revision(core.platform.store.alembic_config(connection), "what changes", autogenerate=True)``
on a connection to a database at head, then read and tidy the file it writes in versions/.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from core.platform.store import metadata


def the_apps_table(name: str | None, type_: str, _parent_names: dict) -> bool:
    """Autogenerate looks at our tables only: the run queue (Huey) may keep its own in the same database."""
    return type_ != "table" or name in metadata.tables


def run_migrations(connection: Connection) -> None:
    """Batch mode on SQLite, whose ALTER TABLE cannot change a column in place (Alembic copies the table)."""
    context.configure(connection=connection, target_metadata=metadata, include_name=the_apps_table,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def shared_connection() -> Connection:
    """Only the Store's connection: a second one would migrate outside its write lock."""
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError("core/migrations runs through core.platform.store (Store or migrate), on its connection")
    return connection


run_migrations(shared_connection())
