"""The dead-letter topics exist before the first bad record needs one.

Until a bad record's dead letter is confirmed, the daemon writes no checkpoint and commits no offset past it. On a
cluster that does not create topics on first write (``auto.create.topics.enable=false``, the usual production
setting), a missing ``<topic><dead_letter_suffix>`` would so hold every checkpoint back from the first malformed
record on, until someone created it. Once the broker answers, this creates the missing ones with the broker's
default partitions and replication (``kafka.create_dead_letter_topics``), or says once which are missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lifelong.config import KafkaConfig

__all__ = ["DeadLetterTopics"]

log = logging.getLogger("lifelong.daemon")

RETRY_S = 60.0  # a creation the cluster refused is tried again this often

#: (topics, *, create) -> (created, still missing), as lifelong.stream.admin.ClusterAdmin.create_missing_topics
CreateMissing = Callable[..., tuple[set[str], set[str]]]


class DeadLetterTopics:
    """Sees to the dead-letter topics of ``cfg.topics`` once, and again after a dead letter failed; a refused
    creation is said once and tried again."""

    def __init__(self, cfg: KafkaConfig, create_missing: CreateMissing) -> None:
        self.cfg = cfg
        self._create_missing = create_missing  # the daemon's ClusterAdmin's, or a test's
        self._due: float | None = 0.0  # when to try next; None: done
        self._said: str | None = None  # the last failure said

    @property
    def done(self) -> bool:
        return self._due is None

    def recheck(self, now: float) -> None:
        """A dead letter failed: the topic may have been deleted since; see to the topics again."""
        if self._due is None:
            self._due = now

    def see_to(self, now: float) -> None:
        """Create the missing ones (or say which are missing), if due; call it with the broker answering."""
        if self._due is None or now < self._due:
            return
        wanted = {f"{topic}{self.cfg.dead_letter_suffix}" for topic in self.cfg.topics}
        try:
            created, missing = self._create_missing(wanted, create=self.cfg.create_dead_letter_topics)
        except Exception as exc:  # noqa: BLE001 - refused (no permission, a policy) or the broker flickered
            self._due = now + RETRY_S
            if str(exc) != self._said:
                self._said = str(exc)
                log.error("dead-letter topic(s) %s could not be created (%s): create them, or allow this client to "
                          "(trying again every %.0fs); until a bad record's dead letter is confirmed, no checkpoint "
                          "is written and no offset committed past it", ", ".join(sorted(wanted)), exc, RETRY_S)
            return
        self._due = None
        if created:
            log.info("created dead-letter topic(s) %s (the broker's default partitions and replication)",
                     ", ".join(sorted(created)))
        if missing:
            log.warning("dead-letter topic(s) %s not on the cluster (kafka.create_dead_letter_topics is off): unless "
                        "the cluster creates topics on first write, create them; until a bad record's dead letter "
                        "is confirmed, no checkpoint is written and no offset committed past it",
                        ", ".join(sorted(missing)))
