"""Alembic environment: uses the connection genemill passes in (never reads settings itself)."""

from __future__ import annotations

from alembic import context

from genemill.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    msg = "genemill migrations run through genemill.store.db.migrate(engine)"
    raise RuntimeError(msg)
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
