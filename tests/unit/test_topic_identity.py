"""TopicIdentity: which topics were created again, and when the cluster's topic IDs are read (times passed in)."""

from __future__ import annotations

from lifelong.daemon.topic_identity import TopicIdentity


def identity(**ids: str) -> TopicIdentity:
    return TopicIdentity(ids, check_s=60, retry_s=2, hold_s=30)


def test_the_same_id_is_no_change_and_the_next_reading_is_a_minute_on() -> None:
    ids = identity(events="A")
    assert ids.read({"events"}, {"events": "A"}, now=100) == {}
    assert ids.verified and not ids.due(159.9) and ids.due(160)


def test_another_id_is_reported_once_and_becomes_the_known_one() -> None:
    ids = identity(events="A", clicks="C")
    assert ids.read({"events", "clicks"}, {"events": "B", "clicks": "C"}, now=0) == {"events": ("A", "B")}
    assert ids.read({"events", "clicks"}, {"events": "B", "clicks": "C"}, now=60) == {}
    assert ids.state_dict() == {"events": "B", "clicks": "C"}


def test_a_topic_not_known_yet_is_adopted_without_a_report() -> None:
    ids = identity()  # a checkpoint written before topic IDs were kept
    assert ids.read({"events"}, {"events": "A"}, now=0) == {} and ids.state_dict() == {"events": "A"}


def test_a_reading_that_lacks_a_topic_or_fails_is_taken_again_soon_and_verifies_nothing() -> None:
    ids = identity(events="A")
    assert ids.read({"events"}, {}, now=0) == {}  # deleted, not created again yet
    assert not ids.verified and ids.due(2) and not ids.due(1.9)
    assert ids.read({"events"}, None, now=2) == {}  # the reading failed
    assert not ids.verified and ids.state_dict() == {"events": "A"}
    assert ids.read({"events"}, {"events": "B"}, now=4) == {"events": ("A", "B")}
    assert ids.verified


def test_records_wait_for_a_reading_after_a_suspicion_for_hold_s_at_most() -> None:
    ids = identity(events="A")
    ids.read({"events"}, {"events": "A"}, now=0)
    assert not ids.holding(now=10)
    ids.suspect(now=10)  # the broker went away; it answers again, with records, at 100
    assert not ids.verified and ids.due(10)
    assert ids.holding(now=100) and ids.holding(now=129.9)  # the wait counts from the first fetch that waits
    assert not ids.holding(now=130.1)  # IDs that cannot be read do not stop learning for ever
    ids.read({"events"}, {"events": "A"}, now=131)
    ids.suspect(now=140)
    assert ids.holding(now=141) and ids.holding(now=170)  # a new suspicion waits its own hold_s


def test_a_broker_without_topic_ids_verifies_and_keeps_nothing() -> None:
    ids = identity()
    assert ids.read({"events"}, {"events": None}, now=0) == {}
    assert ids.verified and ids.state_dict() == {}


def test_a_reading_of_no_topic_verifies_nothing() -> None:
    """A member holding nothing (joining the group again after an outage) reads no topic: the reading at its
    assignment must still decide, so the records fetched then wait for it."""
    ids = identity(events="A")
    ids.read({"events"}, {"events": "A"}, now=0)
    ids.suspect(now=10)
    assert ids.read(set(), {}, now=11) == {} and not ids.verified
    assert ids.due(13) and not ids.due(12.9)  # tried again in retry_s
    assert ids.holding(now=14)
