"""Tierline under a realistic mix of IVR callers and agents (locust, FastHttpUser).

Headless, failing (exit 1) when the error rate or the 99th percentile passes its limit:

    .venv/bin/locust -f loadtest/locustfile.py --headless -u 60 -r 20 -t 20s \\
        --csv build/locust/run --host http://127.0.0.1:8080 \\
        --max-fail-ratio 0.01 --max-p99-ms 100

`bash loadtest/locust-check` does exactly that against a throwaway `tierline serve`.

At test start a tier file of `--tier-customers` customers (5 % VIP, 20 % mid, 72 % standard,
3 % blacklisted; see tiermix.py) is loaded through POST /admin/tiers/reload (text/csv);
`--unknown-share` of the calls come from numbers not in it. Then:

- `IvrPort` (one IVR line; call volume comes in waves, 10 s busy then 10 s quiet, so that
  the queue fills and drains and agents get to the callbacks): routes a call with a fresh
  call id; the caller then either waits, the IVR polling GET /v1/calls/{id} for the
  position announcement, and hangs up when their patience runs out; or hangs up soon
  (short abandon); or is just handed over.
  Now and then the IVR retries the POST (an idempotent 200) or looks the caller up.
- `Agent`: asks POST /v1/agents/{id}/next; on a call it rings, sometimes is not answered
  (ring-no-answer: requeue to the original place), else answers, talks for a handle time
  and ends the call; on a callback it dials and records an outcome.

Expected answers are not failures: 204 (no work), 409 `invalid_state` when the caller hung
up while an agent was picking the call up (or the IVR hangs up on a call just answered).
Every other status, or a body that breaks the rules (a customer routed with the wrong tier,
a call offered to another agent), is. `--pace` scales every think time (0.2 = five times faster).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiermix import pick_caller, tier_csv, tier_of

log = logging.getLogger("tierline.locust")
CALLER_PREFIX = "+86139"
WAVE_S = 10.0  # busy and quiet spells of the call volume, before --pace
_agent_numbers = itertools.count(1)
_setup_errors: list[str] = []


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("Tierline")
    group.add_argument("--max-fail-ratio", type=float, default=0.01, help="exit 1 above this share of failed requests")
    group.add_argument("--max-p99-ms", type=float, default=200.0, help="exit 1 when the overall p99 is above this")
    group.add_argument("--tier-customers", type=int, default=10_000, help="customers in the tier file loaded at start")
    group.add_argument("--unknown-share", type=float, default=0.10, help="share of calls from numbers not in the file")
    group.add_argument("--pace", type=float, default=1.0, help="multiplies every think/ring/handle time")
    group.add_argument("--skip-reload", action="store_true", help="keep the tier table the service already has")
    group.add_argument("--api-token", default=os.environ.get("TIERLINE_API_TOKEN", ""), help="bearer token for /v1")
    group.add_argument("--admin-token", default=os.environ.get("TIERLINE_ADMIN_TOKEN", ""), help="token for /admin")


def _opts(environment: Environment) -> Any:
    return environment.parsed_options


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@events.test_start.add_listener
def load_tiers(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or _opts(environment).skip_reload:
        return
    opts = _opts(environment)
    if environment.host is None:
        raise ValueError("locust needs --host: the Tierline to load")
    body = tier_csv(opts.tier_customers)
    request = urllib.request.Request(
        f"{environment.host.rstrip('/')}/admin/tiers/reload",
        data=body,
        method="POST",
        headers={"Content-Type": "text/csv", **_bearer(opts.admin_token)},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            result = answer.read().decode()
        if '"swapped":true' not in result.replace(" ", ""):
            raise ValueError(f"not swapped: {result[:300]}")
        log.info("tier file loaded: %d customers: %s", opts.tier_customers, result[:120])
    except Exception as exc:
        _setup_errors.append(f"tier reload failed: {exc}")
        log.error("tier reload failed: %s", exc)
        if environment.runner is not None:
            gevent.spawn_later(0.1, environment.runner.quit)


@events.test_stop.add_listener
def report_estimate_accuracy(environment: Environment, **_: Any) -> None:
    """How right the waits quoted to the IVR were (GET /admin/sla's `estimate_accuracy`, store-wide
    since it began), per queue × tier with answered calls: logged, not a limit."""
    if isinstance(environment.runner, WorkerRunner) or environment.host is None:
        return
    request = urllib.request.Request(
        f"{environment.host.rstrip('/')}/admin/sla", headers=_bearer(_opts(environment).admin_token)
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            rows = json.loads(answer.read())["rows"]
    except Exception as exc:
        log.warning("estimate accuracy not read: %s", exc)
        return
    for row in rows:
        acc = row.get("estimate_accuracy") or {}
        if acc.get("calls"):
            log.info(
                "wait estimate %s/%s: %d calls, mean abs error %.1f s, median real/quoted %.2f, within ±50%% %.0f%%",
                row["queue"],
                row["tier"],
                acc["calls"],
                acc["mean_abs_error_s"],
                acc["median_ratio"],
                100 * acc["within_50pct"],
            )


@events.quitting.add_listener
def check_limits(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    opts = _opts(environment)
    total = environment.stats.total
    p99 = total.get_response_time_percentile(0.99) or 0.0
    problems = list(_setup_errors)
    if total.num_requests == 0:
        problems.append("no requests were made")
    if total.fail_ratio > opts.max_fail_ratio:
        problems.append(f"failure ratio {total.fail_ratio:.4f} > limit {opts.max_fail_ratio}")
    if p99 > opts.max_p99_ms:
        problems.append(f"p99 {p99:.0f} ms > limit {opts.max_p99_ms:g} ms")
    summary = (
        f"{total.num_requests} requests, {total.num_failures} failed ({total.fail_ratio:.2%}),"
        f" p99 {p99:.0f} ms, {total.total_rps:.0f} req/s"
    )
    if problems:
        log.error("LIMITS MISSED: %s (%s)", "; ".join(problems), summary)
        environment.process_exit_code = 1
    else:
        log.info("limits met: %s (fail ratio <= %s, p99 <= %g ms)", summary, opts.max_fail_ratio, opts.max_p99_ms)
        environment.process_exit_code = 0


def _error_code(resp: Any) -> str | None:
    try:
        return str(resp.json()["error"]["code"])
    except Exception:
        return None


class TierlineUser(FastHttpUser):
    abstract = True

    def on_start(self) -> None:
        self.rng = random.Random()
        opts = _opts(self.environment)
        self.pace = float(opts.pace)
        self.headers = {"Content-Type": "application/json", **_bearer(opts.api_token)}

    def pause(self, low: float, high: float) -> None:
        gevent.sleep(self.rng.uniform(low, high) * self.pace)

    def post(self, path: str, body: dict[str, Any], name: str) -> Any:
        return self.client.post(path, json=body, headers=self.headers, name=name, catch_response=True)


class IvrPort(TierlineUser):
    """One IVR line: a call after another."""

    weight = 2

    def wait_time(self) -> float:
        """Between two calls on this line. Traffic comes in waves: busy, then quiet, WAVE_S each."""
        spell = WAVE_S * self.pace
        phase = time.monotonic() / spell
        if int(phase) % 2 == 0 or self.rng.random() < 0.2:  # busy, or one of the few calls of a quiet spell
            return self.rng.uniform(0.05, 0.3) * self.pace
        return (1.0 - phase % 1.0) * spell + self.rng.uniform(0.0, 0.3) * self.pace  # idle till the next rush

    @task
    def one_call(self) -> None:
        opts = _opts(self.environment)
        call_id = f"lc-{uuid.uuid4().hex[:20]}"
        caller = pick_caller(self.rng, opts.tier_customers, opts.unknown_share)
        body = {"call_id": call_id, "caller": caller}
        with self.post("/v1/calls", body, "POST /v1/calls") as resp:
            if resp.status_code != 201:
                resp.failure(f"route: {resp.status_code} {resp.text[:200]}")
                return
            call = resp.json()
            problem = self.check_route(call, caller, opts.tier_customers)
            if problem:
                resp.failure(problem)
                return
        if self.rng.random() < 0.05:  # the IVR timed out and retries: the same call, 200
            with self.post("/v1/calls", body, "POST /v1/calls (retry)") as resp:
                if resp.status_code != 200 or resp.json().get("call_id") != call_id:
                    resp.failure(f"retry: {resp.status_code} {resp.text[:200]}")
        if self.rng.random() < 0.10:
            with self.client.get(
                f"/v1/callers/{caller}", headers=self.headers, name="GET /v1/callers/[caller]", catch_response=True
            ) as resp:
                if resp.status_code != 200 or resp.json().get("tier") != call["tier"]:
                    resp.failure(f"caller: {resp.status_code} {resp.text[:200]}")
        fate = self.rng.random()
        if fate < 0.6:
            self.wait_and_poll(call_id, patience=self.rng.uniform(2.0, 15.0) * self.pace)
        elif fate < 0.8:
            self.pause(0.2, 3.0)
            self.abandon(call_id)
        # else: handed over, the IVR does not follow this call

    @staticmethod
    def check_route(call: dict[str, Any], caller: str, customers: int) -> str | None:
        number = int(caller[len(CALLER_PREFIX) :])
        expected = tier_of(number) if number < customers else "standard"
        if call.get("tier") != expected:
            return f"caller {caller} routed as {call.get('tier')}, expected {expected}"
        if call.get("status") not in ("waiting", "overflowed"):
            return f"new call in status {call.get('status')}"
        return None

    def wait_and_poll(self, call_id: str, patience: float) -> None:
        waited = 0.0
        announced: int | None = None
        while waited < patience:
            step = self.rng.uniform(0.5, 1.5) * self.pace
            gevent.sleep(step)
            waited += step
            with self.client.get(
                f"/v1/calls/{call_id}", headers=self.headers, name="GET /v1/calls/[id]", catch_response=True
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"poll: {resp.status_code} {resp.text[:200]}")
                    return
                polled = resp.json()
                status = polled.get("status")
                said = polled.get("announce_position")
                if said is not None and announced is not None and said > announced:
                    resp.failure(f"announce_position went up from {announced} to {said}")  # it never may
                    return
                announced = said if said is not None else announced
            if status not in ("waiting", "offered"):
                return  # answered, ended or overflowed: the IVR stops announcing
        self.abandon(call_id)

    def abandon(self, call_id: str) -> None:
        with self.post(f"/v1/calls/{call_id}/abandon", {}, "POST /v1/calls/[id]/abandon") as resp:
            if resp.status_code == 200 or (resp.status_code == 409 and _error_code(resp) == "invalid_state"):
                resp.success()  # 409: an agent answered just before the hang-up
            else:
                resp.failure(f"abandon: {resp.status_code} {resp.text[:200]}")


class Agent(TierlineUser):
    """One agent: next work, ring, answer (or not), talk, end; callbacks too."""

    weight = 1

    def wait_time(self) -> float:  # after-call work, or the pause before asking again
        return self.rng.uniform(0.2, 1.0) * self.pace

    def on_start(self) -> None:
        super().on_start()
        self.agent_id = f"agent-{os.getpid()}-{next(_agent_numbers)}"

    @task
    def next_work(self) -> None:
        with self.post(f"/v1/agents/{self.agent_id}/next", {}, "POST /v1/agents/[id]/next") as resp:
            if resp.status_code == 204:
                resp.success()
                return
            if resp.status_code != 200:
                resp.failure(f"next: {resp.status_code} {resp.text[:200]}")
                return
            work = resp.json()
            kind = work.get("kind")
            if kind == "call" and work["call"].get("agent_id") != self.agent_id:
                resp.failure(f"offered a call held by {work['call'].get('agent_id')}")
                return
            if kind not in ("call", "callback"):
                resp.failure(f"next: unexpected body {resp.text[:200]}")
                return
        if kind == "call":
            self.take_call(work["call"]["call_id"])
        else:
            self.work_callback(work["callback"]["callback_id"])

    def take_call(self, call_id: str) -> None:
        self.pause(0.1, 1.0)  # ringing
        if self.rng.random() < 0.10:
            body = {"agent_id": self.agent_id}
            with self.post(f"/v1/calls/{call_id}/requeue", body, "POST /v1/calls/[id]/requeue") as resp:
                self.expect(resp, "requeue")
            return
        body = {"agent_id": self.agent_id}
        with self.post(f"/v1/calls/{call_id}/answer", body, "POST /v1/calls/[id]/answer") as resp:
            if resp.status_code == 409 and _error_code(resp) == "invalid_state":
                resp.success()  # the caller hung up while it rang
                return
            if resp.status_code != 200 or resp.json().get("status") != "answered":
                resp.failure(f"answer: {resp.status_code} {resp.text[:200]}")
                return
        self.pause(0.5, 3.0)  # handle time
        with self.post(f"/v1/calls/{call_id}/end", {}, "POST /v1/calls/[id]/end") as resp:
            if resp.status_code != 200 or resp.json().get("status") != "ended":
                resp.failure(f"end: {resp.status_code} {resp.text[:200]}")

    def work_callback(self, callback_id: str) -> None:
        self.pause(0.2, 1.5)  # dialling the customer back
        roll = self.rng.random()
        outcome = "completed" if roll < 0.7 else "no_answer" if roll < 0.95 else "cancelled"
        body = {"outcome": outcome, "agent_id": self.agent_id}
        with self.post(f"/v1/callbacks/{callback_id}/outcome", body, "POST /v1/callbacks/[id]/outcome") as resp:
            self.expect(resp, "outcome")

    @staticmethod
    def expect(resp: Any, what: str) -> None:
        if resp.status_code == 200 or (resp.status_code == 409 and _error_code(resp) == "invalid_state"):
            resp.success()  # 409: the caller hung up, or the item moved on, in the meantime
        else:
            resp.failure(f"{what}: {resp.status_code} {resp.text[:200]}")
