"""What a Redis store URL may say, checked before anything connects.

- `redis://[user:password@]host:port/db` — one server; `rediss://` the same over TLS, whose
  certificate is verified against `?ssl_ca_certs=/path/ca.pem` (else the system's CAs), with
  `ssl_certfile`/`ssl_keyfile` for a client certificate.
- `redis+cluster://host:port` (or `rediss+cluster://`) — a seed node of a Redis Cluster.
- `redis+sentinel://[user:password@]host:26379[,host2:26379]/service_name/db` — the primary of
  `service_name` as the Sentinels name it; `user:password` is for the Redis servers,
  `?sentinel_username=…&sentinel_password=…` for the Sentinels when they ask for one.
  `rediss+sentinel://` the same with TLS to the Sentinels and to the primary, each verified
  against `ssl_ca_certs` (one CA for both, as a deployment's own CA signs them all).

Only these query parameters are accepted: anything else in the URL would reach redis-py's
connections as an option and override Tierline's own timeouts, or fail on the first call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
TLS_PARAMETERS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
SENTINEL_PARAMETERS = ("sentinel_username", "sentinel_password")
SENTINEL_PORT = 26379


class RedisUrlError(ValueError):
    """The store URL cannot work as written (the message says why)."""


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    sentinel_username: str | None
    sentinel_password: str | None
    tls: dict[str, str] | None = None  # rediss+sentinel: redis-py's ssl_* options, for Sentinels and servers


def scheme(url: str) -> str:
    return url.split("://", 1)[0]


def is_redis_url(url: str) -> bool:
    return "://" in url and scheme(url) in SCHEMES


def redacted(url: str) -> str:
    """The URL with its password (in the user part or a `sentinel_password`) replaced by `***`, for logs."""
    head, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{hosts}"
    if "sentinel_password=" in tail:
        path, _, query = tail.partition("?")
        tail = (
            path
            + "?"
            + "&".join("sentinel_password=***" if p.startswith("sentinel_password=") else p for p in query.split("&"))
        )
    return f"{head}{sep}{netloc}{slash}{tail}"


def check(url: str) -> None:
    """Raises `RedisUrlError` unless `url` is a Redis store URL Tierline can connect with."""
    kind = scheme(url)
    if not is_redis_url(url):
        raise RedisUrlError(f"{kind!r} is not a Redis URL scheme (use one of {', '.join(SCHEMES)})")
    if kind in SENTINEL_SCHEMES:
        _files(sentinel_target(url).tls or {})
        return
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    allowed = TLS_PARAMETERS if kind.startswith("rediss") else ("db",) if kind == "unix" else ()
    _only(query, allowed, kind)
    _files({name: values[0] for name, values in query.items() if name in TLS_PARAMETERS})


def _files(tls: dict[str, str]) -> None:
    for name, path in tls.items():
        if not Path(path).is_file():
            raise RedisUrlError(f"{name}: no such file {path!r}")


def sentinel_target(url: str) -> SentinelTarget:
    """The parts of a `redis+sentinel://` or `rediss+sentinel://` URL (a comma-separated host
    list is not a URL netloc)."""
    kind, _, rest = url.partition("://")
    rest, _, query_text = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = tuple(_address(host) for host in hosts.split(","))
    service, _, db_text = path.strip("/").partition("/")
    if not service:
        raise RedisUrlError("a Sentinel URL names the service: redis+sentinel://host:26379/service_name/db")
    if not (db_text or "0").isdigit():
        raise RedisUrlError(f"the database after the service name is a number, not {db_text!r}")
    query = parse_qs(query_text, keep_blank_values=True)
    tls = kind.startswith("rediss")
    _only(query, (*SENTINEL_PARAMETERS, *TLS_PARAMETERS) if tls else SENTINEL_PARAMETERS, kind)
    return SentinelTarget(
        sentinels=sentinels,
        service=unquote(service),
        db=int(db_text or "0"),
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_username=query.get("sentinel_username", [""])[0] or None,
        sentinel_password=query.get("sentinel_password", [""])[0] or None,
        tls={name: query[name][0] for name in TLS_PARAMETERS if name in query} if tls else None,
    )


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":")
    if not colon:
        host, port = text.strip(), str(SENTINEL_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RedisUrlError(f"a Sentinel address is host:port, not {text!r}")
    return host.strip("[]"), int(port)


def _only(query: dict[str, list[str]], allowed: tuple[str, ...], kind: str) -> None:
    for name in query:
        if name in TLS_PARAMETERS and not kind.startswith("rediss"):
            raise RedisUrlError(f"{name} is a TLS option: TLS needs rediss://, not {kind}://")
        if name not in allowed:
            accepted = ", ".join(allowed) if allowed else "none"
            raise RedisUrlError(f"{kind}:// URLs take no {name!r} parameter (accepted: {accepted})")
