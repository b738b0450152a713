"""`GET /metrics` over real HTTP: Prometheus text parsed back, values after a scripted day."""

from __future__ import annotations

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.http.conftest import Api, ApiFactory
from tierline.admin.metrics import ProcessFigures, render
from tierline.queue.clock import ManualClock
from tierline.queue.redis_link import LinkFigures
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings

ADMIN = {"Authorization": "Bearer boss-secret"}
CONFIG = "[tiers.vip]\nsla_threshold_s = 12\n[queues.sales]\n"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def at(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def scrape(api: Api) -> tuple[Samples, dict[str, str]]:
    async with api.session.get(api.base + "/metrics", headers=ADMIN) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await resp.text())


async def scripted_day(api: Api) -> None:
    """vip answered at 8 s and 14 s (threshold 12), standard abandons at 3 s (short) and 25 s,
    a mid overflow at 60 s (a callback), a sales call answered at 45 s, two still waiting."""
    for caller, tier in (
        ("+861000001", "vip"),
        ("+861000002", "vip"),
        ("+861000003", "mid"),
        ("+861000004", "blacklisted"),
    ):
        status, _ = await api.call("PUT", f"/admin/tiers/{caller}", {"tier": tier}, headers=ADMIN)
        assert status == 200
    calls = [
        ("v1", "+861000001", "default"),
        ("v2", "+861000002", "default"),
        ("m1", "+861000003", "default"),
        ("b1", "+861000004", "default"),
        ("s1", "+862000001", "default"),
        ("s2", "+862000002", "default"),
        ("s3", "+862000003", "sales"),
        ("s4", "+862000004", "sales"),
    ]
    for call_id, caller, queue in calls:
        status, _ = await api.post("/v1/calls", {"call_id": call_id, "caller": caller, "queue": queue})
        assert status == 201
    steps = [
        (3, "/v1/calls/s1/abandon", {}),
        (5, "/v1/calls/v1/answer", {"agent_id": "a1"}),
        (6, "/v1/calls/v2/answer", {"agent_id": "a2"}),
        (11, "/v1/calls/s2/abandon", {}),
        (20, "/v1/calls/s3/answer", {"agent_id": "a3"}),
    ]
    for advance, path, body in steps:
        api.clock.advance(advance)
        status, answer = await api.post(path, body)
        assert status == 200, answer
    api.clock.advance(20)  # t = 65 s: m1 overflowed at 60 s


async def test_metrics_after_a_scripted_day(make_api: ApiFactory) -> None:
    api: Api = await make_api(CONFIG, env={"TIERLINE_ADMIN_TOKEN": "boss-secret"})
    status, _ = await api.get("/metrics")
    assert status == 401
    await scripted_day(api)
    samples, types = await scrape(api)

    # Only the store's figures: no process or platform metrics of this one instance.
    assert all(name.startswith("tierline_") for name, _ in samples)
    assert types["tierline_calls_offered"] == "counter"
    assert types["tierline_answered_wait_seconds"] == "histogram"
    assert types["tierline_calls_waiting"] == "gauge"

    def count(what: str, queue: str, tier: str) -> float:
        return at(samples, f"tierline_calls_{what}_total", queue=queue, tier=tier)

    expected = {
        ("default", "vip"): {"arrived": 2, "offered": 2, "answered": 2, "answered_within_threshold": 1},
        ("default", "mid"): {"arrived": 1, "offered": 1, "overflowed": 1},
        ("default", "standard"): {"arrived": 2, "offered": 2, "abandoned": 2, "short_abandoned": 1},
        ("default", "blacklisted"): {"arrived": 1},
        ("sales", "standard"): {"arrived": 2, "offered": 1, "answered": 1},
        ("sales", "vip"): {},
    }
    for (queue, tier), figures in expected.items():
        for what in (
            "arrived",
            "offered",
            "answered",
            "answered_within_threshold",
            "abandoned",
            "short_abandoned",
            "overflowed",
        ):
            assert count(what, queue, tier) == figures.get(what, 0), (queue, tier, what)

    assert at(samples, "tierline_calls_waiting", queue="sales", tier="standard") == 1
    assert at(samples, "tierline_calls_waiting", queue="default", tier="blacklisted") == 1
    assert at(samples, "tierline_calls_waiting", queue="default", tier="standard") == 0
    assert at(samples, "tierline_oldest_wait_seconds", queue="sales", tier="standard") == 65
    assert at(samples, "tierline_oldest_wait_seconds", queue="default", tier="vip") == 0
    assert at(samples, "tierline_sla_threshold_seconds", queue="default", tier="vip") == 12
    assert at(samples, "tierline_sla_target_ratio", queue="default", tier="vip") == 0.9
    assert ("tierline_sla_target_ratio", frozenset({("queue", "default"), ("tier", "blacklisted")})) not in samples

    # The histogram: cumulative buckets, the configured vip threshold (12 s) is an edge.
    def bucket(le: str, queue: str, tier: str) -> float:
        return at(samples, "tierline_answered_wait_seconds_bucket", le=le, queue=queue, tier=tier)

    vip = {le: bucket(le, "default", "vip") for le in ("5", "10", "12", "15", "20", "30", "60", "120", "300", "+Inf")}
    assert vip == {"5": 0, "10": 1, "12": 1, "15": 2, "20": 2, "30": 2, "60": 2, "120": 2, "300": 2, "+Inf": 2}
    assert bucket("12", "default", "vip") == count("answered_within_threshold", "default", "vip")
    assert at(samples, "tierline_answered_wait_seconds_count", queue="default", tier="vip") == 2
    assert at(samples, "tierline_answered_wait_seconds_sum", queue="default", tier="vip") == 22
    assert bucket("30", "sales", "standard") == 0 and bucket("60", "sales", "standard") == 1
    assert at(samples, "tierline_answered_wait_seconds_sum", queue="sales", tier="standard") == 45

    assert at(samples, "tierline_callbacks_open") == 1
    assert at(samples, "tierline_callbacks_assigned") == 0
    assert at(samples, "tierline_callbacks_overdue") == 0

    # The counters agree with the supervisors' report for today.
    _, report = await api.get("/admin/sla?window=today", headers=ADMIN)
    for row in report["rows"]:
        for what in ("offered", "answered", "abandoned", "short_abandoned", "overflowed", "arrived"):
            assert count(what, row["queue"], row["tier"]) == row[what], (row["queue"], row["tier"], what)
        assert at(samples, "tierline_calls_waiting", queue=row["queue"], tier=row["tier"]) == row["waiting_now"]

    # A day later: the counters stay (lifetime), the callback is overdue, then taken by an agent.
    api.clock.advance(24 * 3600 + 1)
    status, _ = await api.post("/v1/calls/b1/abandon")
    assert status == 200
    status, work = await api.post("/v1/agents/cb-agent/next", {"queues": ["default"]})
    assert status == 200 and work["kind"] == "callback"
    later, _ = await scrape(api)
    assert at(later, "tierline_calls_answered_total", queue="default", tier="vip") == 2
    assert at(later, "tierline_calls_abandoned_total", queue="default", tier="blacklisted") == 1
    assert at(later, "tierline_calls_offered_total", queue="default", tier="blacklisted") == 1
    assert at(later, "tierline_calls_waiting", queue="default", tier="blacklisted") == 0
    assert at(later, "tierline_callbacks_open") == 0
    assert at(later, "tierline_callbacks_assigned") == 1
    assert at(later, "tierline_callbacks_overdue") == 1


async def test_two_instances_on_one_store_scrape_the_same_figures() -> None:
    """Nothing is counted in the serving process: two apps over one store answer alike."""
    settings = load_settings(None, env={})
    clock = ManualClock()
    svc = open_services(settings, clock)
    servers = [TestServer(build_app(svc, sweeper=False), host="127.0.0.1") for _ in range(2)]
    for server in servers:
        await server.start_server()
    try:
        async with ClientSession() as session:
            first = f"http://127.0.0.1:{servers[0].port}"
            async with session.post(first + "/v1/calls", json={"call_id": "x1", "caller": "+4930123456"}) as resp:
                assert resp.status == 201
            clock.advance(7)
            async with session.post(first + "/v1/calls/x1/answer", json={"agent_id": "a1"}) as resp:
                assert resp.status == 200
            texts = []
            for server in servers:
                async with session.get(f"http://127.0.0.1:{server.port}/metrics") as resp:
                    texts.append(await resp.text())
    finally:
        for server in servers:
            await server.close()
    # The requests each process answered are its own (the first took both calls); the rest is alike.
    store_wide = ["\n".join(line for line in text.splitlines() if "tierline_http_" not in line) for text in texts]
    assert store_wide[0] == store_wide[1]
    assert 'tierline_http_requests_total{method="POST",route="/v1/calls",status_class="2xx"} 1.0' in texts[0]
    assert 'route="/v1/calls"' not in texts[1]
    samples, _ = parse(texts[1])
    assert at(samples, "tierline_calls_answered_total", queue="default", tier="standard") == 1
    assert at(samples, "tierline_answered_wait_seconds_bucket", le="10", queue="default", tier="standard") == 1
    assert at(samples, "tierline_answered_wait_seconds_bucket", le="5", queue="default", tier="standard") == 0


def test_the_archivers_redis_link_has_series_of_its_own() -> None:
    """The archiver's link (`history`) beside the call path's (`calls`): an open breaker or
    failures on one never show on the other's series; two links of one purpose add up."""
    links = [
        LinkFigures("calls", breaker_open=False, failures=1, trips=0, refused=0),
        LinkFigures("calls", breaker_open=False, failures=2, trips=0, refused=0),
        LinkFigures("history", breaker_open=True, failures=7, trips=2, refused=4),
    ]
    samples, _ = parse(render(None, ProcessFigures(ready=True, redis=links)).decode())
    assert at(samples, "tierline_redis_breaker_open", link="calls") == 0
    assert at(samples, "tierline_redis_breaker_open", link="history") == 1
    assert at(samples, "tierline_redis_failures_total", link="calls") == 3
    assert at(samples, "tierline_redis_failures_total", link="history") == 7
    assert at(samples, "tierline_redis_breaker_trips_total", link="calls") == 0
    assert at(samples, "tierline_redis_breaker_refused_total", link="history") == 4
