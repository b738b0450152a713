"""`rediss://` verified against the deployment's CA, a Redis ACL user in the URL, and
`rediss+sentinel://` (TLS to Sentinels that speak nothing else, and to the primary they name),
each routing a call end to end."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tests.support.redis_servers import RedisServer, TlsRedis, free_port, redis_server_path
from tierline.queue.clock import ManualClock
from tierline.queue.redis_urls import redacted
from tierline.router.app import build_app, open_services
from tierline.router.config import ConfigError, load_settings


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TlsRedis]:
    server = TlsRedis().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def tls_sentinel(tls_redis: TlsRedis) -> Iterator[int]:
    """A Sentinel that listens with TLS only (no plain port) and watches the TLS Redis over TLS
    (`tls-replication`), so the primary it names is the TLS port: its port."""
    assert tls_redis.server is not None and tls_redis.ca is not None
    folder = tls_redis.server.folder
    sentinel = RedisServer(port=free_port(), folder=folder / "sentinel")
    sentinel.folder.mkdir()
    config = sentinel.folder / "sentinel.conf"
    config.write_text(
        f"port 0\ntls-port {sentinel.port}\nbind 127.0.0.1\n"
        f"tls-cert-file {folder / 'redis.crt'}\ntls-key-file {folder / 'redis.key'}\n"
        f"tls-ca-cert-file {tls_redis.ca}\ntls-auth-clients no\ntls-replication yes\n"
        f"dir {sentinel.folder}\nlogfile {sentinel.folder / 'redis.log'}\n"
        f"sentinel monitor tls-svc 127.0.0.1 {tls_redis.tls_port} 1\n"
    )
    sentinel.process = subprocess.Popen(
        [redis_server_path(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ask = ["redis-cli", "--tls", "--cacert", str(tls_redis.ca), "-p", str(sentinel.port)]
    deadline = time.monotonic() + 15
    try:
        while True:  # up, and it has reached the primary over TLS (it reports its role)
            state = subprocess.run([*ask, "sentinel", "master", "tls-svc"], capture_output=True, text=True).stdout
            fields = dict(zip(state.split()[::2], state.split()[1::2], strict=False))
            if fields.get("flags") == "master" and fields.get("role-reported") == "master":
                break
            if sentinel.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"TLS Sentinel not ready: {state!r} {(sentinel.folder / 'redis.log').read_text()}")
            time.sleep(0.05)
        yield sentinel.port
    finally:
        sentinel.stop()


@asynccontextmanager
async def tierline(store: str) -> AsyncIterator[tuple[str, ClientSession]]:
    # A TLS handshake on this busy 2-core machine can take longer than the 0.2 s default a command
    # gets (seen: every TLS test 503 at a load average of 11): these tests are about TLS, not timing.
    overrides: dict[str, object] = {"redis_namespace": new_namespace(), "redis_timeout_s": 2.0}
    settings = load_settings(None, env={"TIERLINE_STORE": store}, overrides=overrides)
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


async def test_rediss_sentinel_routes_a_call_over_tls_to_sentinel_and_primary(
    tls_redis: TlsRedis, tls_sentinel: int
) -> None:
    # The ACL user too: its password goes to the primary, none to the Sentinel (it asks for none).
    store = (
        f"rediss+sentinel://{tls_redis.user}:{tls_redis.password}@127.0.0.1:{tls_sentinel}/tls-svc/0"
        f"?ssl_ca_certs={tls_redis.ca}"
    )
    async with tierline(store) as (base, http):
        await route_one_call(base, http)


@pytest.mark.parametrize(
    "store", ["redis+sentinel://127.0.0.1:{port}/tls-svc/0", "rediss+sentinel://127.0.0.1:{port}/tls-svc/0"]
)
async def test_a_tls_sentinel_without_tls_or_without_the_ca_is_unavailable(tls_sentinel: int, store: str) -> None:
    # Plain text to a TLS-only Sentinel, or TLS not verified by the system's CAs: 503, never unverified.
    async with (
        tierline(store.format(port=tls_sentinel)) as (base, http),
        http.get(f"{base}/readyz") as resp,
    ):
        assert resp.status == 503


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
        ("redis+sentinel://127.0.0.1:26379/svc/0?ssl_ca_certs=/etc/hosts", "TLS needs rediss://"),
        ("rediss+sentinel://127.0.0.1:26379/svc/0?ssl_ca_certs=/nonexistent/ca.pem", "no such file"),
        ("rediss+sentinel://127.0.0.1:26379/svc/0?ssl_verify=no", "take no 'ssl_verify'"),
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
        (
            "rediss+sentinel://u:p@a:1/svc/0?ssl_ca_certs=/ca.pem&sentinel_password=x",
            "rediss+sentinel://u:***@a:1/svc/0?ssl_ca_certs=/ca.pem&sentinel_password=***",
        ),
    ],
)
def test_logs_show_a_store_url_without_its_passwords(store: str, shown: str) -> None:
    assert redacted(store) == shown
