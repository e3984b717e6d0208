"""Which log the daemon's offsets belong to: Kafka's topic ID per topic.

Offsets name records only within one log. A topic deleted and created again under the same name starts a new log
at offset 0, and a checkpoint's offsets then point into it at records the model never saw: resuming there would
skip the new log's first records without a word (or wait, with nothing learned, until the new log grows past
them). Kafka gives every topic a UUID (its topic ID, since 2.8) that a re-created topic does not keep; the daemon
keeps the IDs its offsets were learned under in each checkpoint, compares them with the cluster's, and learns a
re-created topic from its start.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TopicIdentity"]


class TopicIdentity:
    """The topic IDs the daemon's positions were learned under, and which topics are found re-created since."""

    def __init__(self, ids: Mapping[str, str] | None = None) -> None:
        self.ids: dict[str, str] = dict(ids or {})

    def recreated(self, current: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """Topics of ``current`` (topic -> its ID on the cluster now) whose ID is not the known one: topic ->
        (known ID, current ID). Every current ID becomes the known one, so a re-creation is reported once."""
        changed = {topic: (self.ids[topic], new) for topic, new in current.items()
                   if topic in self.ids and self.ids[topic] != new}
        self.ids.update(current)
        return changed

    def state_dict(self) -> dict[str, str]:
        return dict(self.ids)
