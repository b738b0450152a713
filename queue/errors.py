"""Refusals the engine can give, each with a machine code; the HTTP layer maps kinds to statuses."""

from __future__ import annotations


class EngineError(Exception):
    """A request the engine refuses. Raised before anything changes."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(EngineError):
    code = "not_found"


class Conflict(EngineError):
    """The request is well formed but the current state does not allow it (409)."""

    code = "invalid_state"


class Invalid(EngineError):
    """A value the engine cannot accept (422)."""

    code = "invalid_value"


class Unavailable(EngineError):
    """The store cannot be reached (503)."""

    code = "store_unavailable"


class Overloaded(Unavailable):
    """This process is too busy to serve the request in time (503 with Retry-After); the store may be fine."""

    code = "overloaded"
