"""The Redis tier-store tests' servers: each such test runs on a single real Redis and on a real Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import server_url
from tierline.queue.redis_link import RedisLink


@pytest.fixture(params=["redis", "cluster"])
def server(request: pytest.FixtureRequest) -> str:
    return server_url(request, request.param)


@pytest.fixture
async def links(server: str) -> AsyncIterator[list[RedisLink]]:
    """Links a test opens (append them); closed when it ends."""
    made: list[RedisLink] = []
    yield made
    for link in made:
        await link.close()
