"""``lifelong check-config --connect``: would this config start here, and what would the daemon find?

The config alone says little of the cluster and the machine it meets. This looks, without changing anything the
daemon relies on, at what makes a start fail or go wrong later: the cluster and the topics (their partitions and
topic IDs), the dead-letter topics (missing ones hold checkpoints back once a record is bad), the checkpoint folder
(writable, free, which checkpoint it resumes from, or one of another model that makes the daemon refuse to start),
and the metrics port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lifelong.config import KafkaConfig, MetricsConfig, Settings

__all__ = ["Finding", "preflight"]

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    """One thing looked at (``check``), whether the daemon can live with it, and what was found."""

    check: str
    status: Status
    detail: str


def preflight(settings: Settings) -> list[Finding]:
    """Every finding, Kafka first; a ``fail`` is something the daemon would not start with or cannot work with."""
    return [*kafka_findings(settings.kafka), *checkpoint_findings(settings), metrics_finding(settings.metrics)]


def kafka_findings(cfg: KafkaConfig) -> list[Finding]:
    from lifelong.stream.admin import describe_topics

    servers = ", ".join(cfg.bootstrap_servers)
    letters = {topic: f"{topic}{cfg.dead_letter_suffix}" for topic in cfg.topics}
    try:
        found = describe_topics(cfg, [*cfg.topics, *letters.values()])
    except Exception as exc:  # noqa: BLE001 - any client error means the same here: the cluster did not answer
        return [Finding("kafka", "fail", f"cannot reach {servers} ({exc})")]
    out = [Finding("kafka", "ok", f"{servers} answers")]
    for topic in cfg.topics:
        info = found.get(topic)
        if info is None:
            out.append(Finding(f"topic {topic}", "warn", "not on the cluster (or not visible to these credentials): "
                               "the daemon waits for it"))
        else:
            identity = (f"topic ID {info.topic_id}" if info.topic_id else
                        "no topic ID (Kafka before 2.8): a topic deleted and created again cannot be told apart")
            out.append(Finding(f"topic {topic}", "ok", f"{info.partitions} partitions, {identity}"))
    for letter in letters.values():
        info = found.get(letter)
        if info is not None:
            out.append(Finding(f"dead-letter topic {letter}", "ok", f"{info.partitions} partitions"))
        elif cfg.create_dead_letter_topics:
            out.append(Finding(f"dead-letter topic {letter}", "ok", "missing: the daemon creates it at start "
                               "(it needs the CREATE permission)"))
        else:
            out.append(Finding(f"dead-letter topic {letter}", "warn", "missing, and kafka.create_dead_letter_topics "
                               "is off: create it, or the first bad record holds every checkpoint back"))
    return out


def checkpoint_findings(settings: Settings) -> list[Finding]:
    from lifelong.daemon.checkpoint import CheckpointStore, DirectoryInUse, DirectoryLock
    from lifelong.stream.records import format_offsets

    folder, check = settings.checkpoint.dir, "checkpoint.dir"
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), Path("/"))
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return [Finding(check, "ok", f"{folder} does not exist yet: created at start, which starts fresh")]
        return [Finding(check, "fail", f"{folder} cannot be created: {parent} is not a writable folder")]
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return [Finding(check, "fail", f"{folder} is not a writable folder")]
    try:
        DirectoryLock(folder).release()
    except DirectoryInUse as exc:
        return [Finding(check, "fail", str(exc))]
    with _quiet("lifelong.daemon.checkpoint"):  # refusals become findings, not log lines
        store = CheckpointStore(folder, keep=settings.checkpoint.keep, config_digest=settings.digest(),
                                also_accept=(settings.legacy_digest(),))
        latest = store.latest()
    if latest is not None:
        events = int(latest.state.get("counters", {}).get("events", 0))
        return [Finding(check, "ok", f"resumes from {latest.path.name}: {events:,} events learned, offsets "
                        f"{format_offsets(latest.offsets)}")]
    if store.refused_foreign:
        return [Finding(check, "fail", f"{folder} holds checkpoints of a model of another shape and none of this "
                        "one: the daemon refuses to start (restore that configuration, or use an empty folder)")]
    if store.refused:
        return [Finding(check, "warn", f"{len(store.refused)} checkpoint(s) refused ({store.refused[0]}): starts "
                        "fresh")]
    return [Finding(check, "ok", f"{folder} holds no checkpoint: starts fresh")]


def metrics_finding(cfg: MetricsConfig) -> Finding:
    if cfg.port == 0:
        return Finding("metrics.port", "ok", "0: the daemon picks a free port at start")
    with socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon's own server binds
        try:
            probe.bind((cfg.host, cfg.port))
        except OSError as exc:
            return Finding("metrics.port", "fail", f"{cfg.host}:{cfg.port}: {exc.strerror or exc} (another daemon "
                           "on it?)")
    return Finding("metrics.port", "ok", f"{cfg.host}:{cfg.port} is free")


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    target = logging.getLogger(logger)
    disabled, target.disabled = target.disabled, True
    try:
        yield
    finally:
        target.disabled = disabled
