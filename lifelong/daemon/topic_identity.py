"""Which log the daemon's offsets belong to: Kafka's topic ID per topic.

Offsets name records only within one log. A topic deleted and created again under the same name starts a new log
at offset 0, and a checkpoint's offsets then point into it at records the model never saw: resuming there would
skip the new log's first records without a word (or wait, with nothing learned, until the new log grows past
them). The same holds for a cluster that comes back empty after an outage and is fed again. Kafka gives every
topic a UUID (its topic ID, since 2.8) that a re-created topic does not keep: the daemon keeps the IDs its offsets
were learned under in each checkpoint, reads the cluster's at each assignment and every ``check_s``, and learns a
re-created topic from its start.

After the broker went away, or a log went back, the IDs are read again *before* more is learned: the records
fetched meanwhile wait (they are fetched again), for at most ``hold_s``, so that a new log is not learned from the
old log's offsets in the seconds before the next reading. A cluster whose IDs cannot be read is learned from all
the same after that; a broker without topic IDs (Kafka before 2.8) is not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["TopicIdentity"]


class TopicIdentity:
    """The topic IDs the daemon's positions were learned under, and when to read the cluster's again.

    Times are ``time.monotonic()`` seconds, passed in so the schedule can be tested without waiting."""

    def __init__(self, ids: Mapping[str, str] | None = None, *, check_s: float = 15.0, retry_s: float = 2.0,
                 hold_s: float = 30.0) -> None:
        self.ids: dict[str, str] = dict(ids or {})
        self.check_s, self.retry_s, self.hold_s = check_s, retry_s, hold_s
        self.verified = False  # the held topics' IDs were read since the start or the last suspicion
        self._since: float | None = None  # when records began to wait for a reading
        self._next = 0.0  # when to read next

    def suspect(self, now: float) -> None:
        """The broker went away, or a log went back: read the IDs again before learning more."""
        if self.verified:
            self.verified, self._since = False, None
        self._next = min(self._next, now)

    def due(self, now: float) -> bool:
        return now >= self._next

    def holding(self, now: float) -> bool:
        """Whether fetched records wait for a reading: while unverified, for at most ``hold_s``."""
        if self.verified:
            return False
        if self._since is None:
            self._since = now
        return now - self._since < self.hold_s

    def read(self, topics: Iterable[str], current: Mapping[str, str | None] | None,
             now: float) -> dict[str, tuple[str, str]]:
        """Take a reading of the cluster: ``current`` maps each topic it has to its ID (None: a broker without
        topic IDs), or is None when the reading failed. Returns the topics of ``topics`` created again since
        (topic -> (known ID, current ID)); every ID read becomes the known one, so a re-creation is reported once.
        A reading that lacks one of ``topics`` (deleted, not created again yet) is taken again in ``retry_s``; so is
        one of no topic (a group member holding nothing while it joins again), which verifies nothing."""
        wanted = set(topics)
        complete = current is not None and bool(wanted) and wanted <= set(current)
        if complete:
            self.verified, self._since = True, None
        self._next = now + (self.check_s if complete else self.retry_s)
        found = {topic: topic_id for topic, topic_id in (current or {}).items() if topic in wanted and topic_id}
        changed = {topic: (self.ids[topic], new) for topic, new in found.items()
                   if topic in self.ids and self.ids[topic] != new}
        self.ids.update(found)
        return changed

    def state_dict(self) -> dict[str, str]:
        return dict(self.ids)

    def load_state_dict(self, ids: Mapping[str, str]) -> None:
        """The IDs a checkpoint's offsets were learned under (none in one written before they were kept)."""
        self.ids = dict(ids)
