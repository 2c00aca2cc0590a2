"""Alembic environment: runs on the connection hpo hands it (see hpo.storage._migrate)."""

from __future__ import annotations

from alembic import context

from hpo.storage._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=context.config.get_main_option("version_table", "alembic_version_hpo"),
)
with context.begin_transaction():
    context.run_migrations()
