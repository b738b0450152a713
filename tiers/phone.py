"""Caller numbers: the one canonical spelling every look-up, edit and tier file row is keyed by.

Owns the normalisation rule of the spec and nothing more: formatting characters go, a `00`
international prefix reads as `+`, and what is left must be an optional `+` and 3 to 15 digits
(E.164's maximum). No country or trunk-prefix rewriting: `+8613...` and `8613...` stay
different callers, because guessing a country would silently merge two customers.
"""

from __future__ import annotations

import re
from typing import Final

MIN_DIGITS: Final = 3
MAX_DIGITS: Final = 15  # E.164

# Every IVR request goes through here. An already canonical number (what a switch usually
# sends, and what every stored key is) costs one regex fullmatch; anything else one bytes
# translate (str.translate does a dict look-up per character, about 4x slower) and one more
# fullmatch. Explaining a failure may be slow: it is the rare path.
_SEPARATORS: Final = " -.()[]"
_SEPARATOR_BYTES: Final = _SEPARATORS.encode()
_DROP_SEPARATORS: Final = str.maketrans("", "", _SEPARATORS)
# [0-9], not \d: \d also matches Arabic-Indic and other Unicode digits, which no switch dials.
# Without a '+', a canonical number never starts with 00: that prefix has been read as '+'.
_CANONICAL: Final = re.compile(rf"\+[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}|(?!00)[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}")
_SHOWN_MAX: Final = 40


class InvalidCaller(ValueError):
    """A caller number that is not a phone number; the message is written for a person."""

    code = "invalid_caller"


def normalise_caller(raw: str) -> str:
    """The canonical form of a caller number, or InvalidCaller saying what is wrong with it.

    Idempotent: a normalised number normalises to itself.
    """
    if _CANONICAL.fullmatch(raw) is not None:
        return raw
    # Surrounding whitespace is how CSV cells and copy-paste arrive; it is never part of a number.
    number = raw.strip()
    if number.isascii():
        number = number.encode().translate(None, _SEPARATOR_BYTES).decode()
    else:  # cannot be valid, but may hold lone surrogates that encode() would choke on
        number = number.translate(_DROP_SEPARATORS)
    if number.startswith("00"):
        number = "+" + number[2:]
    if _CANONICAL.fullmatch(number) is None:
        raise InvalidCaller(_explain(raw, number))
    return number


def _explain(raw: str, number: str) -> str:
    shown = raw if len(raw) <= _SHOWN_MAX else raw[:_SHOWN_MAX] + "..."
    if not number:
        return "caller number is empty"
    digits = number.removeprefix("+")
    stray = next((ch for ch in digits if not ("0" <= ch <= "9")), None)
    if stray is not None:
        where = "a '+' is only allowed at the start" if stray == "+" else f"{stray!r} is not a digit"
        return (
            f"caller number {shown!r} is not a phone number: {where}"
            f" (allowed: digits, a leading + or 00, spaces, dashes, dots and brackets)"
        )
    if len(digits) < MIN_DIGITS:
        prefix = " after the leading 00 (read as +)" if raw.strip().startswith("00") else ""
        return f"caller number {shown!r} has {len(digits)} digits{prefix}; at least {MIN_DIGITS} are needed"
    return f"caller number {shown!r} has {len(digits)} digits; at most {MAX_DIGITS} are allowed (E.164)"
