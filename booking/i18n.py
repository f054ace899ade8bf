"""Messages in the recipient's language, rebuilt from the locale the snapshot carries.

Translation functions cannot travel in a JSON payload; the locale does, and this catalogue
turns it back into text. Unknown locales fall back to the base language, then to English.
"""

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "booking_created": "New booking",
        "booking_rescheduled": "Booking rescheduled",
        "booking_requested": "New booking request",
    },
    "de": {
        "booking_created": "Neue Buchung",
        "booking_rescheduled": "Buchung verschoben",
        "booking_requested": "Neue Buchungsanfrage",
    },
    "fr": {
        "booking_created": "Nouvelle réservation",
        "booking_rescheduled": "Réservation reportée",
        "booking_requested": "Nouvelle demande de réservation",
    },
    "es": {
        "booking_created": "Nueva reserva",
        "booking_rescheduled": "Reserva reprogramada",
        "booking_requested": "Nueva solicitud de reserva",
    },
    "pt": {
        "booking_created": "Nova reserva",
        "booking_rescheduled": "Reserva reagendada",
        "booking_requested": "Novo pedido de reserva",
    },
}


def translate(locale: str, key: str) -> str:
    """`key` in `locale` (e.g. "de", "pt-BR"), falling back to the base language and English."""
    for candidate in (locale, locale.replace("_", "-").split("-")[0], "en"):
        messages = CATALOGUE.get(candidate)
        if messages and key in messages:
            return messages[key]
    raise KeyError(f"no message {key!r}")
