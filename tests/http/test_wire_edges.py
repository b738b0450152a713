"""What a client can do on the wire, answered in Tierline's codes: bad header bytes, a corrupt
compressed body, a body that never arrives, a client that leaves mid-body (issue 13, items 9-10).

Raw sockets against a real server on a loopback port, because an HTTP client library would
refuse to send most of these.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.http.conftest import Api, ApiFactory
from tests.http.test_serve_cli import CLI, free_port, http


def wait_until_up(base: str, proc: subprocess.Popen[Any]) -> None:
    for _ in range(300):
        try:
            if http("GET", base + "/healthz")[0] == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None, "tierline serve exited"
        time.sleep(0.05)
    raise AssertionError("tierline serve did not start")


TOKENS = {"TIERLINE_API_TOKEN": "ivr-secret-1", "TIERLINE_ADMIN_TOKEN": "boss-secret-2"}


async def exchange(api: Api, head: bytes, body: bytes = b"", close_after_send: bool = False) -> tuple[int, Any]:
    """Send raw bytes; the status and decoded JSON body of the answer (0, None when none came)."""
    host, port = api.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + b"\r\n" + body)
        await writer.drain()
        if close_after_send:
            # Leave once the server is reading the body: data and end of stream arriving together
            # are dropped by aiohttp before any handler runs, which is not the case under test.
            await asyncio.sleep(0.3)
            return 0, None
        raw = await asyncio.wait_for(reader.read(1 << 16), 10)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), msgspec.json.decode(payload) if payload else None


def request_head(method: str, path: str, *headers: bytes) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n".encode() + b"".join(h + b"\r\n" for h in headers)


@pytest.mark.parametrize("path", ["/v1/calls/x1", "/admin/sla", "/metrics"])
async def test_a_token_of_undecodable_bytes_is_401_not_500(make_api: ApiFactory, path: str) -> None:
    api: Api = await make_api(env=TOKENS)
    status, body = await exchange(api, request_head("GET", path, b"Authorization: Bearer \xff\xfe"))
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_a_corrupt_gzip_body_is_400_invalid_body_and_changes_nothing(api: Api) -> None:
    corrupt = b"\x1f\x8b\x08\x00" + b"not deflate data at all" * 4
    head = request_head(
        "POST",
        "/v1/calls",
        b"Content-Type: application/json",
        b"Content-Encoding: gzip",
        f"Content-Length: {len(corrupt)}".encode(),
    )
    status, body = await exchange(api, head, corrupt)
    assert status == 400 and body["error"]["code"] == "invalid_body"
    _, sla = await api.get("/admin/sla?window=60m")
    assert sum(row["offered"] + row["waiting_now"] for row in sla["rows"]) == 0


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [("POST", "/v1/calls", b"application/json"), ("POST", "/admin/tiers/reload", b"text/csv")],
)
async def test_a_body_that_never_arrives_is_408_after_the_body_read_deadline(
    make_api: ApiFactory, method: str, path: str, content_type: bytes
) -> None:
    api: Api = await make_api("[server]\nbody_read_timeout_s = 0.2\n")
    head = request_head(method, path, b"Content-Type: " + content_type, b"Content-Length: 100")
    status, body = await exchange(api, head, b"caller")
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert "0.2 s" in body["error"]["message"]


def test_a_client_leaving_mid_body_is_one_info_line_not_a_traceback(tmp_path: Path) -> None:
    # A real `tierline serve`: aiohttp's test server cancels the handler instead, unlike production.
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], stderr=log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                request_head("POST", "/v1/calls", b"Content-Type: application/json", b"Content-Length: 100")
                + b'\r\n{"call'
            )
            time.sleep(0.3)  # leave once the server is reading the body (see `exchange`)
        http("GET", f"http://127.0.0.1:{port}/healthz")  # the server still answers
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    log.seek(0)
    written = log.read()
    assert written.count("closed the connection before its body arrived") == 1, written
    line = next(x for x in written.splitlines() if "closed the connection" in x)
    assert " INFO tierline.router: POST /v1/calls:" in line
    assert "Traceback" not in written and "ERROR" not in written, written
