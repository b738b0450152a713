"""Caller normalisation: the spec's rule, row by row, and idempotence as a property."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierline.tiers.phone import InvalidCaller, normalise_caller

CANONICAL = re.compile(r"\+?[0-9]{3,15}")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+8613912345678", "+8613912345678"),
        ("8613912345678", "8613912345678"),  # no country guessing: differs from the + form
        ("+86 139 1234 5678", "+8613912345678"),
        ("+86-139-1234-5678", "+8613912345678"),
        ("+86.139.1234.5678", "+8613912345678"),
        ("+86 (139) [1234] 5678", "+8613912345678"),
        ("0086 139 1234 5678", "+8613912345678"),
        ("00861391234", "+861391234"),
        ("0000123", "+00123"),  # only the first 00 is the prefix
        ("+0049301234", "+0049301234"),  # after a +, 00 is digits like any other
        ("0301234567", "0301234567"),  # one leading 0 is a trunk prefix, kept
        ("  +49 30 1234567\t", "+49301234567"),
        ("112", "112"),
        ("+123", "+123"),
        ("123456789012345", "123456789012345"),
        ("+123456789012345", "+123456789012345"),
        ("(0)30-1234", "0301234"),
    ],
)
def test_valid_numbers(raw: str, expected: str) -> None:
    assert normalise_caller(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("+", "0 digits"),
        ("12", "2 digits; at least 3"),
        ("+1 2", "2 digits; at least 3"),
        ("0012", "2 digits after the leading 00"),
        ("00", "0 digits"),
        ("1234567890123456", "16 digits; at most 15"),
        ("+1234567890123456", "16 digits; at most 15"),
        ("0012345678901234567", "17 digits; at most 15"),
        ("49+301234", "'+' is only allowed at the start"),
        ("++49301234", "'+' is only allowed at the start"),
        ("+49 30 CALLME", "'C' is not a digit"),
        ("+49/30/1234", "'/' is not a digit"),
        ("+49\t30\t1234", "'\\t' is not a digit"),
        ("٣٣٣٣٣", "is not a digit"),  # Arabic-Indic digits: \d would take them, a switch would not
        ("abc\udc80", "is not a digit"),  # what a bad byte in a CSV file becomes
        ("sip:+49301234@host", "is not a digit"),
    ],
)
def test_invalid_numbers_say_why(raw: str, message: str) -> None:
    with pytest.raises(InvalidCaller, match=re.escape(message)) as caught:
        normalise_caller(raw)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "invalid_caller"


def test_a_long_bad_input_is_shown_shortened() -> None:
    with pytest.raises(InvalidCaller) as caught:
        normalise_caller("x" * 10_000)
    assert len(str(caught.value)) < 300


PHONE_LIKE = st.text(alphabet="0123456789+ -.()[]", max_size=25)


@given(PHONE_LIKE)
def test_normalising_is_idempotent_on_its_outputs(raw: str) -> None:
    try:
        once = normalise_caller(raw)
    except InvalidCaller:
        return
    assert CANONICAL.fullmatch(once)
    assert normalise_caller(once) == once


@given(st.text(max_size=30) | st.text(alphabet=st.characters(categories=["Cs", "Nd", "Zs"]), max_size=20))
def test_any_text_is_a_number_or_an_invalid_caller(raw: str) -> None:
    try:
        number = normalise_caller(raw)
    except InvalidCaller as exc:
        assert str(exc)
    else:
        assert CANONICAL.fullmatch(number)
