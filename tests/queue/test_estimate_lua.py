"""queue/estimate.lua against queue/estimate.py and queue/wait_accuracy.py, run on a real Redis:
the same inputs give the very same doubles (the engine quotes what the memory store quotes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tierline.queue import estimate as est
from tierline.queue import wait_accuracy as wa
from tierline.queue.redis_script import lua_estimate

# Each call runs the rendered constants and functions, then one expression on ARGV.
_CALLS = {
    "wait": "local w = est_wait(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), "
    "tonumber(ARGV[4]), tonumber(ARGV[5])) return w and string.format('%.17g', w) or false",
    "rate": "return string.format('%.17g', est_arrival_rate(tonumber(ARGV[1]), tonumber(ARGV[2]), "
    "tonumber(ARGV[3]), tonumber(ARGV[4])))",
    "bump": "return string.format('%.17g', est_bump(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])))",
    "aht": "local a, n = est_next_aht(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])) "
    "return { string.format('%.17g', a), string.format('%.17g', n) }",
    "accuracy": "est_accuracy(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])) return redis.call('HGETALL', KEYS[1])",
}

finite = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)


@pytest.fixture(scope="module")
def lua(redis_url: str) -> Iterator[dict[str, redis.commands.core.Script]]:
    client = redis.Redis.from_url(redis_url)
    prelude = lua_estimate()
    yield {name: client.register_script(prelude + body) for name, body in _CALLS.items()}
    client.close()


def _args(*values: float | int) -> list[str]:
    return [repr(float(v)) for v in values]


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(1, 400),
    talking=st.integers(0, 300),
    idle=st.integers(0, 10),
    aht=st.one_of(st.none(), finite),
    push=st.floats(0.0, 5.0),
)
def test_the_same_quote(
    lua: dict[str, redis.commands.core.Script], position: int, talking: int, idle: int, aht: float | None, push: float
) -> None:
    args = [str(position), str(talking), str(idle), "" if aht is None else repr(aht), repr(push)]
    got = lua["wait"](args=args)
    expected = est.estimated_wait(position, talking, idle, aht, push)
    assert (None if got is None else float(got)) == expected


@settings(max_examples=200, deadline=None)
@given(count=finite, since=finite, span=finite)
def test_the_same_arrival_rate_and_count(
    lua: dict[str, redis.commands.core.Script], count: float, since: float, span: float
) -> None:
    at, now = 1_800_000_000.0, 1_800_000_000.0 + since
    assert float(lua["rate"](args=_args(count, at, now, span))) == est.arrival_rate(count, at, now, span)
    assert float(lua["bump"](args=_args(count, at, now))) == est.bump(count, at, now)


@pytest.mark.parametrize("back_s", [1.0, 3600.0, 30 * 86400.0])
def test_a_clock_set_back_decays_nothing(lua: dict[str, redis.commands.core.Script], back_s: float) -> None:
    # now before the last arrival (a clock stepped back): the count is as it was, not inflated
    # (a month back overflowed exp); both engines the same.
    at, now = 1_800_000_000.0, 1_800_000_000.0 - back_s
    assert est.bump(5.0, at, now) == 6.0 == float(lua["bump"](args=_args(5.0, at, now)))
    rate = est.arrival_rate(5.0, at, now, 3600.0)
    assert rate == est.arrival_rate(5.0, at, at, 3600.0) == float(lua["rate"](args=_args(5.0, at, now, 3600.0)))


@settings(max_examples=100, deadline=None)
@given(aht=finite, calls=st.integers(0, est.AHT_CALLS), handle=finite)
def test_the_same_handle_time(
    lua: dict[str, redis.commands.core.Script], aht: float, calls: int, handle: float
) -> None:
    mean, n = lua["aht"](args=_args(aht, calls, handle))
    assert (float(mean), int(float(n))) == est.next_aht(aht, calls, handle)


@settings(max_examples=100, deadline=None)
@given(real=finite, quoted=finite)
def test_the_same_accuracy_counters(lua: dict[str, redis.commands.core.Script], real: float, quoted: float) -> None:
    key = f"test:acc:{uuid.uuid4().hex}"
    flat = lua["accuracy"](keys=[key], args=_args(real, quoted))
    got = {flat[i].decode(): float(flat[i + 1]) for i in range(0, len(flat), 2)}
    expected = {k: float(v) for k, v in wa.increments(real, quoted).items() if k != "within" or v}
    assert got.keys() == expected.keys()
    assert got["err"] == pytest.approx(expected["err"], abs=1e-9)  # HINCRBYFLOAT keeps 17 digits
    assert {k: v for k, v in got.items() if k != "err"} == {k: v for k, v in expected.items() if k != "err"}
