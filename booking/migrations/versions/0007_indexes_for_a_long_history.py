"""indexes the operators' queries need once history is long: delivery attempts by time,
outbox events not done

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_DONE = "finished_at IS NOT NULL AND outcome NOT IN ('Completed', 'not tracked')"


def upgrade() -> None:
    # `booking deliveries list --since 1h` (and `--failed --since`): without it, every
    # attempt ever made is read.
    op.create_index("ix_webhookdelivery_created_at", "webhookdelivery", ["created_at"])
    # `booking outbox status` counts the events not done among every event ever finished.
    op.create_index(
        "ix_outboxevent_not_done",
        "outboxevent",
        ["finished_at"],
        postgresql_where=sa.text(NOT_DONE),
        sqlite_where=sa.text(NOT_DONE),
    )


def downgrade() -> None:
    op.drop_index("ix_outboxevent_not_done", table_name="outboxevent")
    op.drop_index("ix_webhookdelivery_created_at", table_name="webhookdelivery")
