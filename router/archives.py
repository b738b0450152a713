"""Which archive a history target names: built here for the app (router/app.py) and for the
archive worker's child process (queue/history/archive_worker.py), which runs this module:

    python -m tierline.router.archives '<history target as JSON>' <time zone>

Started by `tierline serve` on the memory store, never by hand. Kept apart from the app and
the CLIs so the child imports only the archive it writes to.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

import msgspec

from tierline.queue.history.archive import Archive
from tierline.queue.history.archive_worker import serve
from tierline.router.config import HistoryTarget


def open_archive(target: HistoryTarget, timezone: str) -> Archive:
    """The archive a history target names (not yet opened)."""
    if target.kind == "sqlite":
        from tierline.queue.history.sqlite_archive import SqliteArchive

        return SqliteArchive(target.location)
    from tierline.queue.history.postgres_archive import PostgresArchive

    return PostgresArchive(target.location, schema=target.schema, day_zone=timezone)


def worker_command(target: HistoryTarget, timezone: str) -> tuple[str, ...]:
    """The arguments after the Python executable that start an archive worker for this target."""
    return ("-m", __name__, msgspec.json.encode(target).decode(), timezone)


def main(argv: Sequence[str]) -> None:
    # Ctrl-C reaches the whole process group; the child finishes when the parent closes its pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    target_json, timezone = argv
    asyncio.run(serve(open_archive(msgspec.json.decode(target_json, type=HistoryTarget), timezone)))


if __name__ == "__main__":
    main(sys.argv[1:])
