"""A tier file made ready for the Redis store in a child process: parsed, bucketed, packed, streamed.

A reload's CPU work (parsing every row, a bucket for each caller, each bucket packed into one
Redis argument) runs in `python -m tierline.tiers.redis_pack`, not in the router. On the
router's event loop it held every route request of that process for seconds; in a worker
thread it still did, tens of milliseconds at a time, because the thread and the loop take
turns on the GIL. A child process shares nothing with the loop but a pipe.

The child writes frames to its stdout, which the router reads as they come (so memory stays
flat and Redis stores one batch while the next is packed):
1. the summary: a 4-byte big-endian length, then a msgpack `Prepared`;
2. when the file may swap in, one frame per non-empty bucket: `>III` (bucket, callers,
   length), then the packed bucket (`pack_bucket`'s format, what `_WRITE_BUCKET` unpacks);
3. the end: `>III` (END, 0, 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import BinaryIO, Final

import msgspec

from tierline.tiers import codec
from tierline.tiers.parse import BadTierFile, Rejection, TierFileFormat, parse_tier_file
from tierline.tiers.reload import should_swap

END: Final = 0xFFFFFFFF
_LENGTH: Final = struct.Struct(">I")
_BUCKET: Final = struct.Struct(">III")
_READ_LIMIT: Final = 1 << 20


class Prepared(msgspec.Struct, kw_only=True):
    """What the child found in the file; `buckets` frames follow when `swapped`."""

    loaded: int = 0
    rejected: list[Rejection] = msgspec.field(default_factory=list)
    rejected_count: int = 0
    data_rows: int = 0
    fields: list[str] = msgspec.field(default_factory=list)
    buckets: int = 1
    swapped: bool = False
    error: str | None = None
    """A `BadTierFile` message: the file cannot be a tier file at all (nothing follows)."""
    error_line: int | None = None
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    """Callers per tier in the new table (the `tiers_reloaded` event's figures)."""


def bucket_of(caller: str, buckets: int) -> int:
    return zlib.crc32(caller.encode()) % buckets


def pack_buckets(records: Mapping[str, bytes], buckets: int) -> list[list[bytes]]:
    """Per bucket, its callers' entries: each a 4-byte length and the caller, a 4-byte length and the blob.

    The bucket's packed argument is the entries joined. CPU-bound: one CRC and two length
    prefixes per caller.
    """
    by_bucket: list[list[bytes]] = [[] for _ in range(buckets)]
    length = _LENGTH.pack
    for caller, blob in records.items():
        key = caller.encode()
        by_bucket[zlib.crc32(key) % buckets].append(length(len(key)) + key + length(len(blob)) + blob)
    return by_bucket


def write_prepared(path: Path, fmt: TierFileFormat, per_bucket: int, max_reject_ratio: float, out: BinaryIO) -> None:
    """The child's whole job: parse `path`, then write the frames to `out`."""
    try:
        with path.open("rb", buffering=1 << 20) as stream:
            parsed = parse_tier_file(stream, fmt)
    except BadTierFile as exc:
        _write_summary(out, Prepared(error=str(exc), error_line=exc.line))
        out.write(_BUCKET.pack(END, 0, 0))
        return
    swapped = should_swap(parsed.loaded, parsed.rejected_count, parsed.data_rows, max_reject_ratio)
    buckets = max(1, math.ceil(parsed.loaded / per_bucket))
    summary = Prepared(
        loaded=parsed.loaded,
        rejected=parsed.rejected,
        rejected_count=parsed.rejected_count,
        data_rows=parsed.data_rows,
        fields=list(parsed.fields.names),
        buckets=buckets,
        swapped=swapped,
        counts=codec.tier_counts(parsed.records) if swapped else {},
    )
    _write_summary(out, summary)
    if swapped:
        by_bucket = pack_buckets(parsed.records, buckets)
        parsed.records.clear()
        for bucket, entries in enumerate(by_bucket):
            if entries:
                packed = b"".join(entries)
                out.write(_BUCKET.pack(bucket, len(entries), len(packed)))
                out.write(packed)
    out.write(_BUCKET.pack(END, 0, 0))


def _write_summary(out: BinaryIO, summary: Prepared) -> None:
    body = msgspec.msgpack.encode(summary)
    out.write(_LENGTH.pack(len(body)))
    out.write(body)


class PreparedFile:
    """The child's frames as the router reads them: `summary`, then `buckets()`."""

    def __init__(self, process: asyncio.subprocess.Process, summary: Prepared) -> None:
        self._process = process
        self.summary = summary

    async def buckets(self) -> AsyncIterator[tuple[int, int, bytes]]:
        """(bucket, callers, packed bucket) for each non-empty bucket, as the child sends them."""
        stdout = self._process.stdout
        assert stdout is not None
        while True:
            try:
                bucket, callers, length = _BUCKET.unpack(await stdout.readexactly(_BUCKET.size))
                if bucket == END:
                    return
                yield bucket, callers, await stdout.readexactly(length)
            except asyncio.IncompleteReadError:
                raise await _failure(self._process) from None


@contextlib.asynccontextmanager
async def prepare(
    path: Path, fmt: TierFileFormat, per_bucket: int, max_reject_ratio: float
) -> AsyncIterator[PreparedFile]:
    """Start the child on `path`; yields once its summary has come (the file is parsed).

    Raises `BadTierFile` as parsing in this process would. The child is ended on the way out,
    whatever happened (a reload that gives up does not leave it packing).
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tierline.tiers.redis_pack",
        str(path),
        fmt,
        str(per_bucket),
        str(max_reject_ratio),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        limit=_READ_LIMIT,
    )
    try:
        assert process.stdout is not None
        try:
            (length,) = _LENGTH.unpack(await process.stdout.readexactly(_LENGTH.size))
            summary = msgspec.msgpack.decode(await process.stdout.readexactly(length), type=Prepared)
        except asyncio.IncompleteReadError:
            raise await _failure(process) from None
        if summary.error is not None:
            bad = BadTierFile(summary.error)
            bad.line = summary.error_line
            raise bad
        yield PreparedFile(process, summary)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        # Read the pipes to their end, not just wait: a pipe left unread (its reader paused,
        # full) never reports its close, and asyncio's wait() waits for that too.
        await process.communicate()


async def _failure(process: asyncio.subprocess.Process) -> RuntimeError:
    assert process.stderr is not None
    error = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
    code = await process.wait()
    return RuntimeError(f"preparing the tier file failed (exit {code}): {error[-1] if error else 'no message'}")


def main(argv: list[str]) -> int:
    path, given, per_bucket, max_reject_ratio = argv
    if given not in ("csv", "ndjson"):
        print(f"unknown tier file format {given!r}", file=sys.stderr)
        return 2
    fmt: TierFileFormat = "csv" if given == "csv" else "ndjson"
    # Batch work: on a busy machine the routers (and Redis) come first.
    with contextlib.suppress(OSError):
        os.nice(10)
    out = sys.stdout.buffer
    write_prepared(Path(path), fmt, int(per_bucket), float(max_reject_ratio), out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
