"""The engine's rules as data: per-tier targets and limits, per-queue bounds, callback windows.

Every setting of SPEC has its default here, once. The TOML config decodes straight into
these structs, so a typo in the config is a validation error, not a silently ignored key.
A limit of 0 means "off" (TOML has no null).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from tierline.queue.decisions import OFFER_TIERS
from tierline.queue.hours import HoursBook, Schedule
from tierline.tiers.model import DEFAULT_TIER, TIERS, Tier
from tierline.tiers.reload import DEFAULT_MAX_REJECT_RATIO

Seconds = Annotated[float, msgspec.Meta(ge=0)]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]

SlaFormula = Literal["default", "answered_only", "all_offered", "abandons_in_threshold_good"]


class TierPolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One tier's settings. Unset fields take the tier's SPEC default (see TIER_DEFAULTS)."""

    sla_threshold_s: Seconds | None = None
    sla_target: Share | None = None  # 0 = no target
    overflow_after_s: Seconds | None = None  # 0 = never overflows on wait
    # The callback offer that keeps the place (issue 16 item 3): whether this tier is offered
    # one (default: the tiers of decisions.OFFER_TIERS, mid), once the wait quoted exceeds
    # offer_callback_after_s (default: the tier's sla_threshold_s).
    offer_callback: bool | None = None
    offer_callback_after_s: Seconds | None = None


class ResolvedTierPolicy(msgspec.Struct, frozen=True):
    sla_threshold_s: float
    sla_target: float | None
    overflow_after_s: float | None
    offer_callback: bool = False
    offer_callback_after_s: float = 0.0


# Each tier's SPEC threshold, target and overflow limit; offered a callback per decisions.OFFER_TIERS.
_SPEC_TIERS: Final[tuple[tuple[Tier, float, float | None, float | None], ...]] = (
    ("vip", 20.0, 0.90, None),
    ("mid", 20.0, 0.85, 60.0),
    ("standard", 20.0, 0.85, None),
    ("blacklisted", 20.0, None, None),
)
TIER_DEFAULTS: Final[dict[Tier, ResolvedTierPolicy]] = {
    tier: ResolvedTierPolicy(threshold, target, overflow, tier in OFFER_TIERS, threshold)
    for tier, threshold, target, overflow in _SPEC_TIERS
}


class QueuePolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_waiting: Annotated[int, msgspec.Meta(ge=0)] = 0  # 0 = unbounded
    # Business hours (queue/hours.py): ranges "HH:MM-HH:MM" per weekday in `timezone` (the
    # policy's when unset); a day left out is closed. None: always open. `holidays`: dates
    # closed all day (router/config.py adds those of a `holidays_file`).
    hours: dict[str, list[str]] | None = None  # day names: hours.DAYS, checked by Schedule
    holidays: list[str] = msgspec.field(default_factory=list)
    timezone: str | None = None


DeadlineRule = Literal["wall_clock", "open_hours"]


class CallbackPolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # The deadline: created + window_s ("wall_clock", the 24 h promise), or the instant when
    # window_open_s of the queue's opening hours have passed since creation ("open_hours").
    deadline_rule: DeadlineRule = "wall_clock"
    window_s: Annotated[float, msgspec.Meta(gt=0)] = 24 * 3600.0
    window_open_s: Annotated[float, msgspec.Meta(gt=0)] = 8 * 3600.0
    # A callback with less open time than this before its deadline is flagged `at_risk`.
    min_open_s: Seconds = 300.0
    retry_delay_s: Seconds = 30 * 60.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 3


class Policy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, dict=True):
    """Everything the queue, callback and service-level logic is told rather than decides."""

    queues: dict[str, QueuePolicy] = msgspec.field(default_factory=dict)
    tiers: dict[Tier, TierPolicy] = msgspec.field(default_factory=dict)
    callbacks: CallbackPolicy = msgspec.field(default_factory=CallbackPolicy)
    default_tier: Tier = DEFAULT_TIER
    offer_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    short_abandon_s: Seconds = 5.0
    aging_s: Seconds = 0.0  # 0 = off; else a standard call older than this ranks with mid
    # A callback this close to its deadline goes ahead of standard calls (decisions.NEXT_ORDER);
    # 0 = off: every call before any callback (the order before issue 16).
    callback_urgent_s: Seconds = 2 * 3600.0
    timezone: str = "UTC"
    sla_formula: SlaFormula = "default"
    # A caller who abandoned and calls the same queue again within this many seconds takes back
    # the original place and tier (issue 16 item 4); 0 = off.
    resume_window_s: Seconds = 0.0
    retain_finished_s: Annotated[float, msgspec.Meta(gt=0)] = 24 * 3600.0
    reload_max_reject_ratio: Share = DEFAULT_MAX_REJECT_RATIO

    def __post_init__(self) -> None:
        # `default` always exists; a config that declares it only changes its bounds.
        self.queues.setdefault("default", QueuePolicy())
        resolved: dict[Tier, ResolvedTierPolicy] = {}
        for tier in TIERS:
            base, given = TIER_DEFAULTS[tier], self.tiers.get(tier, TierPolicy())
            target = base.sla_target if given.sla_target is None else given.sla_target
            overflow = base.overflow_after_s if given.overflow_after_s is None else given.overflow_after_s
            threshold = base.sla_threshold_s if given.sla_threshold_s is None else given.sla_threshold_s
            resolved[tier] = ResolvedTierPolicy(
                sla_threshold_s=threshold,
                sla_target=target or None,
                # VIPs are never overflowed, whatever a config says.
                overflow_after_s=None if tier == "vip" else (overflow or None),
                offer_callback=base.offer_callback if given.offer_callback is None else given.offer_callback,
                offer_callback_after_s=threshold if (after := given.offer_callback_after_s) is None else after,
            )
        self._resolved: dict[Tier, ResolvedTierPolicy] = resolved
        # A HoursError (a ValueError) here is a validation error of the config, naming the queue.
        schedules: dict[str, Schedule | None] = {}
        for name, queue in self.queues.items():
            schedules[name] = None
            if queue.hours is not None:
                try:
                    schedules[name] = Schedule.from_config(queue.hours, queue.holidays, queue.timezone or self.timezone)
                except ValueError as exc:
                    raise ValueError(f"queues.{name}.{exc}") from None
        self.schedules: dict[str, Schedule | None] = schedules

    def hours_book(self) -> HoursBook:
        """A fresh cache of the queues' opening-hour windows (each store keeps its own)."""
        rule = self.callbacks
        return HoursBook(self.schedules, rule.window_s, rule.window_open_s if rule.deadline_rule == "open_hours" else 0)

    def tier(self, tier: Tier) -> ResolvedTierPolicy:
        return self._resolved[tier]

    def max_waiting(self, queue: str) -> int | None:
        return self.queues[queue].max_waiting or None
