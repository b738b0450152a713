"""A real Tierline app on a real loopback port, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest
from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestServer

from tierline.queue.clock import ManualClock
from tierline.router.app import build_app, open_services
from tierline.router.config import Settings, load_settings
from tierline.router.plumbing.context import Services


class Api:
    """A thin client: JSON in, (status, decoded body) out."""

    def __init__(self, session: ClientSession, base: str, services: Services, clock: ManualClock) -> None:
        self.session, self.base, self.services, self.clock = session, base, services, clock

    async def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        if json is not None:
            kwargs["json"] = json
        async with self.session.request(method, self.base + path, **kwargs) as resp:
            return resp.status, await _body(resp)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", path, {} if json is None and "data" not in kwargs else json, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("GET", path, **kwargs)


async def _body(resp: ClientResponse) -> Any:
    if resp.status == 204:
        return None
    if resp.content_type == "application/json":
        return await resp.json()
    return await resp.text()


class ApiFactory(Protocol):
    """The `make_api` fixture: a Tierline on a real loopback port, configured by `toml` and `env`."""

    async def __call__(self, toml: str = "", env: dict[str, str] | None = None) -> Api: ...


@pytest.fixture
async def make_api() -> AsyncIterator[ApiFactory]:
    servers: list[TestServer] = []
    sessions: list[ClientSession] = []

    async def make(toml: str = "", env: dict[str, str] | None = None) -> Api:
        settings: Settings = load_settings(None, env=env or {})
        if toml:
            import tempfile
            from pathlib import Path

            with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
                f.write(toml)
            settings = load_settings(Path(f.name), env=env or {})
        clock = ManualClock()
        services = open_services(settings, clock)
        server = TestServer(build_app(services, sweeper=False), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = ClientSession()
        sessions.append(session)
        return Api(session, f"http://127.0.0.1:{server.port}", services, clock)

    yield make
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    result: Api = await make_api()
    return result


async def route_and_take(api: Api, caller: str) -> dict[str, object]:
    """Route a call from `caller` and have agent-1 take it: the caller record an agent sees."""
    status, _ = await api.post("/v1/calls", {"call_id": f"call-{caller[1:]}", "caller": caller})
    assert status in (200, 201)
    status, work = await api.post("/v1/agents/agent-1/next")
    assert status == 200 and work["kind"] == "call", work
    taken: dict[str, object] = work["caller"]
    return taken
