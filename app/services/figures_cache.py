"""Figures of large pools, reused for a few seconds instead of counted on every page.

A pool page counts its tasks by kind, its finished tasks and its answers. Over a few
thousand tasks that is a millisecond; over half a million it is a scan of a quarter of a
second per figure, and twenty requesters polling the page every three seconds would keep a
core busy counting. So a figure computed over a *large* pool (the caller says what large
is) is kept for ``FRESH_S`` seconds, and while one request recounts it the others are
answered with the previous figure instead of waiting or counting too. Figures of small
pools are never kept: they are exact on every page, as tests and small pools expect.

A figure that is slow to count is kept longer: ``COST_SHARE`` times as long as its count
took (at most ``MAX_FRESH_S``), so recounting a half-million-task pool's figures takes a
small share of a core however often its page is polled.

Only what pages show goes through here; money decisions (launch, pay, reserve) always
count afresh. The cache lives in the process; several web processes each keep their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

FRESH_S = 5.0
COST_SHARE = 20  # a figure is kept at least this many times as long as its count took
MAX_FRESH_S = 30.0
MAX_ENTRIES = 2048


@dataclass
class _Entry:
    value: Any
    fresh_until: float
    refreshing: bool = False


class FiguresCache:
    """Keyed figures: ``get(key, compute, keep=...)``; ``keep(value)`` says "large"."""

    def __init__(
        self,
        *,
        fresh_s: float = FRESH_S,
        max_fresh_s: float = MAX_FRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.fresh_s = fresh_s
        self.max_fresh_s = max(fresh_s, max_fresh_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}

    def get(self, key: Hashable, compute: Callable[[], T], *, keep: Callable[[T], bool]) -> T:
        """The kept figure while fresh (or while another caller recounts it), else
        ``compute()``, kept when ``keep`` says so (for ``fresh_s``, or ``COST_SHARE``
        times as long as ``compute()`` took, up to ``max_fresh_s``)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (now < entry.fresh_until or entry.refreshing):
                return entry.value
            if entry is not None:
                entry.refreshing = True
        try:
            value = compute()
        except BaseException:
            with self._lock:
                if entry is not None:
                    entry.refreshing = False
            raise
        counted = self._clock()
        fresh_s = min(self.max_fresh_s, max(self.fresh_s, COST_SHARE * (counted - now)))
        with self._lock:
            if keep(value):
                if len(self._entries) >= MAX_ENTRIES and key not in self._entries:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = _Entry(value, counted + fresh_s)
            else:
                self._entries.pop(key, None)
        return value

    def forget(self, key: Hashable) -> None:
        """Drop a kept figure (the next ``get`` counts afresh)."""
        with self._lock:
            self._entries.pop(key, None)

    def forget_pool(self, pool_id: int) -> None:
        """Drop every kept figure of a pool (keys are ``(what, pool_id, ...)``): after a
        change its owner made and expects to see at once."""
        with self._lock:
            for key in [k for k in self._entries if isinstance(k, tuple) and k[1:2] == (pool_id,)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


page_figures = FiguresCache()
