"""the delivery log by subscription and time, for `booking subscriptions stats`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 19:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhookdelivery_subscription_created",
        "webhookdelivery",
        ["subscription_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhookdelivery_subscription_created", table_name="webhookdelivery")
