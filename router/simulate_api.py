"""`POST /admin/simulate` and `GET /admin/simulate/{job_id}`: what-if runs handed to a worker
process (a day's staffing plan, `GET /admin/forecast/plan`, is in forecast_api.py).

A simulation never runs on the serving event loop: the handler checks the request, builds the
scenario (reading the observed window or the archive if asked), and hands it as JSON to a
process pool of one worker (`admin/simulation/worker.py`); the answer is a job to poll. The
worker has its own memory store and virtual clock: nothing reaches the service's store, its
archive or its /metrics. Jobs live in this process's memory (the last `KEEP_JOBS`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from tierline.admin.simulation import curves, samples
from tierline.admin.simulation import scenario as sc
from tierline.admin.simulation.draws import Distributions, choose
from tierline.admin.simulation.samples import Sources
from tierline.admin.simulation.summary import Outcome
from tierline.admin.simulation.worker import lower_priority, run_job, warm_up
from tierline.router.plumbing.bodies import json_response, read_json
from tierline.router.plumbing.context import services
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.errors import ApiError
from tierline.router.plumbing.messages import ts
from tierline.router.plumbing.params import path_param

simulate_api = EndpointTable()

KEEP_JOBS: Final = 32  # finished jobs kept for polling, oldest forgotten first
SAMPLE_WINDOW_S: Final = 86_400.0  # arrivals not from an archived day: draws from the last 24 h
MAX_PENDING: Final = 4  # jobs queued or running at once; more is 409 simulations_busy
JobStatus = Literal["running", "done", "failed"]  # running: queued for the worker or on it

Count = Annotated[int, msgspec.Meta(ge=1, le=sc.MAX_REPLICATIONS)]


class SimulateBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A what-if run. Arrivals: `arrivals_csv` (default source), the observed window's rates held
    flat (`arrivals_from: observed`), or a past day in the archive (`archive`, with `date`)."""

    arrivals_from: Literal["csv", "observed", "archive"] = "csv"
    arrivals_csv: str | None = None
    date: date | None = None  # archive: the day replayed; csv: the day the times fall on (default today)
    queue: str | None = None  # observed / archive: one queue's arrivals (default all)
    observed_window: Literal["15m", "60m"] = "60m"
    observed_intervals: Annotated[int, msgspec.Meta(ge=1, le=sc.MAX_INTERVALS)] = 32
    staffing_csv: str
    aht_s: float | None = None  # exponential mean; default: drawn from the archive, else its observed mean
    patience_s: float | None = None  # exponential mean; default: drawn from the archive, else nobody hangs up
    # Where handle times and patience are drawn from (admin/simulation/draws.py): auto = the
    # archive when history is on and has enough (the archived day replayed, else the last 24 h).
    distributions: Distributions = "auto"
    callback_handle_s: float | None = None  # default: aht_s
    callback_reach: float = 1.0
    policy: sc.PolicyTry = sc.PolicyTry()
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 1
    replications: Count = 5
    warmup_intervals: Annotated[int, msgspec.Meta(ge=0, le=sc.MAX_INTERVALS)] = 0


class JobView(msgspec.Struct, kw_only=True):
    job_id: str
    status: JobStatus
    submitted_at: datetime
    finished_at: datetime | None = None
    href: str
    arrivals_source: str
    expected_calls: float  # per replication
    sources: Sources  # where handle times and patience are drawn from
    result: Outcome | None = None  # when done
    error: str | None = None  # when failed


@dataclass
class Job:
    job_id: str
    submitted_at: float
    source: str
    expected_calls: float
    sources: Sources
    future: asyncio.Future[bytes] | None = None
    finished_at: float | None = None
    result: Outcome | None = None
    error: str | None = None


@dataclass
class SimulationJobs:
    """The worker pool (started on first use) and the jobs it was given."""

    pool: concurrent.futures.ProcessPoolExecutor | None = None
    jobs: OrderedDict[str, Job] = field(default_factory=OrderedDict)

    def executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self.pool is None:
            # spawn: a fresh interpreter, nothing of the serving process's loop or sockets in it.
            # Niced: on shared cores the serving process is scheduled first (BENCHMARKS.md).
            self.pool = concurrent.futures.ProcessPoolExecutor(
                1, multiprocessing.get_context("spawn"), initializer=lower_priority
            )
            self.pool.submit(warm_up)
        return self.pool

    def pending(self) -> int:
        return sum(1 for job in self.jobs.values() if job.finished_at is None)

    def keep(self, job: Job) -> None:
        self.jobs[job.job_id] = job
        finished = [j for j in self.jobs.values() if j.finished_at is not None]
        for old in finished[: max(0, len(finished) - KEEP_JOBS)]:
            del self.jobs[old.job_id]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


SIMULATIONS = web.AppKey("simulations", SimulationJobs)


async def simulation_jobs(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the job registry for the app's life; the worker goes with the app."""
    jobs = app[SIMULATIONS] = SimulationJobs()
    yield
    jobs.close()


_decode_outcome = msgspec.json.Decoder(Outcome).decode


@simulate_api.route(
    "POST",
    "/admin/simulate",
    summary="Start a what-if simulation of a day through Tierline's own rules (a job to poll)",
    role="admin",
    body=SimulateBody,
    responses={202: JobView, 409: None, 422: None},
)
async def post_simulate(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_json(request, SimulateBody)
    jobs = request.app[SIMULATIONS]
    if jobs.pending() >= MAX_PENDING:
        raise ApiError(409, "simulations_busy", f"{MAX_PENDING} simulations are already queued or running")
    try:
        scenario = await _scenario(request, body)
    except sc.ScenarioError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    now = svc.clock.now()
    expected = sum(sum(counts.values()) for counts in scenario.arrivals.intervals)
    job = Job(uuid.uuid4().hex, now, scenario.arrivals.source, expected, scenario.sources)
    payload = msgspec.json.encode(scenario)
    job.future = asyncio.get_running_loop().run_in_executor(jobs.executor(), run_job, payload)
    job.future.add_done_callback(lambda done: _finished(jobs, job, done, svc.clock.now()))
    jobs.keep(job)
    return json_response(_view(job, request), status=202)


@simulate_api.route(
    "GET",
    "/admin/simulate/{job_id}",
    summary="A simulation job: queued, running, done (with its figures) or failed",
    role="admin",
    responses={200: JobView, 404: None},
)
async def get_simulation(request: web.Request) -> web.Response:
    job_id = path_param(request, "job_id")
    job = request.app[SIMULATIONS].jobs.get(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no simulation job {job_id!r} (finished jobs are kept {KEEP_JOBS})")
    return json_response(_view(job, request))


# --- internals ------------------------------------------------------------------------------


async def _scenario(request: web.Request, body: SimulateBody) -> sc.Scenario:
    svc = services(request)
    zone = svc.settings.timezone
    now = svc.clock.now()
    known: float | None = None  # the mean handle time the arrivals' source observed
    known_from = "observed"
    sample_window = (now - SAMPLE_WINDOW_S, now)
    if body.arrivals_from == "csv":
        if body.arrivals_csv is None:
            raise sc.ScenarioError("invalid_field", "arrivals_csv is required with arrivals_from csv")
        day = body.date or datetime.fromtimestamp(now, ZoneInfo(zone)).date()
        start = curves.day_bounds(day, zone)[0]
        curve = sc.parse_arrivals(body.arrivals_csv, start)
    elif body.arrivals_from == "archive":
        if body.date is None:
            raise sc.ScenarioError("invalid_field", "date is required with arrivals_from archive")
        if svc.history is None:
            raise sc.ScenarioError("no_history", "the history archive is off: give an arrivals CSV")
        start = curves.day_bounds(body.date, zone)[0]
        sample_window = curves.day_bounds(body.date, zone)
        history = await curves.past_day(svc.history, body.date, zone, body.queue)
        curve, known, known_from = history.curve, history.aht_s, "archive"
    else:
        window = 900.0 if body.observed_window == "15m" else 3600.0
        traffic = await svc.calls.traffic(body.queue, window)  # an undeclared queue: 422 via the gate
        start = now - now % sc.INTERVAL_S + sc.INTERVAL_S  # the next interval
        curve = curves.observed(traffic, start, body.observed_intervals)
        if traffic.ended:
            known = traffic.handle_sum_s / traffic.ended
    seen = None
    if svc.history is not None and body.distributions != "exponential":
        seen = await samples.from_archive(svc.history, *sample_window, body.queue)
    span = "/".join(ts(at).isoformat() for at in sample_window)
    draws = choose(
        body.distributions,
        seen,
        span,
        aht_given=body.aht_s,
        aht_known=known,
        aht_known_from=known_from,
        patience_given=body.patience_s,
    )
    if draws.aht_s is None:
        raise sc.ScenarioError("no_aht", "no handle time was observed for these arrivals: give aht_s")
    shifts = sc.parse_staffing(body.staffing_csv, start)
    policy = sc.try_policy(svc.settings, body.policy)
    return sc.scenario(
        curve,
        shifts,
        policy,
        aht_s=draws.aht_s,
        patience_s=draws.patience_s,
        callback_handle_s=body.callback_handle_s,
        callback_reach=body.callback_reach,
        seed=body.seed,
        replications=body.replications,
        warmup_intervals=body.warmup_intervals,
        handle_sample=draws.handle_sample,
        patience_law=draws.patience_law,
        sources=draws.sources,
    )


def _finished(jobs: SimulationJobs, job: Job, done: asyncio.Future[bytes], now: float) -> None:
    job.finished_at = now
    if done.cancelled():
        job.error = "cancelled (the service is stopping)"
    elif (exc := done.exception()) is not None:
        job.error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, concurrent.futures.BrokenExecutor):
            jobs.pool = None  # the worker died (killed, out of memory): the next job starts a new one
    else:
        job.result = _decode_outcome(done.result())


def _view(job: Job, request: web.Request) -> JobView:
    status: JobStatus = "running"
    if job.finished_at is not None:
        status = "done" if job.result is not None else "failed"
    return JobView(
        job_id=job.job_id,
        status=status,
        submitted_at=ts(job.submitted_at),
        finished_at=None if job.finished_at is None else ts(job.finished_at),
        href=f"/admin/simulate/{job.job_id}",
        arrivals_source=job.source,
        expected_calls=round(job.expected_calls, 3),
        sources=job.sources,
        result=job.result,
        error=job.error,
    )
