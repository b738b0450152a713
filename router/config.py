"""Settings: a TOML file (`--config`), then environment variables, then command-line flags.

The file decodes straight into `Settings` (the engine's `Policy` plus a `[server]` table),
so an unknown key or a wrong type is an error at start, not a surprise on the busiest day.
Every environment variable Tierline reads is read here, and every default is the one
declared on these structs (`DEFAULTS`; the command line shows and uses the same values).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from tierline.admin.alerting import AlertSettings
from tierline.admin.i18n import Lang, language
from tierline.queue.hours import holiday_lines
from tierline.queue.policy import Policy
from tierline.queue.redis_keys import DEFAULT_NAMESPACE
from tierline.queue.redis_urls import RedisUrlError, check, is_redis_url
from tierline.queue.service_level import valid_timezone
from tierline.tiers.grading.config import GradingSettings

ENV_PREFIX = "TIERLINE_"


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    store: str = "memory"
    api_token: str = ""
    admin_token: str = ""
    # The back office's token (GET /workbench/): takes and closes callbacks, reads caller
    # records, nothing else. Optional: the api_token may do all of that too.
    backoffice_token: str = ""
    insecure: bool = False  # allow a non-loopback bind without tokens
    # "memory", or a Redis URL (queue/redis_urls.py): redis://[user:pass@]host:port/db,
    # rediss://…?ssl_ca_certs=/path/ca.pem (TLS), redis+cluster://host:port,
    # redis+sentinel://host:26379[,host2:26379]/service_name/db (rediss+sentinel://: TLS to both).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    max_reload_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024**3
    # A body (or, for a tier file, each 1 MiB of it) that does not arrive in this time is 408:
    # a client that sends headers and then nothing must not hold a connection open for minutes.
    body_read_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    sweep_interval_s: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    # Call-path (/v1) requests in progress in this process beyond which a new one is answered
    # 503 `overloaded` at once (0 = no limit): a saturated process sheds load early and
    # explicitly instead of timing out half-done work.
    max_in_flight: Annotated[int, msgspec.Meta(ge=0)] = 128
    # Redis store only: the key prefix (several deployments can share one Redis), and the
    # longest Redis may hold one command before it counts as failing; a /v1 request's Redis
    # calls share one deadline of twice this (503 / degraded look-ups past it).
    redis_namespace: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = DEFAULT_NAMESPACE
    redis_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=5)] = 0.2
    # Logs on stderr: "text" lines, or "json", one object per line (router/plumbing/logs.py).
    # At "debug", one access line per request too (at "info" the hot path skips them).
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Call history (README "Call history"): "" is the store's default (memory: a SQLite file in
    # `data_dir`; Redis: off, since every process would keep its own share in its own file),
    # "off", "sqlite:///abs/path.db" (sqlite://rel/path.db: relative) or "postgresql://…".
    history: str = ""
    data_dir: str = "./tierline-data"
    # Events per archive batch, and how long a Redis archiver's pending batch may sit before
    # another archiver of the group takes it over (its process is then taken for dead).
    history_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000
    history_claim_idle_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    # The memory store's batches committed by a worker process (queue/history/archive_worker.py),
    # so archiving takes no time of the serving process's core; false: in the serving process.
    history_worker: bool = True


class Settings(Policy, kw_only=True, forbid_unknown_fields=True, dict=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    # `tierline grade` reads it; declared here so one file serves both and a typo is still an error.
    grading: GradingSettings | None = None
    # The alert rules' site choices, exported by /metrics for deploy/prometheus's rules to read.
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)


class ConfigError(ValueError):
    pass


# Environment variable -> [server] field. Only the settings an operator changes per host.
_ENV = {
    "HOST": "host",
    "PORT": "port",
    "STORE": "store",
    "API_TOKEN": "api_token",
    "ADMIN_TOKEN": "admin_token",
    "BACKOFFICE_TOKEN": "backoffice_token",
    "INSECURE": "insecure",
    "LOG_FORMAT": "log_format",
    "LOG_LEVEL": "log_level",
    "HISTORY": "history",
    "DATA_DIR": "data_dir",
    "HISTORY_WORKER": "history_worker",
}
_TRUE = {"1", "true", "yes", "on"}


def env_config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """`TIERLINE_CONFIG`: the settings file when `--config` is not given."""
    value = (os.environ if env is None else env).get(ENV_PREFIX + "CONFIG")
    return Path(value) if value else None


def env_admin_token(env: Mapping[str, str] | None = None) -> str | None:
    """`TIERLINE_ADMIN_TOKEN` for the commands that call a running service's /admin API."""
    return (os.environ if env is None else env).get(ENV_PREFIX + "ADMIN_TOKEN") or None


def env_language(env: Mapping[str, str] | None = None) -> Lang:
    """The language of the CLI's tables: LANGUAGE, LC_ALL, LC_MESSAGES, LANG (admin/i18n.py)."""
    return language(os.environ if env is None else env)


def load_settings(
    path: Path | None = None, env: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None
) -> Settings:
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    if path is not None:
        try:
            raw = msgspec.toml.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
    server = dict(raw.get("server", {}))  # type: ignore[call-overload]
    for name, field in _ENV.items():
        if (value := env.get(ENV_PREFIX + name)) is not None:
            if field == "port" and value.isdigit():
                server[field] = int(value)
            elif field in ("insecure", "history_worker"):
                server[field] = value.strip().lower() in _TRUE
            elif field in ("log_format", "log_level"):
                server[field] = value.strip().lower()
            else:
                server[field] = value
    for field, override in (overrides or {}).items():
        if override is not None:
            server[field] = override
    raw["server"] = server
    _read_holiday_files(raw, path)
    try:
        settings = msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration{_where(raw)} ({exc})") from None
    if is_redis_url(settings.server.store):
        try:
            check(settings.server.store)
        except RedisUrlError as exc:
            raise ConfigError(f"invalid configuration: store: {exc}") from None
    try:
        history_target(settings.server)
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: history: {exc}") from None
    if not valid_timezone(settings.timezone):
        raise ConfigError(f"invalid configuration: unknown time zone {settings.timezone!r}")
    return settings


HISTORY_FILE = "history.sqlite3"  # the memory store's default archive, in data_dir


class HistoryTarget(msgspec.Struct, frozen=True):
    """Where events are archived: a SQLite file (`location` is its path) or PostgreSQL (a DSN,
    and the schema its `?schema=` parameter names: several deployments can share a database)."""

    kind: Literal["sqlite", "postgresql"]
    location: str
    schema: str = "public"


def history_target(server: ServerSettings) -> HistoryTarget | None:
    """The archive `server.history` names, or the store's default (see `history`); None: off.
    Raises ValueError for anything else."""
    value = server.history.strip()
    if value == "":
        if server.store == "memory":
            return HistoryTarget("sqlite", str(Path(server.data_dir) / HISTORY_FILE))
        return None
    if value == "off":
        return None
    scheme, sep, rest = value.partition("://")
    if sep and scheme == "sqlite" and rest:
        return HistoryTarget("sqlite", rest)
    if sep and scheme in ("postgresql", "postgres") and rest:
        parts = urlsplit(value)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = dict(query).get("schema", "public")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ValueError(f"schema={schema!r}: lower-case letters, digits and _")
        dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
        return HistoryTarget("postgresql", dsn, schema)
    raise ValueError(f"{value!r} is not 'off', sqlite:///path or postgresql://…")


def _read_holiday_files(raw: dict[str, object], config_path: Path | None) -> None:
    """`[queues.NAME] holidays_file`: its dates (one a line, `#` comments) join the queue's
    `holidays`; a relative path is read from the config file's folder. Checked with the rest
    of the hours when the policy is built (queue/hours.py)."""
    queues = raw.get("queues")
    if not isinstance(queues, dict):
        return
    for name, queue in queues.items():
        if not isinstance(queue, dict) or "holidays_file" not in queue:
            continue
        given = Path(str(queue.pop("holidays_file")))
        if not given.is_absolute() and config_path is not None:
            given = config_path.parent / given
        try:
            lines = holiday_lines(given.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"invalid configuration: queues.{name}.holidays_file: cannot read {given}: {exc}"
            ) from None
        queue["holidays"] = [*queue.get("holidays", []), *lines]


def _where(raw: Mapping[str, object]) -> str:
    """Which key or table of the file is at fault, found by Tierline itself (the library's
    message follows as detail, in its own words)."""
    known = {field.encode_name: field for field in msgspec.structs.fields(Settings)}
    for name, value in raw.items():
        field = known.get(name)
        if field is None:
            return f": unknown key {name!r}"
        try:
            msgspec.convert(value, field.type)
        except msgspec.ValidationError:
            return f" in [{name}]" if isinstance(value, dict) else f": {name}"
    return ""


DEFAULTS = Settings()
DEFAULT_URL = f"http://{DEFAULTS.server.host}:{DEFAULTS.server.port}"  # where the CLIs find the service
