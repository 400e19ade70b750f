"""Long computations written as generators that yield between steps: run at once, or a step per loop turn."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")

Steps = Generator[None, None, T]  # yields between steps, returns the result
THAW_AFTER = 60.0  # seconds the objects made by stepwise work stay out of the cyclic GC's scans, at most
_thaw: asyncio.TimerHandle | None = None
_thaw_loop: asyncio.AbstractEventLoop | None = None


def at_once(steps: Steps[T]) -> T:
    """The result of a stepwise computation, every step run now."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def in_turns(steps: Steps[T]) -> T:
    """The result of a stepwise computation, one step per turn of the event loop.

    For a second of CPU on the event loop's own thread (a bulk report's decoding, splitting, grouping): between
    its steps of a few milliseconds, every other task whose I/O is ready goes on. A worker thread would not do:
    the GIL it holds makes each of the loop's I/O waits cost a whole switch interval or more (a 100,000-row
    report decoded in a thread cut the loop's round trips from 5,000/s to 50/s).

    After each step, what the process holds is frozen (`gc.freeze`, until `THAW_AFTER`): a bulk report's millions
    of objects, made in steps, would otherwise be scanned whole by each full collection their making triggers,
    a pause of 0.1–0.2 s each, several in a row (the policy decided nothing for 1.5 s after a 100,000-row feed).
    """
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        _freeze()
        await asyncio.sleep(0)


def _freeze() -> None:
    """Move every object the cyclic GC tracks out of its scans (O(1)); they go back `THAW_AFTER` seconds after
    the first freeze and are collected then, so cyclic garbage made meanwhile is kept that long at most (a step
    right after would freeze it again before any automatic full collection ran)."""
    global _thaw, _thaw_loop
    gc.freeze()
    loop = asyncio.get_running_loop()
    if _thaw is None or _thaw_loop is not loop:  # another loop's timer (closed, say) would never run here
        _thaw, _thaw_loop = loop.call_later(THAW_AFTER, _unfreeze), loop


def _unfreeze() -> None:
    """The thaw: the frozen objects go back to the oldest generation and one full collection runs (one pause of
    0.1–0.2 s a minute at most, while a bulk report's objects are alive)."""
    global _thaw
    _thaw = None
    gc.unfreeze()
    gc.collect()
