"""Messages in the recipient's language, rebuilt from the locale the snapshot carries.

Translation functions cannot travel in a JSON payload; the locale does, and this catalogue
turns it back into text. Unknown locales fall back to the base language, then to English.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "push_body": "{booker} booked {event} for {when}",
        "reminder_subject": "Reminder: {title} at {when}",
        "reminder_body": 'Hello {name},\n\nthis is a reminder of "{title}" with {organizer} on {when}.\n\nLocation: {location}\n',
        "booking_created": "New booking",
        "booking_rescheduled": "Booking rescheduled",
        "booking_requested": "New booking request",
        "booking_confirmed": "Booking confirmed",
        "booking_cancelled": "Booking cancelled",
        "push_body_cancelled": "{booker}'s booking of {event} for {when} was cancelled",
        "cancelled_subject": "Cancelled: {title} on {when}",
        "cancelled_body": 'Hello {name},\n\n"{title}" with {organizer} on {when} has been cancelled.{reason}\n',
        "rejected_subject": "Declined: {title} on {when}",
        "rejected_body": 'Hello {name},\n\n{organizer} could not accept "{title}" on {when}.{reason}\n',
        "reason_line": "\n\nReason: {text}",
    },
    "de": {
        "push_body": "{booker} hat {event} für {when} gebucht",
        "reminder_subject": "Erinnerung: {title} am {when}",
        "reminder_body": 'Hallo {name},\n\ndies ist eine Erinnerung an "{title}" mit {organizer} am {when}.\n\nOrt: {location}\n',
        "booking_created": "Neue Buchung",
        "booking_rescheduled": "Buchung verschoben",
        "booking_requested": "Neue Buchungsanfrage",
        "booking_confirmed": "Buchung bestätigt",
        "booking_cancelled": "Buchung storniert",
        "push_body_cancelled": "Die Buchung von {event} für {when} durch {booker} wurde storniert",
        "cancelled_subject": "Abgesagt: {title} am {when}",
        "cancelled_body": 'Hallo {name},\n\n"{title}" mit {organizer} am {when} wurde abgesagt.{reason}\n',
        "rejected_subject": "Abgelehnt: {title} am {when}",
        "rejected_body": 'Hallo {name},\n\n{organizer} konnte "{title}" am {when} nicht annehmen.{reason}\n',
        "reason_line": "\n\nGrund: {text}",
    },
    "fr": {
        "push_body": "{booker} a réservé {event} pour le {when}",
        "reminder_subject": "Rappel : {title} le {when}",
        "reminder_body": "Bonjour {name},\n\nceci est un rappel pour « {title} » avec {organizer} le {when}.\n\nLieu : {location}\n",
        "booking_created": "Nouvelle réservation",
        "booking_rescheduled": "Réservation reportée",
        "booking_requested": "Nouvelle demande de réservation",
        "booking_confirmed": "Réservation confirmée",
        "booking_cancelled": "Réservation annulée",
        "push_body_cancelled": "La réservation de {event} pour le {when} par {booker} a été annulée",
        "cancelled_subject": "Annulé : {title} le {when}",
        "cancelled_body": "Bonjour {name},\n\n« {title} » avec {organizer} le {when} a été annulé.{reason}\n",
        "rejected_subject": "Refusé : {title} le {when}",
        "rejected_body": "Bonjour {name},\n\n{organizer} n'a pas pu accepter « {title} » le {when}.{reason}\n",
        "reason_line": "\n\nMotif : {text}",
    },
    "es": {
        "push_body": "{booker} reservó {event} para el {when}",
        "reminder_subject": "Recordatorio: {title} el {when}",
        "reminder_body": 'Hola {name},\n\nte recordamos "{title}" con {organizer} el {when}.\n\nLugar: {location}\n',
        "booking_created": "Nueva reserva",
        "booking_rescheduled": "Reserva reprogramada",
        "booking_requested": "Nueva solicitud de reserva",
        "booking_confirmed": "Reserva confirmada",
        "booking_cancelled": "Reserva cancelada",
        "push_body_cancelled": "La reserva de {event} para el {when} de {booker} fue cancelada",
        "cancelled_subject": "Cancelado: {title} el {when}",
        "cancelled_body": 'Hola {name},\n\n"{title}" con {organizer} el {when} ha sido cancelado.{reason}\n',
        "rejected_subject": "Rechazado: {title} el {when}",
        "rejected_body": 'Hola {name},\n\n{organizer} no pudo aceptar "{title}" el {when}.{reason}\n',
        "reason_line": "\n\nMotivo: {text}",
    },
    "pt": {
        "push_body": "{booker} reservou {event} para {when}",
        "reminder_subject": "Lembrete: {title} em {when}",
        "reminder_body": 'Olá {name},\n\neste é um lembrete de "{title}" com {organizer} em {when}.\n\nLocal: {location}\n',
        "booking_created": "Nova reserva",
        "booking_rescheduled": "Reserva reagendada",
        "booking_requested": "Novo pedido de reserva",
        "booking_confirmed": "Reserva confirmada",
        "booking_cancelled": "Reserva cancelada",
        "push_body_cancelled": "A reserva de {event} para {when} de {booker} foi cancelada",
        "cancelled_subject": "Cancelado: {title} em {when}",
        "cancelled_body": 'Olá {name},\n\n"{title}" com {organizer} em {when} foi cancelado.{reason}\n',
        "rejected_subject": "Recusado: {title} em {when}",
        "rejected_body": 'Olá {name},\n\n{organizer} não pôde aceitar "{title}" em {when}.{reason}\n',
        "reason_line": "\n\nMotivo: {text}",
    },
}


def translate(locale: str, key: str) -> str:
    """`key` in `locale` (e.g. "de", "pt-BR"), falling back to the base language and English."""
    for candidate in (locale, locale.replace("_", "-").split("-")[0], "en"):
        messages = CATALOGUE.get(candidate)
        if messages and key in messages:
            return messages[key]
    raise KeyError(f"no message {key!r}")


def local_time(when: datetime, time_zone: str, locale: str) -> str:
    """`when` in the recipient's zone and language, e.g. "14. März 2031 um 16:00:00 MEZ"."""
    from babel.dates import format_datetime  # heavy; imported only when a message needs it

    return format_datetime(when, format="long", tzinfo=ZoneInfo(time_zone), locale=locale)
