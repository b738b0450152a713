"""The Grafana dashboard's every PromQL expression, with its variables substituted as Grafana
would, runs on the real Prometheus scraping two real routers: no query error, and the panels
that show what is there right now (waits, callbacks, the tier table, instances) show data."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import ClientSession

from tests.ops.conftest import API_TOKEN, DASHBOARD, OpsStack

# What Grafana puts in for each variable: the "All" values of the dashboard's own variables,
# and its built-ins at a 1 s scrape (rate windows of at least two scrapes).
VARIABLES = {
    "queue": ".*",
    "tier": "vip|mid|standard|blacklisted",
    "job": "tierline",
    "__rate_interval": "4s",
    "__interval": "2s",
    "__range": "1m",
    "__range_s": "60",
}
MUST_SHOW = {
    "Waiting now",
    "Oldest wait vs threshold",
    "Callbacks open / assigned / overdue",
    "Tier table version per instance",
    "Tier table age",
    "Tier reloads",
    "Instances",
    "Calls in the range",
}
# Panels whose first query (the figure itself, not a limit line drawn beside it) must show data:
# each instance's own requests, errors, latency and Redis breaker.
MUST_SHOW_FIRST = {
    "Requests by status class",
    "Call-path 5xx share",
    "Call-path latency",
    "Latency p99 per route",
    "Redis breaker and store errors",
}


def substitute(expr: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"the test does not know the dashboard variable ${name}"
        return variables[name]

    done = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)
    assert "$" not in done, done
    return done


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [panel for panel in found if panel.get("targets")]


def test_the_dashboard_declares_what_its_queries_use() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    declared = {variable["name"] for variable in dashboard["templating"]["list"]}
    used = {
        name
        for panel in panels(dashboard)
        for target in panel["targets"]
        for name in re.findall(r"\$\{?(\w+)", target["expr"])
        if not name.startswith("__")
    }
    assert used <= declared, used - declared
    titles = {panel["title"] for panel in panels(dashboard)}
    assert titles >= MUST_SHOW | MUST_SHOW_FIRST
    assert {"Service level (15 min) vs target", "Average speed of answer", "Abandons", "Overflows"} <= titles


async def test_every_panel_query_runs_on_the_real_prometheus(ops_stack: OpsStack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    async with ClientSession() as http:
        # At least a few scrapes of both instances, so windowed functions have two samples.
        await ops_stack.wait_for(http, 'count_over_time(up{job="tierline"}[1m]) >= 3', lambda result: len(result) == 2)
        # Call-path requests on both instances, in two rounds a scrape apart (a rate needs an
        # increase between two scrapes), for the per-instance request panels.
        looked_up = 'tierline_http_requests_total{route="/v1/callers/{caller}"}'
        for round_expr in (looked_up, f"rate({looked_up}[4s]) > 0"):
            for router in ops_stack.routers:
                async with http.get(
                    f"{router.base}/v1/callers/+861000001", headers={"Authorization": f"Bearer {API_TOKEN}"}
                ) as resp:
                    assert resp.status == 200
            await ops_stack.wait_for(http, round_expr, lambda result: len(result) == 2)
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                wanted = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
                assert wanted, variable
                async with http.get(
                    f"{ops_stack.prometheus}/api/v1/label/{wanted.group(2)}/values", params={"match[]": wanted.group(1)}
                ) as resp:
                    answer = await resp.json()
                assert answer["status"] == "success" and answer["data"], variable["name"]

        shown: set[str] = set()
        shown_first: set[str] = set()
        end = time.time()
        for panel in panels(dashboard):
            for target in panel["targets"]:
                expr = substitute(target["expr"], VARIABLES)
                instant = await ops_stack.query(http, expr)
                ranged = await ops_stack.query_range(http, expr, end - 60, end, "2s")
                if instant or ranged:
                    shown.add(panel["title"])
                    if target is panel["targets"][0]:
                        shown_first.add(panel["title"])
            # One queue picked instead of All: still valid PromQL.
            for target in panel["targets"]:
                await ops_stack.query(
                    http, substitute(target["expr"], {**VARIABLES, "queue": "default", "tier": "vip"})
                )
        assert shown >= MUST_SHOW, MUST_SHOW - shown
        assert shown_first >= MUST_SHOW_FIRST, MUST_SHOW_FIRST - shown_first
