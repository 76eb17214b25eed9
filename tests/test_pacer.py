"""The per-channel pacer: after a 429, posts in that channel go out at the pace Slack asked for, for as
long as the channel stays busy, and pacing ends once the channel has been quiet for a minute."""

from __future__ import annotations

from bot.services.slackio import PACE_LAPSE, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_pacing_before_a_429() -> None:
    pacer = Pacer(Clock())
    assert [pacer.reserve("C1") for _ in range(5)] == [0.0] * 5


def test_a_busy_channel_stays_paced_past_a_minute_and_a_quiet_one_lapses() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.limited("C1", 1.0)
    assert pacer.reserve("C1") == 1.0  # Retry-After first
    clock.now += 1.0
    for _ in range(3 * int(PACE_LAPSE)):  # three minutes of posting at the pace, never a second 429
        assert pacer.reserve("C1") == 0.0
        assert pacer.reserve("C1") > 0.0  # the next slot is a second away: still paced
        clock.now += 1.0
    assert pacer.reserve("C2") == 0.0  # other channels are not affected
    clock.now += PACE_LAPSE + 1
    assert [pacer.reserve("C1") for _ in range(3)] == [0.0] * 3  # quiet for a minute: lapsed
