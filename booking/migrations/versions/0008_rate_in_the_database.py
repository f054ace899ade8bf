"""a subscription's rate is kept in its row: when its next message may go

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Seconds since the epoch; NULL: no message has been sent under a rate yet.
    with op.batch_alter_table("webhooksubscription") as batch:
        batch.add_column(sa.Column("next_send_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooksubscription") as batch:
        batch.drop_column("next_send_at")
