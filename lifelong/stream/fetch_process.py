"""Fetch and decode in a child process: the daemon's consumer interface without sharing the learner's GIL.

Why a process: kafka-python parses every record in Python. On a fetch *thread* that parsing holds the GIL, and
each torch kernel of the learner, which releases the GIL, must wait to take it back: measured on 2 CPU cores, a
busy Python thread cut the learner from 47,000 to 700 events/s, a busy process left it at 52,000
(benchmarks/RESULTS.md). A child process keeps the fetch path's Python off the learner's interpreter.

How: the child runs the thread-based :class:`lifelong.stream.prefetch.PrefetchingConsumer` (which owns the
Kafka client, keeps events in order with batches and purges revoked rows) and forwards what it yields over a
pipe: decoded batches with the records' coordinates (values are kept only for dead letters and for a batch the
child could not decode), rebalance events, and the answers to the parent's requests (commit, seek, lag,
committed). The pipe carries everything in order, so:

- a request's answer comes after every batch the child sent before running it; the parent keeps reading
  batches into its own queue while it waits, so neither side blocks the other;
- after a ``seek`` the parent drops queued rows of the partitions it moved, as the in-process version does;
- back-pressure: the child's inner queue is bounded (``depth``) and the parent's holds at most what arrived
  while it waited for an answer.

A child that dies is raised from ``poll()``, as a dead fetch thread is.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lifelong.stream.prefetch import Prefetched
from lifelong.stream.records import Coordinates, TopicPartition

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0  # spawning the child imports kafka-python and numpy: seconds on a loaded machine


def _send(conn: Any, message: tuple) -> None:
    """Send ``message``; an exception inside it that cannot be pickled travels as its text."""
    try:
        conn.send(message)
    except (TypeError, AttributeError, ValueError) as exc:  # pickling failed: nothing was written
        log.debug("unpicklable message %r: %s", message[0], exc)
        conn.send(tuple(RuntimeError(repr(v)) if isinstance(v, BaseException) else v for v in message))


def _child(conn: Any, cfg: Any, depth: int, workers: int, decode: Callable | None, overrides: dict) -> None:
    """The child's main thread: forward the inner consumer's output, run the parent's requests between polls."""
    from lifelong.stream.prefetch import open_stream

    try:
        inner = open_stream(cfg, prefetch=max(1, depth), workers=workers, decode=decode, **overrides)
    except BaseException as exc:  # noqa: BLE001 - the parent raises it from its constructor
        _send(conn, ("failed", exc))
        return
    conn.send(("ready", (inner.assignment(), inner.connected())))
    try:
        while True:
            while conn.poll():
                message = conn.recv()
                if message[0] == "close":
                    return
                _, request_id, method, args = message
                try:
                    result: Any = ("ok", getattr(inner, method)(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    result = ("error", exc)
                _send(conn, ("reply", request_id, result, (inner.assignment(), inner.connected())))
            try:
                fetched = inner.poll(50)
            except BaseException as exc:  # noqa: BLE001 - a broker error or a dead fetch thread: the parent decides
                _send(conn, ("error", exc, (inner.assignment(), inner.connected())))
                time.sleep(0.5)
                continue
            state = (inner.assignment(), inner.connected())
            if fetched.events or inner.has_events():
                conn.send(("events", inner.drain_events(), state))
            if fetched:
                if fetched.batch is not None:  # coordinates only: the guard needs no values, dead letters have theirs
                    fetched = Prefetched([], fetched.batch, coords=Coordinates.of(fetched.records))
                conn.send(("batch", fetched, state))
            else:
                conn.send(("state", None, state))
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        return  # the parent went away
    finally:
        with contextlib.suppress(Exception):
            inner.close()


class ProcessPrefetchingConsumer:
    """Same interface as :class:`lifelong.stream.prefetch.PrefetchingConsumer`, fetching in a child process.

    ``cfg`` is the ``kafka`` section; ``decode`` must be picklable (a module-level function or a partial of one).
    Raises the child's error (e.g. broker unreachable) from the constructor.
    """

    def __init__(self, cfg: Any, *, depth: int = 2, workers: int = 1, decode: Callable | None = None,
                 request_timeout_s: float = 60.0, **overrides: Any) -> None:
        context = mp.get_context("spawn")  # no fork of a process that holds torch's and the client's threads
        self._conn, child_conn = context.Pipe()
        self.request_timeout_s = request_timeout_s
        self._queue: deque[tuple[str, Any]] = deque()
        self._events: deque[Any] = deque()
        self._replies: dict[int, tuple[str, Any]] = {}
        self._ids = itertools.count()
        self._assignment: set[TopicPartition] = set()
        self._connected = True
        self._closed = False
        self._process = context.Process(target=_child, args=(child_conn, cfg, depth, workers, decode, overrides),
                                        name="lifelong-fetch-process", daemon=True)
        self._process.start()
        child_conn.close()
        if not self._conn.poll(READY_TIMEOUT_S):
            self.close()
            raise TimeoutError(f"fetch process not ready after {READY_TIMEOUT_S:.0f}s")
        kind, value = self._conn.recv()
        if kind == "failed":
            self.close()
            raise value
        self._assignment, self._connected = set(value[0]), bool(value[1])

    # ---- reading the pipe ----------------------------------------------------------------------------------
    def _read(self, timeout: float) -> bool:
        """Take one message off the pipe into the queues; False when none came within ``timeout``."""
        try:
            if not self._conn.poll(max(0.0, timeout)):
                self._check_alive()
                return False
            message = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise RuntimeError(f"fetch process stopped (exit code {self._process.exitcode})") from exc
        kind = message[0]
        state = message[-1]
        self._assignment, self._connected = set(state[0]), bool(state[1])
        if kind == "reply":
            self._replies[message[1]] = message[2]
        elif kind in ("batch", "events", "error"):
            if kind == "events":
                gone = {tp for event in message[1] if event.kind != "assigned" for tp in event.partitions}
                if gone:
                    self._purge(gone)
            self._queue.append((kind, message[1]))
        return True

    def _check_alive(self) -> None:
        if not self._closed and not self._process.is_alive():
            raise RuntimeError(f"fetch process stopped (exit code {self._process.exitcode})")

    def _purge(self, partitions: set[TopicPartition]) -> None:
        kept: deque[tuple[str, Any]] = deque()
        for kind, item in self._queue:
            if kind == "batch":
                item = item.without(partitions)
                if not item:
                    continue
            kept.append((kind, item))
        self._queue = kept

    # ---- the data path -------------------------------------------------------------------------------------
    def poll(self, timeout_ms: int | None = None) -> Prefetched:
        """The next fetched batch, waiting up to ``timeout_ms``; empty (``events`` set) when a rebalance is next."""
        deadline = time.monotonic() + (timeout_ms if timeout_ms is not None else 1000) / 1000
        while not self._queue:
            if not self._read(deadline - time.monotonic()) and time.monotonic() >= deadline:
                return Prefetched([])
        kind, value = self._queue.popleft()
        if kind == "batch":
            return value
        if kind == "events":
            self._events.extend(value)
            return Prefetched([], events=True)
        raise value  # "error": what the child's poll raised

    def drain_events(self) -> list[Any]:
        out = list(self._events)
        self._events.clear()
        return out

    def has_events(self) -> bool:
        return bool(self._events)

    # ---- requests run in the child -------------------------------------------------------------------------
    def _request(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        if self._closed:
            raise RuntimeError("consumer closed")
        request_id = next(self._ids)
        self._conn.send(("request", request_id, method, args))
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.request_timeout_s)
        while request_id not in self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"fetch process did not answer {method} within {timeout_s}s")
            self._read(left)
        status, value = self._replies.pop(request_id)
        if status == "error":
            raise value
        return value

    def commit(self, offsets: Mapping[TopicPartition, int], timeout_ms: int | None = None,
               ) -> dict[TopicPartition, int]:
        wait = None if timeout_ms is None else timeout_ms / 1000 + 2.0
        return self._request("commit", dict(offsets), timeout_ms, timeout_s=wait)

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        todo = dict(offsets)
        self._request("seek", todo)
        self._purge(set(todo))  # rows read before the seek ran: stale now

    def lag(self, timeout_s: float = 5.0) -> dict[TopicPartition, int]:
        try:
            return self._request("lag", timeout_s, timeout_s=timeout_s + 1.0)
        except TimeoutError:
            return {}

    def committed(self, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int | None]:
        return self._request("committed", list(partitions) if partitions is not None else None)

    def assignment(self) -> set[TopicPartition]:
        """Partitions held, as of the child's last message (no round trip)."""
        return set(self._assignment)

    def connected(self) -> bool:
        return self._connected

    def close(self) -> None:
        """Stop the child; it closes its consumer (commits nothing)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._conn.send(("close",))
        self._process.join(timeout=20.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5.0)
        with contextlib.suppress(Exception):
            self._conn.close()

    def __enter__(self) -> ProcessPrefetchingConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
