"""Fetch and decode in child processes: the daemon's consumer interface without sharing the learner's GIL.

Why processes: kafka-python parses every record in Python. On a fetch *thread* that parsing holds the GIL, and
each torch kernel of the learner, which releases the GIL, must wait to take it back: measured on 2 CPU cores, a
busy Python thread cut the learner from 74,097 to 744 events/s, a busy process left it at 71,558
(benchmarks/gil_contention.py). Child processes keep the fetch path's Python off the learner's interpreter, and
several of them (``workers``) fetch and decode disjoint partitions in parallel.

How: each child owns one consumer (a group member, or in ``assign`` mode the partitions
:func:`lifelong.stream.prefetch.partition_owner` gives it), polls and decodes it, and sends over its pipe the
decoded batch with the records' :class:`~lifelong.stream.records.Coordinates` (values travel only in the bad
records, for the dead-letter topic), its rebalance events, and the answers to the parent's requests (commit,
seek, lag, committed), which it runs between polls. The decoded features themselves lie in one of the child's
two shared-memory blocks (:mod:`lifelong.stream.shared_blocks`): the parent copies them out as it reads the
message and hands the block back. One pipe carries a child's messages in order, so:

- a request's answer comes after every batch the child sent before running it; the parent keeps reading
  batches into its own queue while it waits, so neither side blocks the other;
- after a ``seek`` the parent drops its queued rows of the partitions moved (as the thread version does), and
  on a revocation the queued rows of the partitions gone;
- back-pressure: while the parent is busy learning it reads no message, so both blocks stay lent and the child
  waits for one with its next batch (keeping any request that comes meanwhile until that batch is sent): its
  client stops fetching.

A child that dies is raised from ``poll()``, as a dead fetch thread is. A child that dies before it is ready
raises :class:`FetchProcessFailed` from the constructor at once (not after ``READY_TIMEOUT_S``): that is a bug or
a setup error, which a retry would only repeat.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import multiprocessing as mp
import pickle
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.connection import wait
from typing import Any

from lifelong.heap import freeze
from lifelong.stream.allocator import reuse_large_buffers
from lifelong.stream.prefetch import FetcherGroup, FetcherStopped, Prefetched
from lifelong.stream.records import Coordinates, TopicPartition
from lifelong.stream.shared_blocks import BlockPool, BlockReader, BlockRef, unlink_orphans

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0  # spawning a child imports kafka-python and numpy: seconds on a loaded machine
FETCH_TIMEOUT_MS = 200  # a child's poll: the longest a request waits for it when no record comes
IDLE_STATE_S = 0.5  # an idle child still reports its assignment this often (readiness)
BLOCKS = 2  # shared-memory blocks per child: one being read by the parent, one being filled
BLOCK_WAIT_S = 0.2  # how long a child waits at a time for a block back (serving the pipe meanwhile)


class FetchProcessFailed(RuntimeError):
    """A fetch process could not start for a reason other than the broker: retrying would repeat it."""


UNGUARDED_MAIN = (
    "daemon.fetcher: process starts its fetch processes with multiprocessing's spawn, which imports the main "
    "module ({main}) again in each of them, and that module starts a daemon when imported. Put the code that "
    "starts it under `if __name__ == \"__main__\":`, or set daemon.fetcher: thread."
)


def refuse_when_bootstrapping() -> None:
    """Raise in a spawned child that is still importing its parent's main module (which then starts a daemon
    at import, with no ``__main__`` guard): without this the child would spawn children of its own, or fail with
    multiprocessing's RuntimeError, which looks like any other error at start and would be retried forever."""
    if getattr(mp.current_process(), "_inheriting", False):  # what multiprocessing checks for the same case
        module = sys.modules.get("__mp_main__") or sys.modules.get("__main__")
        main = getattr(module, "__file__", None) or "__main__"
        raise FetchProcessFailed(UNGUARDED_MAIN.format(main=main))


def _dumps(message: tuple) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Pickle protocol 5 with the arrays' memory out of band: a decoded batch's features are written to the
    pipe from where they lie instead of being copied into the pickle first."""
    buffers: list[pickle.PickleBuffer] = []
    return pickle.dumps(message, protocol=5, buffer_callback=buffers.append), buffers


def _send(conn: Any, message: tuple) -> None:
    """Send ``message`` (see :func:`_recv`); an exception inside it that cannot be pickled travels as its text."""
    try:
        head, buffers = _dumps(message)
    except (TypeError, AttributeError, ValueError, pickle.PicklingError) as exc:
        log.debug("unpicklable message %r: %s", message[0], exc)
        head, buffers = _dumps(tuple(RuntimeError(repr(v)) if isinstance(v, BaseException) else v for v in message))
    raws = [buffer.raw() for buffer in buffers]
    conn.send_bytes(struct.pack(f"<I{len(raws)}Q", len(raws), *(raw.nbytes for raw in raws)) + head)
    for raw in raws:
        conn.send_bytes(raw)


def _recv(conn: Any) -> tuple:
    """One message of :func:`_send`: out-of-band buffers land in writable memory, so arrays need no copy."""
    frame = conn.recv_bytes()
    (count,) = struct.unpack_from("<I", frame)
    sizes = struct.unpack_from(f"<{count}Q", frame, 4)
    buffers = []
    for size in sizes:
        buffer = bytearray(size)
        conn.recv_bytes_into(buffer)
        buffers.append(buffer)
    return pickle.loads(memoryview(frame)[4 + 8 * count:], buffers=buffers)


def _open(cfg: Any, index: int, workers: int, overrides: dict) -> Any:
    from lifelong.stream.consumer import open_consumer
    from lifelong.stream.prefetch import subset_consumer

    if workers > 1 and cfg.assign:
        return subset_consumer(cfg, index, workers, **overrides)
    return open_consumer(cfg, **overrides)  # one group member each (or the only consumer)


def _child(conn: Any, cfg: Any, index: int, workers: int, decode: Callable | None, overrides: dict,
           blocks_limit: int = BLOCKS, gc_freeze: bool = True, reuse_memory: bool = True) -> None:
    """One child: poll, decode, send; run the parent's requests between polls."""
    # Ctrl-C reaches the whole process group: the parent finishes its batch, commits through this child, then
    # closes it; a parent that dies leaves this child a broken pipe, and it exits
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if reuse_memory:  # before the client allocates its first fetch buffers
        reuse_large_buffers()
    try:
        consumer = _open(cfg, index, workers, overrides)
    except BaseException as exc:  # noqa: BLE001 - the parent raises it from its constructor
        _send(conn, ("failed", exc))
        return
    if gc_freeze:  # imports and client are in place, and this process lives as long as they do
        freeze()

    def state() -> tuple[set[TopicPartition], bool]:
        return set(consumer.assignment()), bool(consumer.connected())

    blocks = BlockPool(limit=blocks_limit) if blocks_limit > 0 else None  # None: features go through the pipe
    deferred: list[tuple] = []  # requests that came while a batch waited for a block: run after it is sent

    def run(message: tuple) -> None:
        _, request_id, method, args = message
        try:
            result: Any = ("ok", getattr(consumer, method)(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result = ("error", exc)
        _send(conn, ("reply", request_id, result, state()))

    def serve(timeout: float = 0.0, defer: bool = False) -> bool:
        """Handle the parent's messages waiting on the pipe (the first up to ``timeout``); False on close.
        ``defer``: keep requests for later, so that a reply never overtakes a batch already fetched."""
        while conn.poll(timeout):
            timeout = 0.0
            message = _recv(conn)
            if message[0] == "close":
                return False
            if message[0] == "free":
                if blocks is not None:
                    blocks.give_back(message[1])
            elif defer:
                deferred.append(message)
            else:
                run(message)
        return True

    def share(fetched: Prefetched) -> tuple[Prefetched, BlockRef | None] | None:
        """Move the batch's features into a block (waiting for one back from the parent); None on close."""
        batch = fetched.batch
        if blocks is None or batch is None or not len(batch) or blocks.failed is not None:
            return fetched, None
        ref = blocks.put(batch.x)
        while ref is None and blocks.failed is None:  # all blocks are with the parent: it is busy learning
            if not serve(BLOCK_WAIT_S, defer=True):
                return None
            ref = blocks.put(batch.x)
        if ref is None:
            log.warning("fetch process %d: no shared memory (%s); batches go through the pipe", index,
                        blocks.failed)
            return fetched, None
        return dataclasses.replace(fetched, batch=dataclasses.replace(batch, x=batch.x[:0])), ref

    _send(conn, ("ready", state()))
    last_sent = time.monotonic()
    try:
        while True:
            for message in deferred:
                run(message)
            deferred.clear()
            if not serve():
                return
            try:
                records = consumer.poll(FETCH_TIMEOUT_MS)
                events = consumer.drain_events()
            except Exception as exc:  # noqa: BLE001 - a broker error: the parent counts it and carries on
                _send(conn, ("error", exc, state()))
                time.sleep(0.5)
                continue
            now_state = state()
            if events:
                _send(conn, ("events", events, now_state))
                last_sent = time.monotonic()
            if records:
                coords = Coordinates.of(records)
                gone = {(t, p) for t, p, _ in coords.runs} - now_state[0]
                if gone:  # revoked while polling: drop them, their new owner has them
                    records = [r for r in records if (r.topic, r.partition) not in gone]
                    coords = coords.without(gone)
            if records:
                fetched = Prefetched(records)
                if decode is not None:
                    try:  # coordinates only: the guard needs no values, and the bad records carry theirs
                        fetched = Prefetched([], decode(records), coords=coords)
                    except Exception:  # noqa: BLE001 - the main loop decodes the records itself and sees the error
                        log.exception("decode failed in fetch process %d; the main loop will decode this batch",
                                      index)
                shared = share(fetched)
                if shared is None:
                    return
                _send(conn, ("batch", *shared, now_state))
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= IDLE_STATE_S:
                _send(conn, ("state", None, now_state))
                last_sent = time.monotonic()
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        return  # the parent went away
    finally:
        if blocks is not None:
            blocks.close()
        with contextlib.suppress(Exception):
            consumer.close()


class _Child:
    """The parent's handle on one child: its process, pipe and last reported state."""

    def __init__(self, context: Any, cfg: Any, index: int, workers: int, decode: Callable | None,
                 overrides: dict, blocks: int, gc_freeze: bool, reuse_memory: bool) -> None:
        self.index = index
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_child, args=(child_conn, cfg, index, workers, decode, overrides, blocks,
                                                            gc_freeze, reuse_memory),
                                       name=f"lifelong-fetch-{index}", daemon=True)
        self.process.start()
        child_conn.close()
        self.assignment: set[TopicPartition] = set()
        self.connected = True
        self.blocks: set[str] = set()  # its shared-memory blocks seen so far (unlinked here if it is killed)

    def wait_ready(self, timeout: float) -> None:
        """Its first message: the state it starts in, or the error it could not start with (raised here)."""
        deadline = time.monotonic() + timeout
        while not self.conn.poll(min(0.2, max(0.0, deadline - time.monotonic()))):
            if not self.process.is_alive():
                break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"fetch process {self.index} not ready after {timeout:.0f}s")
        try:
            kind, value = _recv(self.conn)
        except EOFError:  # it died before it could say anything
            self.process.join(timeout=5.0)
            raise FetchProcessFailed(
                f"fetch process {self.index} exited with code {self.process.exitcode} before it was ready (its "
                "error is on stderr above); a main module that starts the daemon outside `if __name__ == "
                "\"__main__\":` does this, see daemon.fetcher") from None
        if kind == "failed":
            raise value
        self.assignment, self.connected = set(value[0]), bool(value[1])

    def stopped(self) -> FetcherStopped:
        self.process.join(timeout=1.0)
        self.reap()
        return FetcherStopped(f"fetch process {self.index} stopped (exit code {self.process.exitcode})")

    def reap(self) -> None:
        """A child killed by a signal left its blocks behind: unlink them (one that exited unlinked its own)."""
        if self.blocks and self.process.exitcode is not None and self.process.exitcode < 0:
            unlink_orphans(self.blocks)
            self.blocks.clear()


class ProcessPrefetchingConsumer(FetcherGroup):
    """Same interface as :class:`lifelong.stream.prefetch.PrefetchingConsumer`, fetching in child processes.

    ``cfg`` is the ``kafka`` section; ``workers`` children each own a consumer (with ``workers > 1``: group
    members, or disjoint partition sets in ``assign`` mode). ``decode`` must pickle (a module-level function or
    a partial of one). ``depth`` is accepted for the interface's sake: a child runs at most ``BLOCKS`` decoded
    batches ahead (a sender thread in the child that kept ``depth`` batches ready measured no faster on 2
    cores). ``shared_memory``: decoded features travel in shared-memory blocks (lifelong.stream.shared_blocks);
    False sends them through the pipe, as a child also does once it cannot make a block. ``gc_freeze``: each
    child freezes its heap once its client is up (lifelong.heap). ``reuse_memory``: each child keeps its large
    fetch buffers for reuse instead of returning them to the kernel (lifelong.stream.allocator). Raises a child's
    error (e.g. broker unreachable) from the constructor.
    """

    def __init__(self, cfg: Any, *, depth: int = 2, workers: int = 1, decode: Callable | None = None,
                 request_timeout_s: float = 60.0, shared_memory: bool = True, gc_freeze: bool = True,
                 reuse_memory: bool = True, **overrides: Any) -> None:
        refuse_when_bootstrapping()
        context = mp.get_context("spawn")  # no fork of a process that holds torch's and the client's threads
        self.request_timeout_s = request_timeout_s
        self._queue: deque[tuple[str, Any]] = deque()
        self._events: deque[Any] = deque()
        self._replies: dict[tuple[int, int], tuple[str, Any]] = {}
        self._ids = itertools.count()
        self._purges: dict[int, set[TopicPartition]] = {}  # request id -> partitions whose queued rows it voids
        self._closed = False
        workers = max(1, workers)
        self._blocks = BlockReader(keep=2 * BLOCKS * workers)  # every child's blocks stay mapped, and one each grew
        blocks = BLOCKS if shared_memory else 0
        self.children = [_Child(context, cfg, i, workers, decode, overrides, blocks, gc_freeze, reuse_memory)
                         for i in range(workers)]
        try:
            for child in self.children:
                child.wait_ready(READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise

    # ---- reading the pipes ---------------------------------------------------------------------------------
    def _read(self, timeout: float) -> bool:
        """Take what the children sent into the queues; False when nothing came within ``timeout``."""
        by_conn = {child.conn: child for child in self.children}
        ready = wait(list(by_conn), max(0.0, timeout))
        if not ready:
            for child in self.children:
                if not self._closed and not child.process.is_alive():
                    raise child.stopped()
            return False
        for conn in ready:
            child = by_conn[conn]
            try:
                message = _recv(conn)
            except (EOFError, OSError) as exc:
                raise child.stopped() from exc
            kind, state = message[0], message[-1]
            child.assignment, child.connected = set(state[0]), bool(state[1])
            if kind == "reply":
                self._replies[(child.index, message[1])] = message[2]
                purge = self._purges.get(message[1])
                if purge:  # this child's rows queued before it ran the seek: stale now (its later ones are not)
                    self._purge(purge & child.assignment)
            elif kind == "batch":
                fetched, ref = message[1], message[2]
                if ref is not None:  # the features lie in the child's block: copy them out, hand it back
                    child.blocks.add(ref.name)
                    try:
                        x = self._blocks.take(ref)
                    except OSError as exc:  # its block is gone: the child was torn down under us
                        raise child.stopped() from exc
                    with contextlib.suppress(OSError):  # a child gone meanwhile shows on the next read
                        _send(child.conn, ("free", ref.name))
                    fetched = dataclasses.replace(fetched, batch=dataclasses.replace(fetched.batch, x=x))
                self._queue.append((kind, fetched))
            elif kind in ("events", "error"):
                if kind == "events":
                    gone = {tp for event in message[1] if event.kind != "assigned" for tp in event.partitions}
                    if gone:
                        self._purge(gone)
                self._queue.append((kind, message[1]))
        return True

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
            left = deadline - time.monotonic()
            if left <= 0:
                return Prefetched([])
            self._read(left)
        return self._deliver(*self._queue.popleft())

    # ---- requests run in every child -----------------------------------------------------------------------
    def _broadcast(self, method: str, *args: Any, timeout_s: float | None = None,
                   purge: set[TopicPartition] | None = None) -> list[Any]:
        """Run ``consumer.method(*args)`` in every child, in order with its batches; wait for all answers.
        ``purge``: as each child answers, drop its queued rows of these partitions (they came before it ran)."""
        if self._closed:
            raise RuntimeError("consumer closed")
        request_id = next(self._ids)
        if purge:
            self._purges[request_id] = set(purge)
        for child in self.children:
            _send(child.conn, ("request", request_id, method, args))
        keys = [(child.index, request_id) for child in self.children]
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.request_timeout_s)
        while not all(key in self._replies for key in keys):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"fetch processes did not answer {method} within {timeout_s}s")
            self._read(left)
        self._purges.pop(request_id, None)
        results = []
        for key in keys:
            status, value = self._replies.pop(key)
            if status == "error":
                raise value
            results.append(value)
        return results

    def commit(self, offsets: Mapping[TopicPartition, int], timeout_ms: int | None = None,
               ) -> dict[TopicPartition, int]:
        """Each child commits the partitions it holds; returns what was committed."""
        wait_s = None if timeout_ms is None else timeout_ms / 1000 + FETCH_TIMEOUT_MS / 1000 + 2.0
        merged: dict[TopicPartition, int] = {}
        for result in self._broadcast("commit", dict(offsets), timeout_ms, timeout_s=wait_s):
            merged.update(result or {})
        return merged

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        todo = dict(offsets)
        self._broadcast("seek", todo, purge=set(todo))

    def lag(self, timeout_s: float = 5.0) -> dict[TopicPartition, int]:
        merged: dict[TopicPartition, int] = {}
        try:
            for result in self._broadcast("lag", timeout_s=timeout_s):
                merged.update(result or {})
        except TimeoutError:
            return {}
        return merged

    def committed(self, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int | None]:
        wanted = set(partitions) if partitions is not None else None
        merged: dict[TopicPartition, int | None] = {}
        asked = sorted(wanted) if wanted is not None else None
        for child, result in zip(self.children, self._broadcast("committed", asked), strict=True):
            merged.update({tp: off for tp, off in (result or {}).items()
                           if tp in child.assignment and (wanted is None or tp in wanted)})
        return merged

    def fetchers(self) -> Sequence[Any]:
        return self.children

    def close(self) -> None:
        """Stop the children; each closes its consumer (commits nothing)."""
        if self._closed:
            return
        self._closed = True
        for child in self.children:
            with contextlib.suppress(Exception):
                _send(child.conn, ("close",))
        for child in self.children:
            child.process.join(timeout=20.0)
            if child.process.is_alive():
                child.process.kill()
                child.process.join(timeout=5.0)
            child.reap()
            with contextlib.suppress(Exception):
                child.conn.close()
        self._blocks.close()
