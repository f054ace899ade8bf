"""due-work sweeps planned for when work falls due, one a minute (booking/sweeps.py)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from booking.models.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plannedsweep",
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("at"),
    )


def downgrade() -> None:
    op.drop_table("plannedsweep")
