"""Request ids, JSON log lines and this process's request figures, over real HTTP.

The log tests run `tierline serve` as a real process and read the lines it wrote on stderr;
the figures are read back through `GET /metrics`, parsed as Prometheus text.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import ApiFactory
from tests.http.test_metrics import ADMIN, at, parse
from tests.http.test_serve_cli import CLI, free_port
from tierline.router.app import ENDPOINTS
from tierline.router.plumbing.gate import LATENCY_BOUNDS

ID = "X-Request-Id"


async def test_a_sane_request_id_is_echoed_and_any_other_replaced(make_api: ApiFactory) -> None:
    api = await make_api()
    given = "ivr-7.call:42_A-b"
    answers = [
        ("POST", "/v1/calls", {"call_id": "c1", "caller": "+4930123456"}, 201),
        ("POST", "/v1/calls", {"call_id": "c2"}, 422),  # a body error
        ("GET", "/v1/calls/nobody", None, 404),  # the store's refusal
        ("GET", "/no/such/route", None, 404),  # aiohttp's own, in Tierline's shape
        ("DELETE", "/v1/calls", None, 405),
    ]
    for method, path, body, status in answers:
        async with api.session.request(method, api.base + path, json=body, headers={ID: given}) as resp:
            assert resp.status == status, path
            assert resp.headers[ID] == given, path
    async with api.session.get(api.base + "/admin", headers={ID: given}, allow_redirects=False) as resp:
        assert resp.status == 308
        assert resp.headers[ID] == given
    async with api.session.get(api.base + "/admin/grading/table", headers={ID: given}) as resp:
        assert resp.status == 200  # a streamed answer: its headers went out before the gate saw it
        assert resp.headers[ID] == given

    made = []
    for bad in ("x" * 129, "has space", "semi;colon", "", "ünïcode"):
        async with api.session.get(api.base + "/healthz", headers={ID: bad}) as resp:
            assert resp.status == 200
            made.append(resp.headers[ID])
    async with api.session.get(api.base + "/healthz") as resp:
        made.append(resp.headers[ID])
    assert len(set(made)) == len(made)  # each made id is new
    prefixes = {rid.rsplit("-", 1)[0] for rid in made}
    assert len(prefixes) == 1  # one process, one prefix, then a counter
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", rid) for rid in made)
    assert (await _echo(api, "x" * 128)) == "x" * 128  # the longest sane id is kept


async def test_the_openapi_document_declares_the_request_id_everywhere(make_api: ApiFactory) -> None:
    """Every operation takes X-Request-Id and every answer, error answers included, carries it,
    with the gate's own rule for what a sane id is."""
    api = await make_api()
    _, doc = await api.get("/openapi.json")
    operations = [op for methods in doc["paths"].values() for op in methods.values()]
    assert len(operations) == len(ENDPOINTS)
    for operation in operations:
        (param,) = [p for p in operation["parameters"] if p["in"] == "header"]
        assert (param["name"], param["required"]) == (ID, False), operation["operationId"]
        pattern = re.compile(param["schema"]["pattern"])
        assert pattern.search("ivr-7.call:42_A-b") and not pattern.search("has space")
        assert not pattern.search("x" * 129) and pattern.search("x" * 128)
        for status, answer in operation["responses"].items():
            header = answer["headers"][ID]
            assert header["required"] is True and header["schema"] == param["schema"], (operation, status)
    # What the gate makes matches the declared pattern too.
    async with api.session.get(api.base + "/healthz") as resp:
        assert pattern.search(resp.headers[ID])


async def _echo(api: Any, rid: str) -> str:
    async with api.session.get(api.base + "/healthz", headers={ID: rid}) as resp:
        echoed: str = resp.headers[ID]
        return echoed


async def test_requests_are_counted_per_route_and_status_class_with_their_time(make_api: ApiFactory) -> None:
    api = await make_api(env={"TIERLINE_ADMIN_TOKEN": "boss-secret"})
    for n in range(3):
        assert (await api.post("/v1/calls", {"call_id": f"c{n}", "caller": "+4930123456"}))[0] == 201
    assert (await api.post("/v1/calls", {"call_id": "c0", "caller": "+4930123456"}))[0] == 200  # idempotent
    assert (await api.post("/v1/calls", {"caller": "+4930123456"}))[0] == 422
    assert (await api.get("/v1/calls/nobody"))[0] == 404
    assert (await api.get("/v1/calls/c1"))[0] == 200
    assert (await api.post("/v1/calls/c1/answer", {"agent_id": "a1"}))[0] == 200
    assert (await api.post("/v1/calls/c1/abandon"))[0] == 409  # answered already
    assert (await api.get("/admin/sla"))[0] == 401  # no token
    assert (await api.get("/nowhere"))[0] == 404

    async with api.session.get(api.base + "/metrics", headers=ADMIN) as resp:
        samples, types = parse(await resp.text())
    assert types["tierline_http_requests"] == "counter"
    assert types["tierline_http_request_duration_seconds"] == "histogram"

    def requests(method: str, route: str, status_class: str) -> float:
        return at(samples, "tierline_http_requests_total", method=method, route=route, status_class=status_class)

    assert requests("POST", "/v1/calls", "2xx") == 4
    assert requests("POST", "/v1/calls", "4xx") == 1
    assert requests("GET", "/v1/calls/{call_id}", "2xx") == 1
    assert requests("GET", "/v1/calls/{call_id}", "4xx") == 1
    assert requests("POST", "/v1/calls/{call_id}/answer", "2xx") == 1
    assert requests("POST", "/v1/calls/{call_id}/abandon", "4xx") == 1
    assert requests("GET", "/admin/sla", "4xx") == 1
    assert requests("*", "(no route)", "4xx") == 1
    assert (
        "tierline_http_requests_total",
        frozenset({("method", "POST"), ("route", "/v1/calls"), ("status_class", "5xx")}),
    ) not in samples
    # Each route's histogram: cumulative buckets, the last (+Inf) the route's count of every class.
    routes = {
        dict(labels)["route"] for name, labels in samples if name == "tierline_http_request_duration_seconds_count"
    }
    assert {"/v1/calls", "/v1/calls/{call_id}", "/v1/calls/{call_id}/answer", "/admin/sla", "(no route)"} <= routes
    for name, labels in list(samples):
        if name != "tierline_http_request_duration_seconds_count":
            continue
        label = dict(labels)
        edges = [*(f"{b:g}" if b != int(b) else str(int(b)) for b in LATENCY_BOUNDS), "+Inf"]
        cumulative = [at(samples, "tierline_http_request_duration_seconds_bucket", le=edge, **label) for edge in edges]
        assert cumulative == sorted(cumulative)
        answered = sum(
            v
            for (n, ls), v in samples.items()
            if n == "tierline_http_requests_total"
            and dict(ls)["route"] == label["route"]
            and dict(ls)["method"] == label["method"]
        )
        assert cumulative[-1] == samples[(name, labels)] == answered
        assert 0 < at(samples, "tierline_http_request_duration_seconds_sum", **label) < 5
    # The store's refusals, by their code (the 422 body error and the 401 are not the store's).
    assert at(samples, "tierline_store_errors_total", code="call_not_found") == 1
    assert at(samples, "tierline_store_errors_total", code="invalid_state") == 1
    assert not [name for name, _ in samples if name.startswith("tierline_redis_")]  # the memory store: no link


# --- logs of a real `tierline serve` ----------------------------------------------------------------


def _http(method: str, url: str, body: Any = None, rid: str | None = None) -> tuple[int, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({ID: rid} if rid else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


class Served:
    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.base, self.proc, self.log = base, proc, log

    def stop(self) -> list[dict[str, Any]]:
        """Stop the server; every line it wrote, each parsed as JSON (a line that is not fails)."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=10) == 0
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        port = free_port()
        log = tmp_path / f"stderr-{port}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen([*CLI, "serve", "--port", str(port), *args], stderr=err, env=env)
        served = Served(f"http://127.0.0.1:{port}", proc, log)
        started.append(served)
        deadline = time.monotonic() + 15
        while True:
            try:
                if _http("GET", served.base + "/healthz")[0] == 200:
                    return served
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {log.read_text()!r}")
            time.sleep(0.05)

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


def test_json_logs_carry_the_request_and_no_traceback_for_client_errors(serve: Any) -> None:
    served = serve("--log-format", "json", "--log-level", "debug")
    status, headers = _http("POST", served.base + "/v1/calls", {"call_id": "c-9", "caller": "+4930123456"}, "r-1")
    assert (status, headers[ID]) == (201, "r-1")
    status, headers = _http("POST", served.base + "/v1/calls/c-9/answer", {"agent_id": "ag-3"}, "r-2")
    assert (status, headers[ID]) == (200, "r-2")
    status, headers = _http("GET", served.base + "/v1/calls/nobody", rid="r-3")
    assert (status, headers[ID]) == (404, "r-3")
    status, headers = _http("POST", served.base + "/v1/agents/ag-7/next", {}, "r-4")
    assert (status, headers[ID]) == (204, "r-4")
    status, made = _http("POST", served.base + "/v1/calls", {"caller": 5})
    assert status == 422
    lines = served.stop()

    for line in lines:
        assert {"time", "level", "logger", "event"} <= line.keys()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
        assert "exception" not in line  # not even for the 4xx answers
    assert any(line["event"].startswith("tierline serving on http://127.0.0.1:") for line in lines)
    access = {line.get("request_id"): line for line in lines if line["logger"] == "tierline.access"}
    assert access["r-1"] | {"time": "", "duration_ms": 0} == {
        "time": "",
        "level": "debug",
        "logger": "tierline.access",
        "event": access["r-1"]["event"],
        "request_id": "r-1",
        "method": "POST",
        "route": "/v1/calls",
        "call_id": "c-9",  # from the body: the path has none
        "status": 201,
        "duration_ms": 0,
    }
    assert access["r-1"]["event"].startswith("POST /v1/calls 201 ")
    assert access["r-2"]["route"] == "/v1/calls/{call_id}/answer"
    assert (access["r-2"]["call_id"], access["r-2"]["status"]) == ("c-9", 200)
    assert access["r-2"]["agent_id"] == "ag-3"  # from the body, beside the path's call_id
    assert (access["r-4"]["agent_id"], access["r-4"]["route"]) == ("ag-7", "/v1/agents/{agent_id}/next")
    assert (access["r-3"]["call_id"], access["r-3"]["status"]) == ("nobody", 404)
    assert access[made[ID]]["status"] == 422  # the id it made is the one it logged
    assert "call_id" not in access[made[ID]]  # a body refused is not read for ids


def test_the_env_var_picks_json_and_access_lines_stay_off_at_info(serve: Any, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TIERLINE_LOG_FORMAT": "json"}
    env.pop("TIERLINE_LOG_LEVEL", None)
    served = serve(env=env)
    assert _http("POST", served.base + "/v1/calls", {"call_id": "c1", "caller": "+4930123456"})[0] == 201
    lines = served.stop()
    assert lines and all(line["level"] in ("info", "warning", "error") for line in lines)
    assert not [line for line in lines if line["logger"] == "tierline.access"]


def test_redis_down_shows_in_the_breaker_and_store_error_series(serve: Any) -> None:
    """A store URL nobody listens on: this process's link fails, its breaker opens, and the
    refusals are counted by code, all in /metrics while the store's own figures are absent."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    served = serve("--store", dead, "--log-format", "json")
    statuses = [
        _http("POST", served.base + "/v1/calls", {"call_id": f"c{n}", "caller": "+4930123456"})[0] for n in range(5)
    ]
    assert statuses == [503] * 5
    with urllib.request.urlopen(served.base + "/metrics", timeout=5) as resp:
        samples, _ = parse(resp.read().decode())
    lines = served.stop()
    assert at(samples, "tierline_ready") == 0
    assert at(samples, "tierline_redis_breaker_open", link="calls") == 1
    failures = at(samples, "tierline_redis_failures_total", link="calls")
    refused = at(samples, "tierline_redis_breaker_refused_total", link="calls")
    assert failures >= 3  # the breaker opens on the third failure in a row
    assert at(samples, "tierline_redis_breaker_trips_total", link="calls") >= 1
    assert refused >= 1
    assert at(samples, "tierline_store_errors_total", code="store_unavailable") >= 5
    assert at(samples, "tierline_http_requests_total", method="POST", route="/v1/calls", status_class="5xx") == 5
    assert any(line["logger"] == "tierline.redis" and line["level"] == "error" for line in lines)
