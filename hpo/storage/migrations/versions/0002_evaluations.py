"""Final evaluations of a study's best configuration on its test split (issue 16).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hpo.storage._schema import JSONText

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hpo_evaluations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("hpo_studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trial_number", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("test_accuracy", sa.Float, nullable=False),
        sa.Column("test_loss", sa.Float, nullable=False),
        sa.Column("epochs", sa.Integer, nullable=False),
        sa.Column("retrained", sa.Integer, nullable=False),
        sa.Column("confusion", JSONText, nullable=False),
        sa.Column("info", JSONText, nullable=False),
    )
    op.create_index("ix_hpo_evaluations_study", "hpo_evaluations", ["study_id"])


def downgrade() -> None:
    op.drop_index("ix_hpo_evaluations_study", table_name="hpo_evaluations")
    op.drop_table("hpo_evaluations")
