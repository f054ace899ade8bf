"""each outside service's cap held in the bookings database (tasks/caps.py)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "providerlease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_providerlease_provider", "providerlease", ["provider"])


def downgrade() -> None:
    op.drop_index("ix_providerlease_provider", table_name="providerlease")
    op.drop_table("providerlease")
