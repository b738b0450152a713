"""The alert rules' site choices (deploy/prometheus/tierline-rules.yml), as settings Tierline
exports so that a site changes them in its Tierline config (`[alerts]`), not in the rules file.

Each is served by `/metrics` as `tierline_alert_setting{setting="<name>"}` (per process: a
config value, served while the store is down too). The rules read them with
`scalar(max(tierline_alert_setting{setting="…"}) or vector(<default>))`: the default here and
the rules' fallback are the same number (tests/ops checks it), so a Prometheus that scrapes no
setting series (an older Tierline) alerts as before. Instances on one store should carry the
same `[alerts]`; where they differ, the highest value counts.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


class AlertSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    # The tier table is stale past this age: a nightly reload plus two hours of slack.
    max_tier_age_s: Annotated[float, msgspec.Meta(gt=0)] = 26 * 3600.0
    # k: a caller waiting longer than k × the tier's service-level threshold is an alert.
    wait_factor: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    # "Far below" target: this many points (a share) under it, for the critical alert.
    far_below_margin: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    # The callback service level target: completed by the deadline, over a day.
    callback_sla_target: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.8
    # Call-path (/v1) answers of one instance: the 5xx share and the 99th percentile time
    # above which it alerts (the IVR falls back to its own routing on a 5xx or a timeout).
    call_path_error_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.05
    call_path_p99_s: Annotated[float, msgspec.Meta(gt=0)] = 0.25
    # The history archive is lagging past this many events not yet archived.
    history_max_lag_events: Annotated[int, msgspec.Meta(ge=0)] = 10_000


# The name each setting has in `tierline_alert_setting{setting=…}` (seconds say so in the name).
EXPORTED_NAMES = {
    "max_tier_age_s": "max_tier_age_seconds",
    "wait_factor": "wait_factor",
    "far_below_margin": "far_below_margin_ratio",
    "callback_sla_target": "callback_sla_target_ratio",
    "call_path_error_ratio": "call_path_error_ratio",
    "call_path_p99_s": "call_path_p99_seconds",
    "history_max_lag_events": "history_max_lag_events",
}


def exported(settings: AlertSettings) -> list[tuple[str, float]]:
    """(setting label, value) of every setting, in declaration order."""
    return [
        (EXPORTED_NAMES[field.name], float(getattr(settings, field.name))) for field in msgspec.structs.fields(settings)
    ]
