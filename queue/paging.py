"""Pages of the supervisors' callback lists: the page bound and the cursor, the same for every store.

A list is ordered by (deadline, callback_id) — on Redis that is a sorted set's own order
(score, then member bytes) — so a page starts right after the last (deadline, callback_id)
of the page before, whatever was added or closed in between: nothing is listed twice, and a
callback that stayed active is never skipped. The cursor is that pair and the list it
belongs to, as opaque base64url text; clients pass back `next_cursor` unread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

import msgspec

from tierline.queue.callbacks import Callback
from tierline.queue.errors import Invalid
from tierline.queue.store import CallbackFilter, CallbackPage

# One page is read inside one Redis script; 100 callbacks keep it within a few milliseconds
# (loadtest/stress_dashboard_poll.py measures it), so no supervisor read holds up routing.
MAX_PAGE: Final = 100
# Decoding and rendering a page hands the event loop back this often (`in_turns`).
TURN: Final = 25

PageKey = tuple[float, str]  # deadline, callback_id
T = TypeVar("T")
R = TypeVar("R")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(tuple[str, float, str]).decode


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}", code="invalid_query")
    return limit


def encode_cursor(which: CallbackFilter, key: PageKey) -> str:
    raw = _encode((which, key[0], key[1]))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(which: CallbackFilter, cursor: str) -> PageKey:
    """The (deadline, callback_id) a page starts after; `Invalid` for anything not made by
    `encode_cursor` for this same list."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, deadline, callback_id = _decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise Invalid("cursor is not a next_cursor of this list", code="invalid_cursor") from None
    if kind != which or not math.isfinite(deadline) or not 0 < len(callback_id) <= 128:
        raise Invalid(f"cursor is not a next_cursor of the {which} list", code="invalid_cursor")
    return deadline, callback_id


def page(which: CallbackFilter, found: list[Callback], more: bool) -> CallbackPage:
    """`found` in list order; `more`: at least one callback follows the last of them."""
    if not (more and found):
        return CallbackPage(callbacks=found)
    last = found[-1]
    return CallbackPage(callbacks=found, next_cursor=encode_cursor(which, (last.deadline, last.callback_id)))


async def in_turns(convert: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`convert` over a page's items, handing the event loop back every `TURN` of them: a route
    that arrives while a supervisor's page is decoded or rendered waits for one turn (a fraction
    of a millisecond), not for the whole page."""
    out: list[R] = []
    for i, item in enumerate(items):
        if i and i % TURN == 0:
            await asyncio.sleep(0)
        out.append(convert(item))
    return out
