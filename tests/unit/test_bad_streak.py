"""BadStreak: a warning once enough records in a row were dead-lettered, not before, not more often than asked."""

from __future__ import annotations

from lifelong.daemon.bad_streak import BadStreak


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_warns_once_the_streak_is_long_enough_and_names_the_reasons():
    streak = BadStreak(threshold=10, every_s=60, clock=Clock())
    assert streak.observe(0, ["invalid_json"] * 6) is None
    said = streak.observe(0, ["invalid_json"] * 3 + ["empty_value"])
    assert said == "the last 10 records were all dead-lettered (invalid_json 9, empty_value 1)"


def test_a_good_row_ends_the_streak():
    streak = BadStreak(threshold=10, clock=Clock())
    assert streak.observe(0, ["bad_magic"] * 9) is None
    assert streak.observe(1, ["bad_magic"]) is None and streak.length == 0
    assert streak.observe(0, ["bad_magic"] * 9) is None


def test_says_it_again_only_after_every_s():
    clock = Clock()
    streak = BadStreak(threshold=5, every_s=60, clock=clock)
    assert streak.observe(0, ["truncated"] * 5)
    clock.now = 30
    assert streak.observe(0, ["truncated"] * 5) is None
    clock.now = 61
    assert streak.observe(0, ["truncated"]) == "the last 11 records were all dead-lettered (truncated 11)"
