"""End to end: Choppity drafts become cards, and every button does what it says."""

from __future__ import annotations

from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack, text_of
from tests.harness import CHANNEL, Greenlight, SlackDriver, wait_until


def test_clip_command_posts_one_card_per_draft(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack,
                                                fake_choppity: FakeChoppity) -> None:
    clip = fake_choppity.add_clip()
    response, response_url = slack.command(f"clip {clip}")
    assert response.status_code == 200
    assert "Looking up" in response.text
    wait_until(lambda: len(fake_slack.messages(CHANNEL)) == 4, message="4 cards")
    summary = fake_slack.responses(response_url)
    assert summary and "Posted 4 drafts" in summary[-1]["text"]
