"""The Prometheus text format of `GET /metrics` (served by router/admin_api.py), every figure
read from the call store.

Nothing is counted in this process's memory: each scrape reads `CallStore.metrics()` (a
snapshot of lifetime counters, the answered-wait histogram, the queues right now and the
callbacks), wraps it in a custom collector and writes it out from a fresh
`CollectorRegistry`. So any instance behind a load balancer answers the same numbers for a
shared store, a restart of one instance resets nothing that the store keeps, and there are
no process/platform metrics of one instance mixed in. (The store read is async and
`Collector.collect` is not, hence the snapshot first and a registry per scrape.) The one
exception is `tierline_requests_shed_total`: load shedding is each process's own decision
(router/plumbing/gate.py), so each instance counts its own and Prometheus sums them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tierline.queue.metrics import MetricsSnapshot


class ShedCounts(Protocol):
    """This process's `503 overloaded` answers (the HTTP layer's admission counts them)."""

    @property
    def at_admission(self) -> int: ...

    @property
    def at_deadline(self) -> int: ...


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
)


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


class StoreCollector(Collector):
    """Turns one `MetricsSnapshot` (and this process's shed count) into metric families."""

    def __init__(self, snapshot: MetricsSnapshot, shed: ShedCounts | None = None) -> None:
        self.snapshot = snapshot
        self.shed = shed

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        for name, field, help_text in COUNTERS:
            counter = CounterMetricFamily(name, help_text, labels=LABELS)
            for row in snap.rows:
                counter.add_metric([row.queue, row.tier], float(getattr(row, field)))
            yield counter

        waiting = GaugeMetricFamily("tierline_calls_waiting", "Calls waiting in the queue now", labels=LABELS)
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
            oldest.add_metric(labels, row.oldest_wait_now_s or 0.0)
            threshold.add_metric(labels, row.threshold_s)
            if row.target is not None:
                target.add_metric(labels, row.target)
        yield from (waiting, oldest, threshold, target)

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

        for name, value, help_text in (
            ("tierline_callbacks_open", snap.callbacks_open, "Callbacks waiting for an agent (or their retry time)"),
            ("tierline_callbacks_assigned", snap.callbacks_assigned, "Callbacks with an agent now"),
            ("tierline_callbacks_overdue", snap.callbacks_overdue, "Open or assigned callbacks past their deadline"),
        ):
            yield GaugeMetricFamily(name, help_text, value=float(value))

        if self.shed is not None:
            # The one figure of this process, not of the store: its own admission decisions.
            shed = CounterMetricFamily(
                "tierline_requests_shed",
                "Call-path requests this process answered 503 overloaded (stage: admission = refused before any "
                "store work, deadline = fell too far behind to finish in time)",
                labels=["stage"],
            )
            shed.add_metric(["admission"], float(self.shed.at_admission))
            shed.add_metric(["deadline"], float(self.shed.at_deadline))
            yield shed


def render(snapshot: MetricsSnapshot, shed: ShedCounts | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(snapshot, shed))
    return generate_latest(registry)
