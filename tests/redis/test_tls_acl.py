"""`rediss://` verified against the deployment's CA, and a Redis ACL user in the URL, each routing a call end to end."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tests.support.redis_servers import TlsRedis
from tierline.queue.clock import ManualClock
from tierline.queue.redis_urls import redacted
from tierline.router.app import build_app, open_services
from tierline.router.config import ConfigError, load_settings


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TlsRedis]:
    server = TlsRedis().start()
    yield server
    server.cleanup()


@asynccontextmanager
async def tierline(store: str) -> AsyncIterator[tuple[str, ClientSession]]:
    settings = load_settings(None, env={"TIERLINE_STORE": store}, overrides={"redis_namespace": new_namespace()})
    server = TestServer(build_app(open_services(settings, ManualClock(1_700_000_000.0)), sweeper=False))
    await server.start_server()
    async with ClientSession() as http:
        yield f"http://127.0.0.1:{server.port}", http
    await server.close()


async def route_one_call(base: str, http: ClientSession) -> None:
    async with http.get(f"{base}/readyz") as resp:
        assert resp.status == 200, await resp.text()
    async with http.post(f"{base}/v1/calls", json={"call_id": "c1", "caller": "+111222333"}) as resp:
        assert resp.status == 201, await resp.text()
    async with http.post(f"{base}/v1/agents/a1/next", json={}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["call"]["call_id"] == "c1"


async def test_a_call_is_routed_over_tls_verified_with_the_deployments_ca(tls_redis: TlsRedis) -> None:
    store = f"rediss://127.0.0.1:{tls_redis.tls_port}/0?ssl_ca_certs={tls_redis.ca}"
    async with tierline(store) as (base, http):
        await route_one_call(base, http)


async def test_tls_without_the_ca_is_not_trusted(tls_redis: TlsRedis) -> None:
    # The system's CAs did not sign the test certificate: the store is unavailable, not silently unverified.
    async with (
        tierline(f"rediss://127.0.0.1:{tls_redis.tls_port}/0") as (base, http),
        http.get(f"{base}/readyz") as resp,
    ):
        assert resp.status == 503


async def test_a_call_is_routed_as_an_acl_user(tls_redis: TlsRedis) -> None:
    assert tls_redis.server is not None
    store = f"redis://{tls_redis.user}:{tls_redis.password}@127.0.0.1:{tls_redis.server.port}/0"
    async with tierline(store) as (base, http):
        await route_one_call(base, http)


async def test_an_acl_user_over_tls(tls_redis: TlsRedis) -> None:
    store = (
        f"rediss://{tls_redis.user}:{tls_redis.password}@127.0.0.1:{tls_redis.tls_port}/0?ssl_ca_certs={tls_redis.ca}"
    )
    async with tierline(store) as (base, http):
        await route_one_call(base, http)


async def test_a_wrong_password_makes_the_store_unavailable_without_tracebacks(
    tls_redis: TlsRedis, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_redis.server is not None
    store = f"redis://{tls_redis.user}:wrong@127.0.0.1:{tls_redis.server.port}/0"
    with caplog.at_level(logging.DEBUG):
        async with tierline(store) as (base, http):
            for _ in range(5):
                async with http.get(f"{base}/readyz") as resp:
                    assert resp.status == 503
                    assert (await resp.json())["status"] == "unavailable"
            async with http.post(f"{base}/v1/calls", json={"call_id": "c1", "caller": "+111222333"}) as resp:
                assert resp.status == 503
                assert (await resp.json())["error"]["code"] == "store_unavailable"
    assert not [r for r in caplog.records if r.exc_info], "a wrong password is an outage, not a crash"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "AuthenticationError" in errors[0], errors
    assert "wrong" not in " ".join(r.getMessage() for r in caplog.records)  # the password is never logged


@pytest.mark.parametrize(
    ("store", "complaint"),
    [
        ("rediss://127.0.0.1:6380/0?ssl_ca_certs=/nonexistent/ca.pem", "no such file"),
        ("redis://127.0.0.1:6379/0?ssl_ca_certs=/etc/hosts", "TLS needs rediss://"),
        ("rediss://127.0.0.1:6380/0?socket_timeout=30", "take no 'socket_timeout'"),
        ("redis+sentinel://127.0.0.1:26379", "names the service"),
        ("redis+sentinel://127.0.0.1:x/svc/0", "host:port"),
        ("redis+sentinel://127.0.0.1:26379/svc/zero", "is a number"),
    ],
)
def test_a_store_url_that_cannot_work_is_refused_at_start(store: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_settings(None, env={"TIERLINE_STORE": store})


@pytest.mark.parametrize(
    ("store", "shown"),
    [
        ("redis://router:pa%3Ass@h:6379/0", "redis://router:***@h:6379/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        (
            "redis+sentinel://u:p@a:1,b:2/svc/0?sentinel_password=x",
            "redis+sentinel://u:***@a:1,b:2/svc/0?sentinel_password=***",
        ),
    ],
)
def test_logs_show_a_store_url_without_its_passwords(store: str, shown: str) -> None:
    assert redacted(store) == shown
