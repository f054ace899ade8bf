"""Phone numbers: the one form the booking side accepts and SMS providers take."""

import re

E164_PATTERN = r"^\+[1-9]\d{6,14}$"
_E164 = re.compile(E164_PATTERN)


def is_e164(number: str) -> bool:
    """`+` and 7 to 15 digits, no leading zero: the international form, e.g. +4915112345678."""
    return _E164.match(number) is not None
