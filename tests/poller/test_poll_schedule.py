"""The poll schedule: polls keep to a fixed grid whatever the bank's round trips."""

import pytest

from lendo_poller.actor import PollSchedule


def poll_times(schedule: PollSchedule, round_trips: list[float]) -> list[float]:
    """When each poll starts, if each answer takes the next round trip (clock starts at 0)."""
    now, starts = 0.0, []
    for round_trip in round_trips:
        now += schedule.wait(now)
        starts.append(now)
        now += round_trip
    return starts


def test_round_trips_do_not_push_later_polls_back() -> None:
    schedule = PollSchedule(first=6.0, interval=1.0)

    starts = poll_times(schedule, [0.3, 0.05, 0.9, 0.2])

    assert starts == pytest.approx([6.0, 7.0, 8.0, 9.0])


def test_a_late_answer_is_followed_at_once_but_missed_polls_are_not_made_up() -> None:
    schedule = PollSchedule(first=6.0, interval=1.0)

    # The first answer takes 2.5 s: the polls due at 7 and 8 s are past.
    starts = poll_times(schedule, [2.5, 0.1, 0.1])

    # One poll at once, then back on the grid: at most one poll per slot of the grid.
    assert starts == pytest.approx([6.0, 8.5, 9.0])
