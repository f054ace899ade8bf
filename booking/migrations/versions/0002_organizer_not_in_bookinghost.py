"""bookinghost lists co-hosts only: the organizer is the booking's user_id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM bookinghost WHERE EXISTS (SELECT 1 FROM booking"
        " WHERE booking.id = bookinghost.booking_id AND booking.user_id = bookinghost.user_id)"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO bookinghost (booking_id, user_id) SELECT id, user_id FROM booking"
        " WHERE NOT EXISTS (SELECT 1 FROM bookinghost"
        " WHERE bookinghost.booking_id = booking.id AND bookinghost.user_id = booking.user_id)"
    )
