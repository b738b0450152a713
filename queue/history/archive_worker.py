"""Archiving in a worker process: the memory store's serving process hands each batch over as
the engine recorded it, and a child process builds the events and writes them to the archive.

Why a process: building an event, encoding its row, summing its tallies and SQLite's insert
cost several times what routing the call did (BENCHMARKS.md, issue 14), and in the serving
process every instruction of that is one a route waits behind. Here the serving process only
encodes the batch's raw tuples (msgpack, in C) and writes them to a pipe; the child does the
rest on the other core.

The protocol, both ways a 4-byte big-endian length and a msgpack body, one request at a time:

    parent → child   [epoch, [raw, ...]]           a memory store's RawEvents
                     ["events", <JSON array, as bin>]   any other batch, as the archive stores events
    child → parent   [inserted] | ["error", text]

The child opens its own connection to the same archive (SQLite in WAL mode takes one writer at
a time; the parent keeps its own for reports). It exits when its stdin closes, so it never
outlives the serving process, even one killed with -9. What the archiver guarantees stays as it
was: a batch is acknowledged to the store only after the child answered that it committed it,
and ingest is idempotent on event id, so a child killed mid-batch loses nothing and doubles
nothing (the batch is sent again to a new child).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import sys
from collections.abc import Sequence
from typing import Final

import msgspec

from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive
from tierline.queue.history.engine_events import RawEvents, from_raw

log = logging.getLogger("tierline.history")

_LENGTH: Final = struct.Struct(">I")
_ENCODER: Final = msgspec.msgpack.Encoder()
_REPLY: Final = msgspec.msgpack.Decoder(int | list[str])


class ArchiveWorkerError(RuntimeError):
    """The worker could not commit a batch (its archive failed, or it died): nothing of the
    batch is acknowledged, and the archiver sends it again."""


class ArchiveWorker:
    """The parent's side: `ingest` has the shape of `Archive.ingest`, so it takes its place in
    an `Archiver`. The child is started on the first batch and again after it died."""

    def __init__(self, command: Sequence[str]) -> None:
        """`command`: the child's arguments after the Python executable; it runs `serve` on
        the archive it builds (router/cli/archive_worker.py, the composition root's side)."""
        self.command = tuple(command)
        self._child: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.started = 0  # children started, for /metrics-style checks and the tests

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    async def ingest(self, batch: Sequence[ev.Event]) -> int:
        if isinstance(batch, RawEvents):
            body = _ENCODER.encode((batch.epoch, batch.raw))
        else:
            body = _ENCODER.encode(("events", ev.EVENT_ENCODER.encode(list(batch))))
        async with self._lock:
            child = await self._running()
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(_LENGTH.pack(len(body)) + body)
                await child.stdin.drain()
                (length,) = _LENGTH.unpack(await child.stdout.readexactly(_LENGTH.size))
                reply = _REPLY.decode(await child.stdout.readexactly(length))
            except (OSError, asyncio.IncompleteReadError) as error:
                await self._discard()
                raise ArchiveWorkerError(
                    f"the archive worker stopped ({type(error).__name__}); the batch is sent again"
                ) from error
        if isinstance(reply, list):
            raise ArchiveWorkerError(f"the archive worker could not commit the batch: {reply[-1]}")
        return reply

    async def _running(self) -> asyncio.subprocess.Process:
        if self._child is None or self._child.returncode is not None:
            self._child = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            self.started += 1
        return self._child

    async def _discard(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()

    async def close(self) -> None:
        """Close the child's stdin and wait for it to finish (it has no batch in hand: `ingest`
        holds the lock while one is out)."""
        async with self._lock:
            child, self._child = self._child, None
            if child is None or child.stdin is None:
                return
            child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), 10)
            except TimeoutError:
                child.kill()
                await child.wait()


# --- the child -----------------------------------------------------------------------------


def decode_request(body: bytes) -> list[ev.Event]:
    """A request body as the events to ingest (pure, so the tests read it without a child)."""
    head, payload = msgspec.msgpack.decode(body)
    if head == "events":
        events: list[ev.Event] = ev.BATCH_DECODER.decode(payload)
        return events
    return [from_raw(head, raw) for raw in payload]


async def serve(archive: Archive) -> None:
    """The child's loop: requests from stdin, replies to stdout, until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    # The replies own the real stdout; anything else the process prints (a library's stray
    # print) goes to stderr instead of into the protocol.
    sys.stdout.flush()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    await archive.open()
    try:
        while True:
            try:
                (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
                body = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                return  # the parent closed the pipe (or died): nothing is in hand
            try:
                reply: object = await archive.ingest(decode_request(body))
            except Exception as error:  # the parent retries the batch; this child stays up
                reply = ["error", f"{type(error).__name__}: {error}"]
            encoded = _ENCODER.encode(reply)
            out.write(_LENGTH.pack(len(encoded)) + encoded)
            out.flush()
    finally:
        out.close()
        await archive.close()
