"""The entry point a worker process runs: JSON in, JSON out, so nothing but bytes crosses the
process boundary (the service's `POST /admin/simulate` hands jobs to it, router/simulate_api.py)."""

from __future__ import annotations

import contextlib
import os

import msgspec

from tierline.admin.simulation.scenario import Scenario
from tierline.admin.simulation.simulate import simulate

_decode = msgspec.json.Decoder(Scenario).decode
_encode = msgspec.json.Encoder().encode


def run_job(payload: bytes) -> bytes:
    """Decode a scenario, simulate it, encode the outcome (module level: picklable by name)."""
    return _encode(simulate(_decode(payload)))


WORKER_NICENESS = 10  # below the serving process: on shared cores, routing is scheduled first


def lower_priority() -> None:
    """The pool's initializer: the worker yields the CPU to the service whenever both want it."""
    with contextlib.suppress(OSError):  # a platform without nice: the worker still runs
        os.nice(WORKER_NICENESS)


def warm_up() -> bool:
    """A no-op the pool runs once so the first real job does not pay for the imports."""
    return True
