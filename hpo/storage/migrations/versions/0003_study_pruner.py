"""The study's pruner in columns of its own, next to its strategy's.

Until now the pruner a study was made with was kept in its free-form ``meta`` as
``{"pruner": {"name": ..., "options": {...}}}``; this moves it into ``pruner`` and
``pruner_options`` (and out of ``meta``). Downgrading puts it back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from alembic import op

from hpo.storage._schema import JSONText

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_studies = sa.table(
    "hpo_studies",
    sa.column("id", sa.Integer),
    sa.column("meta", JSONText),
    sa.column("pruner", sa.String(64)),
    sa.column("pruner_options", JSONText),
)


def upgrade() -> None:
    op.add_column("hpo_studies", sa.Column("pruner", sa.String(64), nullable=True))
    op.add_column("hpo_studies", sa.Column("pruner_options", JSONText, nullable=True))
    conn = op.get_bind()
    for row in conn.execute(sa.select(_studies.c.id, _studies.c.meta)).all():
        meta = dict(row.meta or {})
        spec = meta.get("pruner")
        if not (isinstance(spec, Mapping) and isinstance(spec.get("name"), str)):
            continue
        del meta["pruner"]
        options = spec.get("options")
        conn.execute(
            _studies.update()
            .where(_studies.c.id == row.id)
            .values(
                meta=meta,
                pruner=spec["name"],
                pruner_options=dict(options) if isinstance(options, Mapping) else {},
            )
        )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _studies.c.id, _studies.c.meta, _studies.c.pruner, _studies.c.pruner_options
        ).where(_studies.c.pruner.is_not(None))
    ).all()
    for row in rows:
        meta = {**(row.meta or {}), "pruner": {"name": row.pruner, "options": row.pruner_options}}
        conn.execute(_studies.update().where(_studies.c.id == row.id).values(meta=meta))
    with op.batch_alter_table("hpo_studies") as batch:
        batch.drop_column("pruner_options")
        batch.drop_column("pruner")
