"""The daemon's main loop: poll, decode, dead-letter, predict-then-train, detect drift, checkpoint, commit.

At-least-once and nothing lost:

* offsets are committed to Kafka only after the checkpoint that holds their effect is on disk, and only after the
  dead-letter producer confirmed every bad record up to them;
* the daemon keeps its own fetch position per partition (``self.positions``, checked by
  :class:`~lifelong.daemon.position_guard.PositionGuard`): a record below it was already seen and is dropped, a
  fetch that starts above it is sought back once to tell a jumped client from offsets that hold no record
  (transaction markers), so the learner sees each partition's records exactly once and in order between
  checkpoints;
* decoded records wait in ``PendingRecords`` until a full micro-batch (``daemon.micro_batch``) is there; the offset
  committed for a partition never passes its oldest pending record;
* rebalance callbacks run on kafka-python's IO thread, so they only record events; this loop acts on them
  (checkpoint and commit on revocation, seek to the checkpoint's offsets on assignment);
* offsets belong to one log: the topic IDs they were learned under go into each checkpoint, and a topic found
  deleted and created again (another topic ID: read at assignment, every 15 s, and before learning on after the
  broker went away or a log went back) is learned from its start (lifelong.daemon.topic_identity);
* SIGTERM/SIGINT set a flag: the current batch finishes, a checkpoint is written, offsets committed, exit 0.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lifelong import __version__
from lifelong.config import Settings
from lifelong.daemon.bad_streak import BadStreak
from lifelong.daemon.checkpoint import CheckpointStore, DirectoryInUse, DirectoryLock
from lifelong.daemon.dead_letter_topics import DeadLetterTopics
from lifelong.daemon.factory import build_drift, build_learner, seed_everything, strategy_label, tune_for_stream
from lifelong.daemon.notify import ServiceNotifier
from lifelong.daemon.pending import PendingRecords
from lifelong.daemon.position_guard import SKIP_REASONS, PositionGuard
from lifelong.daemon.topic_identity import TopicIdentity
from lifelong.heap import frozen_heap
from lifelong.learner import resolve_device
from lifelong.metrics.exporter import DaemonMetrics, Health, MetricsServer
from lifelong.stream.prefetch import FetcherStopped
from lifelong.stream.records import Coordinates, DecodedBatch, RawRecord, TopicPartition, format_offsets

log = logging.getLogger("lifelong.daemon")

# Kafka calls in the loop are bounded so a broker outage never stalls it past the liveness timeout.
COMMIT_TIMEOUT_S = 5.0
# After a broker error the daemon reports not-ready for at least this long, even if a socket looks connected.
BROKER_ERROR_HOLD_S = 10.0
# With no partition for this long, the daemon asks the cluster why (a topic missing?) and says so; again as often.
UNASSIGNED_CHECK_S = 30.0
UNASSIGNED_CHECK_MAX_S = 600.0
# How often the topic IDs of the assigned topics are compared with the ones their offsets were learned under. A
# topic re-created while the daemon runs has records past the old position learned (twice) until then; a reading
# costs one metadata round trip on the kept admin client (about 3 ms on the embedded broker).
TOPIC_ID_CHECK_S = 15.0
# After the broker went away, fetched records wait for that reading this long at most (it is tried every 2 s).
TOPIC_ID_HOLD_S = 30.0


class StartupError(RuntimeError):
    """A setting the daemon cannot start with (a folder it cannot write, a port taken): ``key`` names it."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


@dataclass
class RunStats:
    """What a run did; returned by ``Daemon.run`` (tests and the demo summary read it)."""

    events: int = 0
    dead_letters: int = 0
    checkpoints: int = 0
    commits: int = 0
    drifts: int = 0
    seconds: float = 0.0
    resumed_from: str | None = None
    positions: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Daemon:
    """One continual learner attached to Kafka topics. ``run()`` blocks until stopped."""

    def __init__(self, settings: Settings, *, install_signal_handlers: bool = True,
                 on_batch: Callable[[Daemon, DecodedBatch], None] | None = None):
        self.settings = settings
        self.install_signal_handlers = install_signal_handlers
        self.on_batch = on_batch
        self._stop = threading.Event()
        self.stats = RunStats()
        self.pending = PendingRecords()
        self.bad_streak = BadStreak()
        self._last_broker_error = -BROKER_ERROR_HOLD_S
        self._broker_was_up = False  # at the previous readiness update
        self._unassigned_check_at: float | None = None  # when to ask why no partition is assigned
        self._said_missing: set[str] | None = None  # the missing topics last warned of
        self._unassigned_wait = UNASSIGNED_CHECK_S  # between two such checks, doubling
        self._audit = None
        self._dir_lock: DirectoryLock | None = None  # held from _setup to the end of run()
        self._checkpoint_offsets: dict[TopicPartition, int] = {}
        # what the newest checkpoint holds (offsets, events, dead letters), where it is, and the offsets committed
        self._saved: tuple[dict[TopicPartition, int], int, int] | None = None
        self._newest: Path | None = None
        self._committed: dict[TopicPartition, int] | None = None
        # partitions lost (evicted) -> the position this daemon's model had learned up to when they went
        self._positions_when_lost: dict[TopicPartition, int] = {}
        from lifelong.stream.codecs import REASONS

        self.metrics = DaemonMetrics(settings.model.max_classes, settings.metrics.window, dead_letter_reasons=REASONS,
                                     detectors=tuple(spec.label for spec in settings.drift.detectors),
                                     offset_skip_reasons=SKIP_REASONS, topics=tuple(settings.kafka.topics))
        self.guard = PositionGuard(on_skip=lambda reason, count: self.metrics.offsets_skipped.labels(reason).inc(count),
                                   on_rewind=lambda _tp: self.topic_ids.suspect(time.monotonic()),
                                   log_start=self._log_start)
        self.topic_ids = TopicIdentity(check_s=TOPIC_ID_CHECK_S, hold_s=TOPIC_ID_HOLD_S)
        self.read_topic_ids: Callable[[set[str]], dict[str, str | None]] = self._cluster_topic_ids  # tests swap it
        self.read_log_starts: Callable[[set[TopicPartition]], dict[TopicPartition, int]] = (
            lambda partitions: self.admin.log_start_offsets(partitions))  # tests swap it
        from lifelong.stream.admin import ClusterAdmin

        self.admin = ClusterAdmin(settings.kafka)  # one client for every question the daemon asks the cluster
        self.dead_letter_topics = DeadLetterTopics(settings.kafka, self.admin.create_missing_topics)
        self.health = Health(settings.metrics.liveness_timeout_s)
        self.server: MetricsServer | None = None
        self.notifier = ServiceNotifier()
        self.learner = None
        self.drift = None
        self.reactor = None
        self.consumer = None
        self.dead_letters = None
        self._schedule = sorted(set(settings.boundaries.schedule))
        self._next_every = settings.boundaries.every_events

    @property
    def positions(self) -> dict[TopicPartition, int]:
        """The next offset to learn per partition (the guard's)."""
        return self.guard.positions

    @positions.setter
    def positions(self, positions: dict[TopicPartition, int]) -> None:
        self.guard.positions = dict(positions)

    # ---- control -------------------------------------------------------------------------------------------
    def stop(self, *_: Any) -> None:
        """Ask the loop to finish its batch, checkpoint, commit and return."""
        if not self._stop.is_set():
            log.info("stop requested: finishing the current batch")
            self.notifier.stopping()
        self._stop.set()

    @property
    def metrics_url(self) -> str | None:
        return self.server.url if self.server else None

    # ---- setup ---------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        s = self.settings
        seed_everything(s.daemon.seed, s.daemon.deterministic)
        device = resolve_device(s.daemon.device)
        self.learner = build_learner(s, device)
        self.metrics.set_build_info(__version__, strategy_label(s), str(device))
        self.drift, self.reactor = build_drift(s)
        if s.daemon.audit_log is not None:
            with _startup("daemon.audit_log", s.daemon.audit_log):
                s.daemon.audit_log.parent.mkdir(parents=True, exist_ok=True)
                self._audit = s.daemon.audit_log.open("a")
        with _startup("checkpoint.dir", s.checkpoint.dir):
            self.store = CheckpointStore(s.checkpoint.dir, keep=s.checkpoint.keep, config_digest=s.digest(),
                                         also_accept=(s.legacy_digest(),))
            try:
                self._dir_lock = DirectoryLock(s.checkpoint.dir)
            except DirectoryInUse as exc:
                raise StartupError("checkpoint.dir", str(exc)) from exc
        self._restore()
        with _startup("metrics.port", f"{s.metrics.host}:{s.metrics.port}"):
            self.server = MetricsServer(self.metrics, self.health, s.metrics.host, s.metrics.port).start()
        log.info("metrics on %s/metrics (also /livez, /readyz)", self.server.url)

    def _restore(self) -> None:
        checkpoint = self.store.latest()
        if checkpoint is None and self.store.refused_foreign:
            # a new model here would soon prune the old one's checkpoints (checkpoint.keep): never silently
            raise StartupError("checkpoint.dir", f"{self.store.directory} holds the checkpoints of a model of another "
                               "shape (the model, the replay memory or the strategies changed) and none of this one: "
                               "restore that configuration, or point checkpoint.dir at an empty folder to start a "
                               "new model")
        if checkpoint is None:
            log.info("no checkpoint in %s: starting fresh", self.store.directory)
            return
        state = checkpoint.state
        self.learner.load_state_dict(state["learner"])
        self.metrics.load_state_dict(state["metrics"])
        self.drift.load_state_dict(state["drift"])
        counters = state.get("counters", {})
        self.stats.events = int(counters.get("events", 0))
        self._restore_counters(counters)
        self._checkpoint_offsets = checkpoint.offsets
        self.positions = dict(self._checkpoint_offsets)
        self._saved, self._newest = (dict(self._checkpoint_offsets), self.stats.events, 0), checkpoint.path
        self.topic_ids.load_state_dict(state.get("topic_ids", {}))
        self.stats.resumed_from = checkpoint.path.name
        log.info("resumed from %s: %d events learned, offsets %s", checkpoint.path.name,
                 self.learner.events_seen, format_offsets(self._checkpoint_offsets))

    def _restore_counters(self, counters: dict[str, Any]) -> None:
        """Counters continue from the checkpoint so dashboards see no reset across restarts."""
        predictions = counters.get("predictions")
        correct = counters.get("correct")
        if predictions is not None and correct is not None:
            for cls, (n, c) in enumerate(zip(predictions.tolist(), correct.tolist(), strict=True)):
                self.metrics.predictions.labels(str(cls)).inc(n)
                self.metrics.correct.labels(str(cls)).inc(c)
            self.metrics.events.labels("trained").inc(int(counters.get("trained", 0)))

    def _connect(self) -> None:
        """Create the Kafka clients, retrying with backoff while the broker is unreachable (never exit).

        ``kafka.client`` picks kafka-python or confluent-kafka. With ``daemon.prefetch`` > 0 the consumer runs in
        fetch processes (``daemon.fetcher: process``, lifelong.stream.fetch_process) or threads
        (lifelong.stream.prefetch) that also decode, and the learner is tuned for that split
        (lifelong.daemon.factory.tune_for_stream).
        """
        from lifelong.stream.codecs import decode_records
        from lifelong.stream.dead_letter import DeadLetterWriter
        from lifelong.stream.fetch_process import FetchProcessFailed
        from lifelong.stream.prefetch import open_stream

        d, m = self.settings.daemon, self.settings.model
        learner = self.learner
        if learner is not None:
            tune_for_stream(learner, self.settings)
        # a partial, not a closure: it must pickle when the fetcher runs in a child process
        decode = functools.partial(decode_records, codec=self._codec(), num_features=self.settings.num_features,
                                   feature_shape=None, max_classes=m.max_classes)

        delay = 0.5
        while not self._stop.is_set():
            try:
                self.consumer = open_stream(self.settings.kafka, prefetch=d.prefetch, workers=d.fetch_workers,
                                            decode=decode, process=d.fetcher == "process",
                                            shared_memory=d.shared_memory, gc_freeze=d.gc_freeze,
                                            reuse_memory=d.reuse_fetch_memory)
                if self.dead_letters is None:  # kept across a consumer restart: its letters are in flight
                    self.dead_letters = DeadLetterWriter(self.settings.kafka)
                return
            except FetchProcessFailed:
                raise  # not the broker: a retry would fail the same way
            except Exception as exc:  # noqa: BLE001 - any client error at start is retried
                self.metrics.broker_errors.inc()
                self.health.set_ready(False, f"broker unreachable: {exc}")
                log.warning("cannot reach Kafka (%s); retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                self.health.beat()
                delay = min(delay * 2, 30.0)

    # ---- the loop ------------------------------------------------------------------------------------------
    def run(self) -> RunStats:
        if self.install_signal_handlers and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        try:
            return self._run()
        finally:
            if self._dir_lock is not None:
                self._dir_lock.release()
                self._dir_lock = None

    def _run(self) -> RunStats:
        from lifelong.stream.fetch_process import refuse_when_bootstrapping

        refuse_when_bootstrapping()  # before the checkpoint folder is locked: the parent holds it
        start = time.monotonic()
        self._setup()
        self._connect()
        s = self.settings
        last_checkpoint_time = time.monotonic()
        events_at_checkpoint = self.stats.events
        last_summary = time.monotonic()
        events_at_summary = self.stats.events
        last_record_time = time.monotonic()
        with frozen_heap(s.daemon.gc_freeze):  # model, clients and imports are in place: keep the collector off them
            try:
                while not self._stop.is_set():
                    self.health.beat()
                    self.notifier.watchdog()
                    self._handle_rebalance()
                    records = self._poll()
                    self.health.beat()  # a bounded poll may have waited; the loop is alive
                    if records:
                        last_record_time = time.monotonic()
                        self._handle_records(records)
                    elif len(self.pending):
                        self._learn_pending(flush=True)  # caught up: do not hold a partial micro-batch back
                    self._update_readiness()
                    self._watch_topic_ids()
                    if not self.dead_letter_topics.done and self._broker_up():
                        self.dead_letter_topics.see_to(time.monotonic())
                    now = time.monotonic()
                    due = (self.stats.events - events_at_checkpoint >= s.checkpoint.every_events
                           or now - last_checkpoint_time >= s.checkpoint.every_seconds)
                    if due and self.positions and self.checkpoint_and_commit():
                        last_checkpoint_time, events_at_checkpoint = now, self.stats.events
                        self.health.beat()
                    if now - last_summary >= s.daemon.summary_interval_s:
                        self._summary(self.stats.events - events_at_summary, now - last_summary)
                        last_summary, events_at_summary = now, self.stats.events
                    if s.daemon.max_events is not None and self.stats.events >= s.daemon.max_events:
                        log.info("max_events=%d reached", s.daemon.max_events)
                        break
                    if s.daemon.idle_exit_s is not None and now - last_record_time >= s.daemon.idle_exit_s:
                        log.info("no record for %.0fs (idle_exit_s): stopping", s.daemon.idle_exit_s)
                        break
            finally:
                self._shutdown()
                self.stats.seconds = time.monotonic() - start
        return self.stats

    def _poll(self) -> list[RawRecord]:
        """One fetch: raw records, or (prefetching) a ``Prefetched`` already decoded. When a rebalance is queued
        ahead of the next batch, it is handled here first, so events and batches keep their order."""
        timeout_ms = self.settings.kafka.poll_timeout_ms
        try:
            deadline = time.monotonic() + timeout_ms / 1000
            self.guard.polled()
            records = self.consumer.poll(timeout_ms)
            while not records and getattr(records, "events", False) and not self._stop.is_set():
                self._handle_rebalance()
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    break
                self.guard.polled()
                records = self.consumer.poll(left_ms)
            return records
        except FetcherStopped as exc:  # killed (out of memory, say) or a bug: rebuild it where we stand
            log.error("%s: restarting the consumer at the learned positions", exc)
            self._restart_consumer()
            return []
        except Exception as exc:  # noqa: BLE001 - the broker going away must not kill the daemon
            self._broker_error("poll", exc)
            log.warning("poll failed (%s); retrying", exc)
            self._stop.wait(1.0)
            return []

    def _restart_consumer(self) -> None:
        """Close the consumer and open a new one; its assignment events seek to ``self.positions``, so nothing
        is skipped or learned twice (pending rows stay pending: the positions are past them)."""
        self.metrics.fetcher_restarts.inc()
        with contextlib.suppress(Exception):
            self.consumer.close()
        self._connect()

    def _broker_error(self, what: str, exc: BaseException) -> None:
        self._last_broker_error = time.monotonic()
        self.metrics.broker_errors.inc()
        self.health.set_ready(False, f"broker unreachable: {what} failed ({exc})")

    def _broker_up(self) -> bool:
        """No broker error in the last few seconds and the client holds a broker connection."""
        recent_error = time.monotonic() - self._last_broker_error < BROKER_ERROR_HOLD_S
        return not recent_error and self.consumer is not None and self.consumer.connected()

    def _update_readiness(self) -> None:
        assigned = self.consumer.assignment() if self.consumer else set()
        up = self._broker_up()
        if self._broker_was_up and not up:  # the cluster that answers next may be another one, fed again
            self.topic_ids.suspect(time.monotonic())
        self._broker_was_up = up
        if assigned and up:
            if not self.health.ready:
                log.info("ready: %d partitions assigned", len(assigned))
                self.notifier.ready()
            self.health.set_ready(True)
        else:
            self.health.set_ready(False, "no partitions assigned" if not assigned else "broker unreachable")
        self.metrics.ready_gauge.set(1 if self.health.ready else 0)
        self._explain_unassigned({topic for topic, _ in assigned})

    def _explain_unassigned(self, assigned_topics: set[str]) -> None:
        """A configured topic without a partition here for a while is explained, once per cause: topics the
        cluster does not have (a typo in kafka.topics, a topic not created yet), or, when they all exist, other
        members of the group holding them."""
        now = time.monotonic()
        waiting = set(self.settings.kafka.topics) - assigned_topics
        if not waiting:
            self._unassigned_check_at, self._said_missing, self._unassigned_wait = None, None, UNASSIGNED_CHECK_S
            return
        if self._unassigned_check_at is None:
            self._unassigned_check_at = now + UNASSIGNED_CHECK_S
        if now < self._unassigned_check_at or not self._broker_up():
            return
        # a standby member (more daemons than partitions) may wait for ever: ask less and less often, up to 10 min
        self._unassigned_check_at = now + self._unassigned_wait
        self._unassigned_wait = min(2 * self._unassigned_wait, UNASSIGNED_CHECK_MAX_S)
        kafka = self.settings.kafka
        try:
            missing = self.admin.missing_topics(kafka.topics) & waiting
        except Exception as exc:  # noqa: BLE001 - only an explanation: the loop goes on without it
            log.debug("could not list the cluster's topics: %s", exc)
            return
        if missing == self._said_missing:
            return
        self._said_missing = missing
        if missing:
            log.warning("topic(s) %s not on the cluster after %.0fs (or not visible to these credentials): "
                        "waiting for them (check kafka.topics, or create them)", ", ".join(sorted(missing)),
                        UNASSIGNED_CHECK_S)
        elif not assigned_topics:
            log.info("no partition assigned after %.0fs though every topic exists: other members of group %r "
                     "may hold them all (more daemons than partitions), or the group is still joining",
                     UNASSIGNED_CHECK_S, kafka.group_id)

    def _handle_rebalance(self) -> None:
        for event in self.consumer.drain_events():
            kind, partitions = event[0], set(event[1])
            if kind == "assigned":
                # our position if we still hold one, else where our model stood when the partition was lost
                # (it learned those records, though no checkpoint holds them yet), else what our newest
                # checkpoint learned up to; else the group's committed offset / auto_offset_reset apply.
                # A topic created again since is a new log: from its start
                recreated = self._read_topic_ids({topic for topic, _ in {*partitions, *self.positions}})
                self.dead_letter_topics.see_to(time.monotonic())  # the broker answers: before the first record
                known = {tp: self._resume_offset(tp) for tp in partitions if tp[0] not in recreated}
                known = {tp: offset for tp, offset in known.items() if offset is not None}
                known.update(self._from_start(recreated, partitions))
                self.positions.update(known)
                if known:
                    self._seek(known)
                log.info("assigned %s (resuming %s)", sorted(partitions), format_offsets(known))
            elif kind == "revoked":
                log.info("revoked %s: checkpoint and commit", sorted(partitions))
                self.checkpoint_and_commit()
                self._forget(partitions)
            elif kind == "lost":
                log.warning("lost %s: dropping in-flight records", sorted(partitions))
                self._positions_when_lost.update(
                    {tp: offset for tp, offset in self._learned_offsets().items() if tp in partitions})
                self._forget(partitions)

    def _cluster_topic_ids(self, topics: set[str]) -> dict[str, str | None]:
        return self.admin.topic_ids(topics)

    def _log_start(self, tp: TopicPartition) -> int | None:
        """The earliest offset ``tp`` still holds, for the guard to tell deleted records from offsets that hold
        none; None when the cluster does not answer (the gap is then taken as holding no record)."""
        try:
            return self.read_log_starts({tp}).get(tp)
        except Exception as exc:  # noqa: BLE001 - asked again at the next such gap
            log.debug("could not read the log start of %s[%d]: %s", tp[0], tp[1], exc)
            return None

    def _read_topic_ids(self, topics: set[str]) -> set[str]:
        """Those of ``topics`` deleted and created again since their offsets here were learned (the cluster gives
        them another topic ID); what this daemon held of their old log is dropped."""
        try:
            current = self.read_topic_ids(topics) if topics else {}
        except Exception as exc:  # noqa: BLE001 - read again soon; the offsets stand meanwhile
            log.debug("could not read the topic IDs of %s: %s", ", ".join(sorted(topics)), exc)
            current = None
        changed = self.topic_ids.read(topics, current, time.monotonic())
        for topic, (old, new) in sorted(changed.items()):
            self.metrics.topic_recreations.labels(topic).inc()
            held = {tp: offset for tp, offset in {**self._checkpoint_offsets, **self.positions}.items()
                    if tp[0] == topic}
            log.warning("topic %s was deleted and created again (topic ID %s, now %s): the offsets learned up to "
                        "(%s) belong to the old log; learning the new one from its start", topic, old, new,
                        format_offsets(held))
            self._checkpoint_offsets = {tp: o for tp, o in self._checkpoint_offsets.items() if tp[0] != topic}
            self._positions_when_lost = {tp: o for tp, o in self._positions_when_lost.items() if tp[0] != topic}
        return set(changed)

    def _watch_topic_ids(self, *, now: bool = False) -> bool:
        """Every TOPIC_ID_CHECK_S (``now``: at once, the broker answering): an assigned topic found created again
        is sought to its start, and what was fetched of it and not learned is dropped. True if one was."""
        if not now and (not self.topic_ids.due(time.monotonic()) or not self._broker_up()):
            return False
        assigned = self.consumer.assignment()
        restart = self._from_start(self._read_topic_ids({topic for topic, _ in assigned}), assigned)
        if restart:
            self.positions.update(restart)
            self._seek(restart)
        return bool(restart)

    def _wait_for_topic_ids(self, records: Any) -> bool:
        """After the broker went away (or a log went back), nothing is learned before the topic IDs are read
        again: a cluster that came back empty and was fed again is a new log. True when this fetch must wait: its
        partitions are sought back to where they stand, and it is fetched again."""
        now = time.monotonic()
        if not self.topic_ids.holding(now):
            return False
        if self.topic_ids.due(now) and not self._watch_topic_ids(now=True) and self.topic_ids.verified:
            return False  # read, and no topic created again: learn this fetch
        from lifelong.stream.prefetch import Prefetched

        if isinstance(records, Prefetched) and records.coords is not None:  # as _handle_records tells them apart
            runs = records.coords.runs
        else:
            runs = Coordinates.of(records.records if isinstance(records, Prefetched) else records).runs
        back = {(topic, partition): self.positions.get((topic, partition), int(offsets[0]))
                for topic, partition, offsets in runs if len(offsets)}
        self._seek(back)
        return True

    def _from_start(self, topics: set[str], partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Offset 0 for those of ``partitions``, and of the partitions held, that belong to ``topics``; what was
        fetched of them and not learned is dropped."""
        restart = {tp: 0 for tp in {*partitions, *self.positions} if tp[0] in topics}
        self._forget(set(restart))
        return restart

    def _learned_offsets(self) -> dict[TopicPartition, int]:
        """The next offset not yet learned per partition (what a checkpoint covers): pending rows were fetched
        but not learned."""
        return {**self.positions, **self.pending.first_offsets()}

    def _resume_offset(self, tp: TopicPartition) -> int | None:
        when_lost = self._positions_when_lost.pop(tp, None)
        if tp in self.positions:
            return self.positions[tp]
        candidates = [o for o in (when_lost, self._checkpoint_offsets.get(tp)) if o is not None]
        return max(candidates) if candidates else None

    def _forget(self, partitions: set[TopicPartition]) -> None:
        self.pending.drop(partitions)
        self.guard.forget(partitions)

    def _seek(self, offsets: dict[TopicPartition, int]) -> None:
        self.consumer.seek(offsets)
        self.guard.sought(offsets)

    def _seek_back(self, offsets: dict[TopicPartition, int]) -> None:
        if offsets:
            log.info("records on %s start above the position: seeking back (a jumped client, or offsets that "
                     "hold no record)", format_offsets(offsets))
            self._seek(offsets)

    def _guard(self, records: list[RawRecord]) -> list[RawRecord]:
        """Keep only the records at this daemon's positions; seek back a partition that starts above its own."""
        kept, seeks = self.guard.records(records)
        self._seek_back(seeks)
        return kept

    def _guard_runs(self, fetched: Any) -> DecodedBatch | None:
        """The guard of :meth:`_guard` on a fetch process's :class:`Coordinates`: one step per partition, not per
        record. Returns the rows to learn, or None."""
        from lifelong.stream.records import select_rows

        batch = fetched.batch
        accepted, seeks = self.guard.runs(fetched.coords.runs)
        self._seek_back(seeks)
        if sum(len(offsets) for offsets in accepted.values()) == len(fetched.coords):
            return batch
        keep = np.zeros(len(batch), dtype=bool)
        for tp, rows in batch.partition_rows().items():
            keep |= rows & np.isin(batch.offsets, accepted.get(tp, ()))
        learned = {tp: set(offsets.tolist()) for tp, offsets in accepted.items()}
        bad = [b for b in batch.bad if b.record.offset in learned.get((b.record.topic, b.record.partition), ())]
        kept = select_rows(batch, keep, bad)
        return kept if kept.total else None

    def _handle_records(self, records: list[RawRecord]) -> None:
        """Guard, decode (unless the fetcher did), dead-letter the bad, learn full micro-batches."""
        from lifelong.stream.codecs import decode_records
        from lifelong.stream.prefetch import Prefetched, filter_batch

        if self._wait_for_topic_ids(records):
            return
        if isinstance(records, Prefetched) and records.coords is not None:
            batch = self._guard_runs(records)
            if batch is None:
                return
        else:
            raw = records.records if isinstance(records, Prefetched) else records
            kept = self._guard(raw)
            if not kept:
                return
            if isinstance(records, Prefetched) and records.batch is not None:
                batch = records.batch if len(kept) == len(raw) else filter_batch(records.batch, kept)
            else:
                batch = decode_records(kept, self._codec(), num_features=self.settings.num_features,
                                       feature_shape=None, max_classes=self.settings.model.max_classes)
        reasons = [bad.reason for bad in batch.bad]
        if reasons:
            self.dead_letters.write(batch.bad)
            self.metrics.observe_dead_letters(reasons)
            self.stats.dead_letters += len(reasons)
        streak = self.bad_streak.observe(len(batch), reasons)
        if streak:
            c = self.settings.codec
            log.warning("%s: do codec.name=%s and codec.num_features=%s match what the producers write?", streak,
                        c.name, c.num_features)
        self.pending.append(batch)
        self._learn_pending(flush=False)
        if self.on_batch is not None:
            self.on_batch(self, batch)

    def _learn_pending(self, flush: bool) -> None:
        """Learn full micro-batches from the pending rows (and the remainder when ``flush``)."""
        size = self.settings.daemon.micro_batch
        while len(self.pending) and (size is None or len(self.pending) >= size or flush):
            x, y, ends = self.pending.take(size or len(self.pending))
            first = self.stats.events
            self._learn(x, y)
            if self._audit is not None:
                self._audit.write(json.dumps({"first_event": first, "events": len(y),
                                              "ends": [[t, p, o] for (t, p), o in sorted(ends.items())]}) + "\n")
                self._audit.flush()

    def _codec(self) -> Any:
        if not hasattr(self, "_codec_obj"):
            from lifelong.stream.codecs import get_codec

            c = self.settings.codec
            image = {"label_header": c.label_header, "max_pixels": self.settings.num_features}  # no larger image fits
            self._codec_obj = get_codec(c.name, **image) if c.name == "image" else get_codec(c.name)
        return self._codec_obj

    def _learn(self, x: np.ndarray, y: np.ndarray) -> None:
        """Prequential step on a decoded batch, split at scheduled boundaries."""
        start = 0
        while start < len(y):
            cut = self._next_boundary_in(len(y) - start)
            end = start + cut if cut is not None else len(y)
            if end > start:
                self._learn_chunk(x[start:end], y[start:end])
            if cut is not None:
                self.learner.boundary()
                self.metrics.boundaries.labels("schedule").inc()
                log.info("boundary (schedule) at event %d", self.stats.events)
            start = end

    def _next_boundary_in(self, n: int) -> int | None:
        """If a scheduled boundary falls within the next ``n`` events, how many events come before it."""
        position = self.stats.events
        while self._schedule and self._schedule[0] < position:
            self._schedule.pop(0)
        candidates = []
        if self._schedule:
            candidates.append(self._schedule[0])
        every = self.settings.boundaries.every_events
        if every:
            candidates.append((position // every + 1) * every if position % every else position)
        for target in sorted(candidates):
            if position <= target < position + n and target > 0:
                if self._schedule and target == self._schedule[0]:
                    self._schedule.pop(0)
                return target - position
        return None

    def _learn_chunk(self, x: np.ndarray, y: np.ndarray) -> None:
        position = self.stats.events
        ooms = self.learner.oom_events
        result = self.learner.process(x, y)
        if self.learner.oom_events > ooms:
            self.metrics.skipped_steps.labels("oom").inc(self.learner.oom_events - ooms)
        self.metrics.observe_batch(y, result.correct, result.losses, result.train_seconds)
        if result.skipped_steps:
            self.metrics.skipped_steps.labels("non_finite").inc(result.skipped_steps)
        self.stats.events += len(y)
        detections = self.drift.update(x, y, result.correct, result.losses, position)
        if detections:
            before = self.learner.boundaries
            self.reactor.apply(detections, self.learner)
            if self.learner.boundaries > before:
                self.metrics.boundaries.labels("drift").inc(self.learner.boundaries - before)
            drifts = [d for d in detections if not d.warning]  # warnings (drift.warnings: true) are logged only
            for detection in drifts:
                self.metrics.observe_drift(detection.detector, detection.timestamp)
            self.stats.drifts += len(drifts)
        replay = self.learner.plugin_metrics().get("samples_per_class")
        if replay:
            self.metrics.set_replay(replay)

    # ---- durability ----------------------------------------------------------------------------------------
    def checkpoint_and_commit(self) -> bool:
        """Checkpoint, then commit the offsets it covers. Returns False when the DLQ could not be confirmed."""
        if self.learner is None or self.consumer is None:
            return False
        omitted = self.dead_letters.omitted
        try:
            self.dead_letters.flush(timeout_s=COMMIT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - unconfirmed dead letters: do not move offsets past them
            failed = getattr(exc, "failed", None)
            if failed:  # queue them again on the fresh producer: they are retried at the next checkpoint
                self.dead_letters.write(failed)
            self._broker_error("dead-letter flush", exc)
            self.dead_letter_topics.recheck(time.monotonic())
            log.error("dead-letter topic not confirmed (%s): checkpoint and commit postponed", exc)
            return False
        finally:  # letters that arrived without their payload count even when others failed
            self.metrics.dead_letter_payloads_omitted.inc(self.dead_letters.omitted - omitted)
        offsets = self._learned_offsets()
        learned = (offsets, self.stats.events, self.stats.dead_letters)
        fresh = learned != self._saved  # an idle daemon writes no checkpoint every checkpoint.every_seconds
        if fresh:
            state = {
                "learner": self.learner.state_dict(),
                "metrics": self.metrics.state_dict(),
                "drift": self.drift.state_dict(),
                "counters": self._counter_state(),
                "topic_ids": self.topic_ids.state_dict(),
            }
            try:
                self._newest = self.store.save(state, offsets)
            except OSError as exc:  # a full or failing disk: keep learning, commit nothing the disk does not hold
                self.metrics.checkpoint_failures.inc()
                log.error("checkpoint not written to %s (%s): offsets not committed; trying again at the next "
                          "checkpoint", self.store.directory, exc.strerror or exc)
                return False
            self._saved = learned
            self._checkpoint_offsets.update(offsets)
            self.stats.checkpoints += 1
            self.metrics.checkpoint_time.set(time.time())
            self.metrics.checkpoint_bytes.set(self._newest.stat().st_size)
            log.debug("checkpoint %s at %s", self._newest.name, format_offsets(offsets))
        else:  # the newest checkpoint holds everything learned: durable as of now (an idle daemon stays green)
            self.metrics.checkpoint_time.set(time.time())
        held_in = self._newest.name  # set with _saved: by this save, an earlier one, or the restore
        try:
            if offsets and offsets != self._committed and self._broker_up():
                self.consumer.commit(offsets, timeout_ms=int(COMMIT_TIMEOUT_S * 1000))
                self._committed = offsets
                self.stats.commits += 1
            elif offsets and offsets != self._committed and fresh:
                log.warning("broker unreachable: commit deferred; offsets are safe in %s", held_in)
        except Exception as exc:  # noqa: BLE001 - the checkpoint holds the offsets; a later commit catches up
            self._broker_error("commit", exc)
            log.warning("commit failed (%s): offsets are safe in %s and will be committed later", exc, held_in)
        self.stats.positions = offsets
        return True

    def _counter_state(self) -> dict[str, Any]:
        m = self.metrics
        classes = range(m.max_classes)
        return {
            "events": self.stats.events,
            "trained": m.value("lifelong_events_total", {"outcome": "trained"}),
            "predictions": np.array([m.value("lifelong_predictions_total", {"class": str(c)}) for c in classes]),
            "correct": np.array([m.value("lifelong_predictions_correct_total", {"class": str(c)}) for c in classes]),
        }

    def _summary(self, events: int, seconds: float) -> None:
        lag = self.consumer.lag() if self.consumer else {}
        self.metrics.set_lag(lag)
        log.info(
            "events=%d rate=%.0f/s accuracy=%.3f lag=%d dead_letters=%d drifts=%d",
            self.stats.events, events / max(seconds, 1e-9), self.metrics.window_accuracy,
            sum(max(v, 0) for v in lag.values()), self.stats.dead_letters, self.stats.drifts,
            extra={"events": self.stats.events, "events_per_s": events / max(seconds, 1e-9),
                   "accuracy": self.metrics.window_accuracy},
        )

    def _shutdown(self) -> None:
        self.notifier.stopping()
        try:
            if self.positions and self.learner is not None:
                self.checkpoint_and_commit()
        finally:
            self.health.set_ready(False, "stopping")
            if self.consumer is not None:
                self.consumer.close()
            if self.dead_letters is not None:
                self.dead_letters.close()
            self.admin.close()
            if self.server is not None:
                self.server.stop()
            if self._audit is not None:
                self._audit.close()
            self.notifier.close()
        log.info("stopped after %d events (%d dead letters, %d checkpoints)", self.stats.events,
                 self.stats.dead_letters, self.stats.checkpoints)


@contextlib.contextmanager
def _startup(key: str, value: object) -> Iterator[None]:
    """An OSError while opening what setting ``key`` names becomes a StartupError that says which and why."""
    try:
        yield
    except OSError as exc:
        hint = " (another daemon on it?)" if exc.errno == errno.EADDRINUSE else ""
        raise StartupError(key, f"{value}: {exc.strerror or exc}{hint}") from exc
