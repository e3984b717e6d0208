"""DeadLetterTopics' schedule with an in-memory cluster: once at start, again after a dead letter failed (the
topic may have been deleted since), and a refusal tried again (tests/integration/test_dead_letter_topics.py runs
it on the real broker)."""

from __future__ import annotations

from lifelong.config import KafkaConfig
from lifelong.daemon.dead_letter_topics import RETRY_S, DeadLetterTopics


class Cluster:
    def __init__(self, *topics: str, refuse: bool = False) -> None:
        self.topics, self.refuse, self.asked = set(topics), refuse, 0

    def create_missing(self, wanted: set[str], *, create: bool) -> tuple[set[str], set[str]]:
        self.asked += 1
        missing = wanted - self.topics
        if self.refuse and missing:
            raise PermissionError("not authorized to create topics")
        if create:
            self.topics |= missing
            return missing, set()
        return set(), missing


def test_created_once_then_again_after_a_dead_letter_failed() -> None:
    cluster = Cluster("events")
    topics = DeadLetterTopics(KafkaConfig(topics=["events"]), create_missing=cluster.create_missing)
    topics.see_to(now=0)
    assert topics.done and "events.dlq" in cluster.topics and cluster.asked == 1
    topics.see_to(now=100)
    assert cluster.asked == 1  # done: not asked again
    cluster.topics.discard("events.dlq")  # deleted while the daemon runs
    topics.recheck(now=200)
    assert not topics.done
    topics.see_to(now=200)
    assert topics.done and "events.dlq" in cluster.topics and cluster.asked == 2


def test_a_refusal_is_tried_again_after_retry_s() -> None:
    cluster = Cluster("events", refuse=True)
    topics = DeadLetterTopics(KafkaConfig(topics=["events"]), create_missing=cluster.create_missing)
    topics.see_to(now=0)
    topics.see_to(now=RETRY_S - 1)
    assert cluster.asked == 1 and not topics.done
    cluster.refuse = False
    topics.see_to(now=RETRY_S)
    assert cluster.asked == 2 and topics.done
