"""Every series the alert rules and the dashboard read is one Tierline serves: a misspelt name
in PromQL is no error, just an alert that never fires and a panel that stays empty.

A real memory-store app with the history archive on (a real SQLite file) answers a few calls,
one refused look-up and a tier reload; its `/metrics` must hold every `tierline_*` name used.
The Redis link's series (`tierline_redis_*`) exist only on Redis: tests/ops/test_dashboard.py
shows them through the real Prometheus scraping Redis-backed routers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import DASHBOARD, rules
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings

ADMIN = {"Authorization": "Bearer boss"}


def names_read() -> set[str]:
    exprs = [rule["expr"] for rule in rules()]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        exprs += [target["expr"] for target in panel.get("targets", [])]
    return {name for expr in exprs for name in re.findall(r"\btierline_[a-z0-9_]+", expr)}


async def test_every_series_the_rules_and_the_dashboard_read_is_served(tmp_path: Path) -> None:
    env = {"TIERLINE_ADMIN_TOKEN": "boss", "TIERLINE_HISTORY": f"sqlite://{tmp_path / 'history.db'}"}
    server = TestServer(build_app(open_services(load_settings(None, env=env))), host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with ClientSession() as http:
            async with http.post(f"{base}/v1/calls", json={"call_id": "c1", "caller": "+861000001"}) as resp:
                assert resp.status == 201
            async with http.post(f"{base}/v1/agents/a1/next", json={}) as resp:
                assert resp.status == 200
            async with http.get(f"{base}/v1/calls/nobody") as resp:
                assert resp.status == 404  # a store refusal, counted by code
            async with http.post(
                f"{base}/admin/tiers/reload",
                data="caller,tier\n+861000001,vip\n",
                headers={**ADMIN, "Content-Type": "text/csv"},
            ) as resp:
                assert resp.status == 200
            async with http.get(f"{base}/metrics", headers=ADMIN) as resp:
                assert resp.status == 200
                text = await resp.text()
    finally:
        await server.close()

    served = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    wanted = {name for name in names_read() if not name.startswith("tierline_redis_")}
    assert len(wanted) > 30
    assert wanted - served == set()
    assert {"tierline_history_lag_events", "tierline_http_requests_total", "tierline_alert_setting"} <= wanted
