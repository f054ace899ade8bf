"""booking lifecycle: who cancelled, why rejected, payments, ordered messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from booking.models.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN and CREATE INDEX: SQLite does them in place, with no table rebuild
    # (a rebuild of `booking` would trip the foreign keys that point at it).
    op.add_column(
        "booking", sa.Column("cancelled_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
    )
    op.add_column(
        "booking",
        sa.Column("rejection_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.add_column(
        "booking",
        sa.Column("paid", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.create_table(
        "payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["booking_id"], ["booking.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    op.create_index(op.f("ix_payment_booking_id"), "payment", ["booking_id"], unique=False)
    # A message of a booking event waits for the earlier events' messages to the same
    # subscription: its place is the event's commit time, then its position in the event.
    op.add_column("webhookredelivery", sa.Column("committed_at", UTCDateTime(), nullable=True))
    op.add_column(
        "webhookredelivery",
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_webhookredelivery_order",
        "webhookredelivery",
        ["booking_id", "subscription_id", "status", "committed_at"],
        unique=False,
    )
    op.create_index(
        "ix_outboxevent_booking_order", "outboxevent", ["booking_uid", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_outboxevent_booking_order", table_name="outboxevent")
    op.drop_index("ix_webhookredelivery_order", table_name="webhookredelivery")
    with op.batch_alter_table("webhookredelivery", schema=None) as batch_op:
        batch_op.drop_column("position")
        batch_op.drop_column("committed_at")
    op.drop_index(op.f("ix_payment_booking_id"), table_name="payment")
    op.drop_table("payment")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_column("paid")
        batch_op.drop_column("rejection_reason")
        batch_op.drop_column("cancelled_by")
