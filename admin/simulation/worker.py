"""The entry point a worker process runs: JSON in, JSON out, so nothing but bytes crosses the
process boundary (the service's `POST /admin/simulate` hands jobs to it, router/simulate_api.py)."""

from __future__ import annotations

import msgspec

from tierline.admin.simulation.scenario import Scenario
from tierline.admin.simulation.simulate import simulate

_decode = msgspec.json.Decoder(Scenario).decode
_encode = msgspec.json.Encoder().encode


def run_job(payload: bytes) -> bytes:
    """Decode a scenario, simulate it, encode the outcome (module level: picklable by name)."""
    return _encode(simulate(_decode(payload)))


def warm_up() -> bool:
    """A no-op the pool runs once so the first real job does not pay for the imports."""
    return True
