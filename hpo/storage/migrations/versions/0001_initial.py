"""Initial schema: studies, trials, intermediate values.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hpo.storage._schema import JSONText

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hpo_studies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("space", JSONText, nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("strategy_options", JSONText, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("meta", JSONText, nullable=False),
        sa.Column("user_attrs", JSONText, nullable=False),
    )
    op.create_table(
        "hpo_trials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("hpo_studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", JSONText, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("heartbeat_at", sa.DateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("user_attrs", JSONText, nullable=False),
        sa.Column("system_attrs", JSONText, nullable=False),
        sa.UniqueConstraint("study_id", "number", name="uq_hpo_trials_study_number"),
    )
    op.create_index("ix_hpo_trials_study_state", "hpo_trials", ["study_id", "state"])
    op.create_table(
        "hpo_trial_values",
        sa.Column(
            "trial_id",
            sa.Integer,
            sa.ForeignKey("hpo_trials.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("hpo_trial_values")
    op.drop_index("ix_hpo_trials_study_state", table_name="hpo_trials")
    op.drop_table("hpo_trials")
    op.drop_table("hpo_studies")
