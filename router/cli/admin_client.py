"""A GET on a running service's `/admin` API with the admin token: what the CLIs (`sla`, `forecast`) share.

Blocking (urllib): the commands are one-shot terminal tools. A refusal carries the status and
the service's own error message; an unreachable service is told apart so a command can exit
with a different code.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any


class AdminRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"({status}): {message}")
        self.status, self.message = status, message


class AdminUnreachable(Exception):
    pass


def admin_get(base_url: str, path: str, query: Mapping[str, object], token: str | None, timeout: float) -> Any:
    """The decoded JSON answer of GET base_url + path (`None` query values are left out)."""
    params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    request = urllib.request.Request(f"{base_url.rstrip('/')}{path}" + (f"?{params}" if params else ""))
    request.add_header("Accept", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = str(exc.reason)
        raise AdminRefused(exc.code, message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise AdminUnreachable(f"cannot reach {base_url}: {getattr(exc, 'reason', exc)}") from None
