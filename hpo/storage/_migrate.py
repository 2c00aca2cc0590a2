"""Bring a database's schema to the version this hpo expects (Alembic ``upgrade head``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hpo.exceptions import StorageError

__all__ = ["HEAD", "current_revision", "upgrade"]

_DIR = Path(__file__).with_name("migrations")
HEAD = "0003"
_PG_LOCK_KEY = 0x68706F  # "hpo": serialises concurrent first-time migrations on PostgreSQL


def current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version_hpo"):
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version_hpo")).first()
    return None if row is None else str(row[0])


def upgrade(engine: Engine, target: str = "head") -> None:
    """Run pending migrations (up to ``target``, a revision; tests build older stores with it).
    Cheap when the schema is current (one query)."""
    with engine.connect() as conn:
        rev = current_revision(conn)
        conn.rollback()
    if rev == HEAD or (target != "head" and rev == target):
        return
    known = {p.name.split("_", 1)[0] for p in (_DIR / "versions").glob("[0-9]*_*.py")}
    if rev is not None and rev not in known:
        raise StorageError(
            f"the store was written by a newer hpo (schema {rev}, this hpo knows up to {HEAD}); "
            "upgrade hpo to open it."
        )
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_DIR))
    cfg.set_main_option("version_table", "alembic_version_hpo")
    # hpo_write: on SQLite take the write lock up front (BEGIN IMMEDIATE), so two processes
    # opening a new file at once queue up instead of failing on a lock upgrade.
    with engine.connect() as c, c.execution_options(hpo_write=True).begin() as tx:
        conn = tx.connection
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
