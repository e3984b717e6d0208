"""Say so when nothing but bad records arrives: a wrong ``codec.name`` or feature count dead-letters every record,
and the counters alone do not tell a person reading the log what is wrong."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

__all__ = ["BadStreak"]


class BadStreak:
    """Counts the records dead-lettered since the last good one; :meth:`observe` returns a warning to log once
    ``threshold`` of them came in a row, at most every ``every_s`` seconds."""

    def __init__(self, threshold: int = 500, every_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.every_s = every_s
        self._clock = clock
        self._reasons: Counter[str] = Counter()
        self._said_at: float | None = None

    @property
    def length(self) -> int:
        """Bad records in a row, now."""
        return sum(self._reasons.values())

    def observe(self, good: int, reasons: Iterable[str]) -> str | None:
        """One poll's outcome: its good row count and its bad records' reasons (the poll's order is lost, so a
        poll with a good row ends the streak)."""
        if good:
            self._reasons.clear()
            return None
        self._reasons.update(reasons)
        if self.length < self.threshold:
            return None
        now = self._clock()
        if self._said_at is not None and now - self._said_at < self.every_s:
            return None
        self._said_at = now
        counts = ", ".join(f"{reason} {n:,}" for reason, n in self._reasons.most_common())
        return f"the last {self.length:,} records were all dead-lettered ({counts})"
