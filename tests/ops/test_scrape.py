"""A real Prometheus scrapes two real `tierline serve` processes on one real Redis with the admin
token: through its HTTP API, every per-tier series carries the figures the engine reports, the
store-wide ones alike from both instances, and the rules evaluate against them."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from aiohttp import ClientSession

from tests.ops.conftest import ADMIN_TOKEN, API_TOKEN, OpsStack, rules

API = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COUNTS = ("arrived", "offered", "answered", "abandoned", "short_abandoned", "overflowed")


def by_instance(result: list[dict[str, Any]]) -> dict[str, float]:
    return {series["metric"]["instance"]: float(series["value"][1]) for series in result}


async def post(http: ClientSession, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_prometheus_reads_the_engines_figures_from_both_instances(ops_stack: OpsStack) -> None:
    first, second = ops_stack.routers
    instances = {first.target, second.target}
    async with ClientSession() as http:
        # Calls through both processes: the two vips and the mid are known from the tier file.
        for router, call_id, caller in (
            (first, "v1", "+861000001"),
            (second, "v2", "+861000002"),
            (second, "m1", "+861000003"),
            (first, "s1", "+862000001"),
            (second, "s2", "+862000002"),
        ):
            status, call = await post(http, f"{router.base}/v1/calls", {"call_id": call_id, "caller": caller}, API)
            assert status == 201, call
        status, _ = await post(http, f"{second.base}/v1/calls/v1/answer", {"agent_id": "a1"}, API)
        assert status == 200
        status, _ = await post(http, f"{first.base}/v1/calls/s1/abandon", {}, API)
        assert status == 200
        # A CRM file with nothing valid in it: refused, the table stays.
        async with http.post(
            f"{second.base}/admin/tiers/reload",
            data="caller,tier\n+861000009,platinum\n",
            headers={**ADMIN, "Content-Type": "text/csv"},
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["swapped"] is False
        async with http.get(f"{first.base}/admin/sla?window=today", headers=ADMIN) as resp:
            report = await resp.json()

        # Wait for a scrape of both instances after the last move.
        await ops_stack.wait_for(
            http,
            'tierline_tier_reloads_total{outcome="refused"} == 1',
            lambda result: {s["metric"]["instance"] for s in result} == instances,
        )

        rows = report["rows"]
        assert {(r["queue"], r["tier"]) for r in rows} >= {("default", t) for t in ("vip", "mid", "standard")}
        for row in rows:
            where = f'queue="{row["queue"]}",tier="{row["tier"]}"'
            for what in COUNTS:
                found = by_instance(await ops_stack.query(http, f"tierline_calls_{what}_total{{{where}}}"))
                assert found == dict.fromkeys(instances, row[what]), (where, what, found)
            waiting = by_instance(await ops_stack.query(http, f"tierline_calls_waiting{{{where}}}"))
            assert waiting == dict.fromkeys(instances, row["waiting_now"]), (where, waiting)
            if row["target"] is not None:
                target = by_instance(await ops_stack.query(http, f"tierline_sla_target_ratio{{{where}}}"))
                assert target == dict.fromkeys(instances, row["target"])
        vip = 'queue="default",tier="vip"'
        assert by_instance(await ops_stack.query(http, f"tierline_calls_arrived_total{{{vip}}}")) == dict.fromkeys(
            instances, 2
        )
        assert by_instance(await ops_stack.query(http, f"tierline_sla_threshold_seconds{{{vip}}}")) == dict.fromkeys(
            instances, 12
        )
        answered = await ops_stack.query(http, f'tierline_answered_wait_seconds_bucket{{{vip},le="+Inf"}}')
        assert by_instance(answered) == dict.fromkeys(instances, 1)

        # The tier table: one swap, one refusal, the same for both; each is on version 1.
        for expr, value in (
            ("tierline_tier_table_version", 1),
            ('tierline_tier_reloads_total{outcome="swapped"}', 1),
            ('tierline_tier_reloads_total{outcome="refused"}', 1),
            ('tierline_tier_reloads_total{outcome="invalid"}', 0),
            ("tierline_ready", 1),
            ("up", 1),
        ):
            assert by_instance(await ops_stack.query(http, expr)) == dict.fromkeys(instances, value), expr
        loaded = by_instance(await ops_stack.query(http, "tierline_tier_table_loaded_timestamp_seconds"))
        low, high = ops_stack.tiers_loaded
        assert len(set(loaded.values())) == 1 and low - 1 <= next(iter(loaded.values())) <= high + 1
        build = await ops_stack.query(http, "tierline_build_info")
        assert {s["metric"]["version"] for s in build} == {metadata.version("tierline")}

        # The rules run on these series: all healthy, and the refused reload is an alert now.
        async with http.get(f"{ops_stack.prometheus}/api/v1/rules") as resp:
            groups = (await resp.json())["data"]["groups"]
        evaluated = [rule for group in groups for rule in group["rules"]]
        assert len(evaluated) == len(rules())
        await ops_stack.wait_for(
            http,
            'ALERTS{alertname="TierlineTierReloadRefused",alertstate="firing"}',
            lambda result: len(result) == 1,
        )
        async with http.get(f"{ops_stack.prometheus}/api/v1/rules") as resp:
            groups = (await resp.json())["data"]["groups"]
        unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
        assert unhealthy == []
        quiet = (
            'ALERTS{alertname=~"TierlineStoreUnavailable|TierlineTierVersionsDisagree|TierlineInstanceDown'
            '|TierlineCallPathErrors"}'
        )
        assert await ops_stack.query(http, quiet) == []

        # Each process's own request counts: the calls each one routed, apart.
        routed = by_instance(
            await ops_stack.query(http, 'tierline_http_requests_total{route="/v1/calls",status_class="2xx"}')
        )
        assert routed == {first.target: 2, second.target: 3}
        # The site's k from the routers' [alerts] config, as the waiting rule reads it.
        factor = by_instance(await ops_stack.query(http, 'tierline_alert_setting{setting="wait_factor"}'))
        assert factor == dict.fromkeys(instances, 3)
        rule_k = await ops_stack.query(http, 'scalar(max(tierline_alert_setting{setting="wait_factor"}) or vector(2))')
        assert float(rule_k[1]) == 3
