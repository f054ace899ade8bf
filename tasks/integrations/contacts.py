"""Contact sync: one contact per host and email, updated on every booking."""

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from booking.models import Contact
from booking.payload import PostCommitPayload
from booking.timeutil import utcnow


def upsert_attendees(session: Session, payload: PostCommitPayload) -> int:
    """Insert or update each attendee as a contact of the organizer; returns how many."""
    owner_id = payload.organizer.id
    for attendee in payload.attendees:
        email = attendee.email.lower()
        contact = session.exec(
            select(Contact).where(Contact.owner_id == owner_id, Contact.email == email)
        ).first()
        if contact is None:
            try:
                with session.begin_nested():
                    session.add(Contact(owner_id=owner_id, email=email, name=attendee.name))
            except IntegrityError:  # a concurrent run inserted it first
                pass
            contact = session.exec(
                select(Contact).where(Contact.owner_id == owner_id, Contact.email == email)
            ).one()
        contact.name = attendee.name
        contact.phone_number = attendee.phone_number or contact.phone_number
        contact.time_zone = attendee.time_zone
        contact.last_booking_uid = payload.booking_uid
        contact.last_booked_at = payload.created_at
        contact.updated_at = utcnow()
        session.add(contact)
    return len(payload.attendees)
