"""How late this process's event loop has been lately: the evidence that tells a slow Redis from a busy router.

A timer that should fire every `TICK_S` notes how late it actually fired. When a Redis call
misses its deadline, `RedisLink` asks `recent_max()`: a loop that was itself seconds behind
(CPU saturation, a burst larger than the process can serve) is not proof that Redis failed,
and must not open the breaker. One sleeping task per event loop; it costs ~40 wake-ups a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque

TICK_S = 0.025
WINDOW = 20  # samples kept: the last ~0.5 s (more when the loop is late, as each sample then spans longer)


class LoopLag:
    def __init__(self) -> None:
        self._samples: deque[float] = deque([0.0], maxlen=WINDOW)
        self._task: asyncio.Task[None] | None = None
        self._due = 0.0  # loop time the current tick should fire at

    def recent_max(self) -> float:
        """The worst lateness (seconds) of the loop over roughly the last half second, the current tick included."""
        loop = asyncio.get_running_loop()
        overdue = max(0.0, loop.time() - self._due) if self._task is not None else 0.0
        return max(overdue, *self._samples)

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + TICK_S
            self._task = loop.create_task(self._watch(), name="tierline-loop-lag")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                self._due = loop.time() + TICK_S
                await asyncio.sleep(TICK_S)
                self._samples.append(max(0.0, loop.time() - self._due))


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def loop_lag() -> LoopLag:
    """This event loop's watcher, started on first use."""
    loop = asyncio.get_running_loop()
    lag = _BY_LOOP.get(loop)
    if lag is None:
        lag = _BY_LOOP[loop] = LoopLag()
        lag.start()
    return lag
