"""subscriptions: the keys a rotation keeps valid for a while, and a rate per subscription

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhooksubscription",
        sa.Column("previous_secrets", sa.JSON(), nullable=False, server_default="[]"),
    )
    op.add_column("webhooksubscription", sa.Column("rate_per_second", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooksubscription", schema=None) as batch_op:
        batch_op.drop_column("rate_per_second")
        batch_op.drop_column("previous_secrets")
