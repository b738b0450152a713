"""The Prometheus text format of `GET /metrics` (served by router/admin_api.py), every figure
read from the call store.

Nothing is counted in this process's memory: each scrape reads `CallStore.metrics()` (a
snapshot of lifetime counters, the answered-wait histogram, the queues right now and the
callbacks), wraps it in a custom collector and writes it out from a fresh
`CollectorRegistry`. So any instance behind a load balancer answers the same numbers for a
shared store, a restart of one instance resets nothing that the store keeps, and there are
no process/platform metrics of one instance mixed in. (The store read is async and
`Collector.collect` is not, hence the snapshot first and a registry per scrape.)

A few series are this process's own, kept apart (`ProcessFigures`): whether the store answered
this scrape (`tierline_ready`), the build, the tier table version this process looks callers
up in, `tierline_requests_shed_total` (load shedding is each process's own decision,
router/plumbing/gate.py), the requests it answered per route and status class with their
time (`tierline_http_*`, counted by the gate in plain ints and only rendered here), the
store's refusals it passed on by code, and its Redis link's breaker and failures. Prometheus
sums those over the instances it scrapes. They are served even while the store is down, when the store's
figures are left out. Alert rules aggregate the store-wide series with `max()`, never `sum()`:
every instance on one store repeats them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tierline.admin.alerting import AlertSettings, exported
from tierline.queue.history.archiver import ArchiverFigures
from tierline.queue.metrics import MetricsSnapshot
from tierline.queue.redis_link import LinkFigures
from tierline.queue.store import CallbackSummary
from tierline.queue.wait_accuracy import figures as accuracy_figures
from tierline.tiers.freshness import TierFreshness


class ShedCounts(Protocol):
    """This process's `503 overloaded` answers (the HTTP layer's admission counts them)."""

    @property
    def at_admission(self) -> int: ...

    @property
    def at_deadline(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RouteRequests:
    """One route's answers in this process: `by_class[n]` of status nxx (n = 1..5), and their
    time in `buckets` (one per bound of `ProcessFigures.latency_bounds`, then one above all)."""

    method: str
    route: str
    by_class: Sequence[int]
    buckets: Sequence[int]
    seconds: float


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    """What this process knows of itself, answered even when the store is not."""

    ready: bool
    tiers: TierFreshness | None = None
    shed: ShedCounts | None = None
    requests: Sequence[RouteRequests] = ()
    latency_bounds: Sequence[float] = ()
    store_errors: Mapping[str, int] | None = None
    redis: Sequence[LinkFigures] = ()
    alerts: AlertSettings | None = None  # the alert rules' site choices ([alerts] in the config)
    history: ArchiverFigures | None = None  # this process's archiver, while history is on


def build_version() -> str:
    try:
        return metadata.version("tierline")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LABELS = ["queue", "tier"]

# (metric name without _total, MetricsRow field, help)
COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("tierline_calls_arrived", "arrived", "Calls that arrived (routed), per queue and tier"),
    (
        "tierline_calls_offered",
        "offered",
        "Calls whose wait ended (answered + abandoned + overflowed), as the service level counts them",
    ),
    ("tierline_calls_answered", "answered", "Calls answered by an agent"),
    (
        "tierline_calls_answered_within_threshold",
        "answered_within",
        "Calls answered with a wait at most the tier's SLA threshold",
    ),
    ("tierline_calls_abandoned", "abandoned", "Calls the caller hung up while waiting (short abandons included)"),
    ("tierline_calls_short_abandoned", "short_abandoned", "Abandons with a wait under short_abandon_s"),
    ("tierline_calls_overflowed", "overflowed", "Calls overflowed (queue full or waited too long)"),
    (
        "tierline_calls_callback_requested",
        "callback_requested",
        "Calls that took the callback offer and left the line, their place held (counted apart from abandons)",
    ),
    (
        "tierline_calls_resumed",
        "resumed",
        "Abandoned calls whose caller called again within resume_window_s and took the place back",
    ),
)


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


class StoreCollector(Collector):
    """Turns one `MetricsSnapshot` into metric families: the store's figures."""

    def __init__(self, snapshot: MetricsSnapshot, callbacks: CallbackSummary | None = None) -> None:
        self.snapshot = snapshot
        self.callbacks = callbacks

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        for name, field, help_text in COUNTERS:
            counter = CounterMetricFamily(name, help_text, labels=LABELS)
            for row in snap.rows:
                counter.add_metric([row.queue, row.tier], float(getattr(row, field)))
            yield counter

        waiting = GaugeMetricFamily("tierline_calls_waiting", "Calls waiting in the queue now", labels=LABELS)
        held = GaugeMetricFamily(
            "tierline_calls_held",
            "Places held in line now for a requested callback (not in tierline_calls_waiting)",
            labels=LABELS,
        )
        oldest = GaugeMetricFamily(
            "tierline_oldest_wait_seconds", "Wait so far of the oldest waiting call (0 if none)", labels=LABELS
        )
        threshold = GaugeMetricFamily(
            "tierline_sla_threshold_seconds", "The tier's service-level threshold", labels=LABELS
        )
        target = GaugeMetricFamily(
            "tierline_sla_target_ratio", "The tier's service-level target (absent: no target)", labels=LABELS
        )
        for row in snap.rows:
            labels = [row.queue, row.tier]
            waiting.add_metric(labels, float(row.waiting_now))
            held.add_metric(labels, float(row.held_now))
            oldest.add_metric(labels, row.oldest_wait_now_s or 0.0)
            threshold.add_metric(labels, row.threshold_s)
            if row.target is not None:
                target.add_metric(labels, row.target)
        yield from (waiting, held, oldest, threshold, target)

        histogram = HistogramMetricFamily(
            "tierline_answered_wait_seconds",
            "Wait of answered calls (arrival to answer); each SLA threshold is a bucket edge",
            labels=LABELS,
        )
        for row in snap.rows:
            cumulative, buckets = 0, []
            for bound, count in zip([*snap.wait_bounds, float("inf")], row.answer_wait_buckets, strict=True):
                cumulative += count
                buckets.append((_le(bound) if bound != float("inf") else "+Inf", float(cumulative)))
            histogram.add_metric([row.queue, row.tier], buckets, row.answer_wait_sum)
        yield histogram
        yield from _estimate_accuracy(snap)

        for name, value, help_text in (
            ("tierline_callbacks_open", snap.callbacks_open, "Callbacks waiting for an agent (or their retry time)"),
            ("tierline_callbacks_assigned", snap.callbacks_assigned, "Callbacks with an agent now"),
            ("tierline_callbacks_overdue", snap.callbacks_overdue, "Open or assigned callbacks past their deadline"),
            (
                "tierline_callbacks_at_risk",
                snap.callbacks_at_risk,
                "Open or assigned callbacks whose deadline leaves too little opening time (flagged at creation)",
            ),
        ):
            yield GaugeMetricFamily(name, help_text, value=float(value))
        if self.callbacks is not None:
            # Closed callbacks, for the callback service level over a window (completed by the
            # deadline / (completed + unreached + overdue now), as GET /admin/sla counts it).
            for name, count, help_text in (
                ("tierline_callbacks_completed", self.callbacks.completed, "Callbacks an agent completed"),
                (
                    "tierline_callbacks_completed_in_time",
                    self.callbacks.completed_in_time,
                    "Callbacks completed by their deadline",
                ),
                ("tierline_callbacks_unreached", self.callbacks.unreached, "Callbacks closed as unreached"),
            ):
                yield CounterMetricFamily(name, help_text, value=float(count))


def _estimate_accuracy(snap: MetricsSnapshot) -> Iterator[Metric]:
    """How right the waits quoted on arrival were, per queue × tier with answered calls
    (queue/wait_accuracy.py): the counters, and the three figures the README names."""
    calls = CounterMetricFamily(
        "tierline_wait_estimate_calls", "Answered calls that had been quoted a wait on arrival", labels=LABELS
    )
    errors = CounterMetricFamily(
        "tierline_wait_estimate_abs_error_seconds", "Sum of |real wait - quoted wait| of those calls", labels=LABELS
    )
    mae = GaugeMetricFamily(
        "tierline_wait_estimate_mean_abs_error_seconds",
        "Mean |real wait - quoted wait| since the store began",
        labels=LABELS,
    )
    median = GaugeMetricFamily(
        "tierline_wait_estimate_median_ratio",
        "Median of real wait / quoted wait (each at least 1 s) since the store began; 1 is calibrated",
        labels=LABELS,
    )
    within = GaugeMetricFamily(
        "tierline_wait_estimate_within_50pct_ratio",
        "Share of those calls whose real wait was within ±50% of the quote",
        labels=LABELS,
    )
    for row in snap.estimate_accuracy:
        labels = [row.queue, row.tier]
        acc = row.accuracy
        calls.add_metric(labels, float(acc.n))
        errors.add_metric(labels, acc.err)
        fig = accuracy_figures(acc)
        if fig.mean_abs_error_s is not None:
            mae.add_metric(labels, fig.mean_abs_error_s)
        if fig.median_ratio is not None:
            median.add_metric(labels, fig.median_ratio)
        if fig.within_50pct is not None:
            within.add_metric(labels, fig.within_50pct)
    yield from (calls, errors, mae, median, within)


class TierTableCollector(Collector):
    """The tier table's freshness: its version as this process uses it, the rest store-wide."""

    def __init__(self, fresh: TierFreshness) -> None:
        self.fresh = fresh

    def collect(self) -> Iterator[Metric]:
        fresh = self.fresh
        yield GaugeMetricFamily(
            "tierline_tier_table_version",
            "The tier table version this process looks callers up in (reloads that swapped; per process)",
            value=float(fresh.version),
        )
        yield GaugeMetricFamily(
            "tierline_tier_table_loaded_timestamp_seconds",
            "When the live tier table went live, Unix time (0: no reload ever swapped one in)",
            value=fresh.loaded_at,
        )
        reloads = CounterMetricFamily(
            "tierline_tier_reloads",
            "Tier table reloads by outcome (swapped; refused: over the reject ratio; invalid: not a tier file)",
            labels=["outcome"],
        )
        for outcome, count in fresh.reloads.items():
            reloads.add_metric([outcome], float(count))
        yield reloads
        last = GaugeMetricFamily(
            "tierline_tier_last_reload_timestamp_seconds",
            "When a tier reload last ended with this outcome, Unix time",
            labels=["outcome"],
        )
        for outcome, at in fresh.last_reload_at.items():
            last.add_metric([outcome], at)
        yield last


class ProcessCollector(Collector):
    """This process's own series: readiness, build, shed requests, requests per route, store
    errors by code and the Redis breaker."""

    def __init__(self, figures: ProcessFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "tierline_ready",
            "1 if this process reached the store for this scrape (as GET /readyz), else 0",
            value=1.0 if self.figures.ready else 0.0,
        )
        info = GaugeMetricFamily("tierline_build_info", "The running Tierline version (always 1)", labels=["version"])
        info.add_metric([build_version()], 1.0)
        yield info
        shed_counts = self.figures.shed
        if shed_counts is not None:
            shed = CounterMetricFamily(
                "tierline_requests_shed",
                "Call-path requests this process answered 503 overloaded (stage: admission = refused before any "
                "store work, deadline = fell too far behind to finish in time)",
                labels=["stage"],
            )
            shed.add_metric(["admission"], float(shed_counts.at_admission))
            shed.add_metric(["deadline"], float(shed_counts.at_deadline))
            yield shed
        yield from self._requests()
        if self.figures.store_errors is not None:
            errors = CounterMetricFamily(
                "tierline_store_errors",
                "Store refusals this process answered, by code (store_unavailable, overloaded, call_not_found, "
                "invalid_state, ...)",
                labels=["code"],
            )
            for code, count in sorted(self.figures.store_errors.items()):
                errors.add_metric([code], float(count))
            yield errors
        yield from self._redis()
        yield from self._history()
        if self.figures.alerts is not None:
            settings = GaugeMetricFamily(
                "tierline_alert_setting",
                "The alert rules' site choices as this process is configured ([alerts]; the rules read them)",
                labels=["setting"],
            )
            for name, value in exported(self.figures.alerts):
                settings.add_metric([name], value)
            yield settings

    def _history(self) -> Iterator[Metric]:
        """The archiver's series (queue/history/archiver.py). Lag and drops are the store's
        (every process on a Redis store repeats them: aggregate with max()); archived events
        and the last commit are this process's own."""
        history = self.figures.history
        if history is None:
            return
        yield GaugeMetricFamily(
            "tierline_history_lag_events",
            "Events held by the store and not yet in the history archive (store-wide)",
            value=float(history.lag),
        )
        yield CounterMetricFamily(
            "tierline_history_dropped",
            "Events the store dropped before they were archived: its buffer or stream was at its cap (store-wide)",
            value=float(history.dropped),
        )
        yield CounterMetricFamily(
            "tierline_history_archived",
            "Events this process's archiver inserted into the archive (a batch sent again adds none)",
            value=float(history.archived),
        )
        yield GaugeMetricFamily(
            "tierline_history_last_commit_timestamp_seconds",
            "When this process's archiver last committed a batch, Unix time (0: not yet)",
            value=history.last_commit_at or 0.0,
        )

    def _requests(self) -> Iterator[Metric]:
        figures = self.figures
        counts = CounterMetricFamily(
            "tierline_http_requests",
            "Requests this process answered, per route (its template) and status class",
            labels=["method", "route", "status_class"],
        )
        durations = HistogramMetricFamily(
            "tierline_http_request_duration_seconds",
            "Time from the request reaching its route's handler to its answer, per route (this process)",
            labels=["method", "route"],
        )
        edges = [*(_le(bound) for bound in figures.latency_bounds), "+Inf"]
        for row in figures.requests:
            if not any(row.by_class):
                continue
            for n in range(1, 6):
                if row.by_class[n]:
                    counts.add_metric([row.method, row.route, f"{n}xx"], float(row.by_class[n]))
            cumulative, buckets = 0, []
            for edge, count in zip(edges, row.buckets, strict=True):
                cumulative += count
                buckets.append((edge, float(cumulative)))
            durations.add_metric([row.method, row.route], buckets, row.seconds)
        yield counts
        yield durations

    def _redis(self) -> Iterator[Metric]:
        links = self.figures.redis
        if not links:
            return  # the memory store: no link, no breaker
        # One series per link purpose: the call path's (`calls`) and, on a process that archives
        # the call history, the archiver's own (`history`), whose slow batch never trips the
        # call path's breaker and must not look as if it had.
        by_purpose: dict[str, list[LinkFigures]] = {}
        for link in links:
            by_purpose.setdefault(link.purpose, []).append(link)
        breaker = GaugeMetricFamily(
            "tierline_redis_breaker_open",
            "1 while this process's Redis breaker of that link is open (calls fail at once, no socket touched), else 0",
            labels=["link"],
        )
        counters = [
            CounterMetricFamily(name, help_text, labels=["link"])
            for name, help_text in (
                (
                    "tierline_redis_failures",
                    "Redis calls of this process that failed against Redis (errors, commands held past the timeout)",
                ),
                ("tierline_redis_breaker_trips", "Times this process's breaker of that link opened"),
                (
                    "tierline_redis_breaker_refused",
                    "Redis calls this process failed at once while that breaker was open",
                ),
            )
        ]
        for purpose, group in sorted(by_purpose.items()):
            breaker.add_metric([purpose], 1.0 if any(link.breaker_open for link in group) else 0.0)
            for family, values in zip(
                counters,
                (
                    [link.failures for link in group],
                    [link.trips for link in group],
                    [link.refused for link in group],
                ),
                strict=True,
            ):
                family.add_metric([purpose], float(sum(values)))
        yield breaker
        yield from counters


def render(
    snapshot: MetricsSnapshot | None, process: ProcessFigures, callbacks: CallbackSummary | None = None
) -> bytes:
    """The exposition text: the store's figures (None: the store did not answer) and this process's."""
    registry = CollectorRegistry(auto_describe=False)
    if snapshot is not None:
        registry.register(StoreCollector(snapshot, callbacks))
    if process.tiers is not None:
        registry.register(TierTableCollector(process.tiers))
    registry.register(ProcessCollector(process))
    return generate_latest(registry)
