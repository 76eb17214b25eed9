"""End to end: reviewing as a team (issue 13, parts 3 to 7) — request changes, what changed, decision
deadlines, partners in a Slack Connect channel, and four eyes.

Each test runs the real app over HTTP against the fake Slack and fake Choppity and asserts on what
Slack received (cards, modals, ephemerals, thread replies, the queue, the Home tab) and what the
database holds. The provider-neutral parts also run against Reap in tests/test_provider_contract.py.

Cast: U_ANA is an approver by id, U_BOB through the S_LEADS group, U_CAROL is not an approver, U_ERIN
imports drafts. U_PARTNER and U_STRANGER click from a partner's workspace (T_PARTNER) through Slack
Connect; only U_PARTNER is listed in APPROVERS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import Session, col, select

from bot.domain.forms import FieldId
from bot.models import Lease, Post, PostVersion, utcnow
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import FakeSlack
from tests.harness import (
    Greenlight,
    SlackDriver,
    audit,
    audit_details,
    base_env,
    buttons,
    card,
    card_up,
    cards_in_channel,
    db_post,
    live_markup_problems,
    publish_calls,
    replies_about,
    text_of,
    thread,
    wait_until,
)

TEAM = {"APPROVERS": "U_ANA,S_LEADS"}
PARTNER_TEAM = "T_PARTNER"
PARTNER_ORG = {"id": "E_PARTNER", "name": "Partner Org"}


class Clock:
    """The app's time: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


Start = Callable[..., tuple[Greenlight, SlackDriver]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def team(fake_slack: FakeSlack, fake_choppity: FakeChoppity, database_url: str, clock: Clock) -> Iterator[Start]:
    """Start Greenlight (on the test's clock) with the given settings; S_LEADS holds U_BOB."""
    fake_slack.add_usergroup("S_LEADS", ["U_BOB"])
    started: list[Greenlight] = []

    def start(**settings: str) -> tuple[Greenlight, SlackDriver]:
        app = Greenlight(base_env(fake_slack, fake_choppity, database_url, **settings), clock=clock).start()
        started.append(app)
        return app, SlackDriver(app, fake_slack)

    yield start
    for app in started:
        app.stop()


# -- helpers -------------------------------------------------------------------------------------------


def chosen(value: str) -> dict[str, Any]:
    return {"type": "radio_buttons", "selected_option": {"value": value}}


def typed(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def answer(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json()) if response.text.strip() not in ("", "{}") else {}


def told(fake_slack: FakeSlack, user: str, count: int) -> str:
    wait_until(lambda: len(fake_slack.ephemerals(user)) >= count, message=f"{count} ephemeral(s) for {user}")
    return text_of(fake_slack.ephemerals(user)[-1])


def request_changes(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, post_id: int, user: str, reason: str,
                    note: str | None = None, **who: Any) -> dict[str, Any]:
    assert slack.click(ActionId.REQUEST_CHANGES, post_id, user=user, **who).status_code == 200
    view = slack.latest_view(ViewId.REQUEST_CHANGES, post_id=post_id)
    values = {FieldId.CHANGE_REASON: chosen(reason), FieldId.CHANGE_NOTE: typed(note)}
    body = answer(slack.submit(view, user=user, values=values, **who))
    fake_slack.close_view(view["id"])
    app.settle()
    return body


def edit(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, post_id: int, user: str, **fields: str) -> None:
    assert slack.click(ActionId.EDIT, post_id, user=user).status_code == 200
    view = slack.latest_view(ViewId.EDIT, post_id=post_id)
    ids = {"caption": FieldId.CAPTION, "title": FieldId.TITLE}
    body = answer(slack.submit(view, user=user, values={ids[k]: typed(v) for k, v in fields.items()}))
    assert body == {}, body
    fake_slack.close_view(view["id"])
    app.settle()


def queue_text(slack: SlackDriver, fake_slack: FakeSlack, user: str = "U_ANA") -> tuple[str, dict[str, Any]]:
    _, url = slack.command("queue", user=user)
    wait_until(lambda: bool(fake_slack.responses(url)), message="queue reply")
    reply = fake_slack.responses(url)[-1]
    return text_of(reply["blocks"]), reply


def home_text(slack: SlackDriver, fake_slack: FakeSlack, user: str = "U_BOB") -> str:
    before = len(fake_slack.calls("views.publish"))
    slack.event({"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"})
    wait_until(lambda: len(fake_slack.calls("views.publish")) > before, message="home published")
    return text_of(fake_slack.home_view(user))


def versions(app: Greenlight, post_id: int) -> list[PostVersion]:
    with Session(app.services.engine) as session:
        rows = list(session.exec(select(PostVersion).where(PostVersion.post_id == post_id)
                                 .order_by(col(PostVersion.version))).all())
        for row in rows:
            session.expunge(row)
        return rows


# -- 3. request changes ----------------------------------------------------------------------------------


def test_request_changes_sends_the_draft_back_until_the_next_edit(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM, REQUIRED_APPROVALS="2")
    clip = fake_choppity.add_clip(["linkedin"])
    _, url = slack.command(f"clip {clip}", user="U_ERIN")  # U_ERIN brings the draft in
    wait_until(lambda: bool(fake_slack.responses(url)), message="import summary")
    app.settle()
    remote = fake_choppity.posts(clip)[0]
    post_id = db_post(app, remote["id"]).id
    assert post_id is not None
    slack.click(ActionId.APPROVE, post_id, user="U_ANA")
    app.settle()

    # The modal: a fixed list of reasons and a note.
    slack.click(ActionId.REQUEST_CHANGES, post_id, user="U_BOB")
    view = slack.latest_view(ViewId.REQUEST_CHANGES, post_id=post_id)
    reason_block = next(b for b in view["blocks"] if b.get("block_id") == FieldId.CHANGE_REASON)
    assert [o["value"] for o in reason_block["element"]["options"]] == [
        "tone", "claim", "wrong_asset", "wrong_account", "timing", "other"]
    assert [o["text"]["text"] for o in reason_block["element"]["options"]] == [
        "Tone", "Claim to check", "Wrong asset", "Wrong account", "Timing", "Other"]

    # Validation answers inline, and records nothing.
    for values, field, words in (
        ({}, FieldId.CHANGE_REASON, "Pick what needs to change"),
        ({FieldId.CHANGE_REASON: chosen("not-a-reason")}, FieldId.CHANGE_REASON, "Pick what needs to change"),
        ({FieldId.CHANGE_REASON: chosen("other")}, FieldId.CHANGE_NOTE, "Say what should change"),
        ({FieldId.CHANGE_REASON: chosen("tone"), FieldId.CHANGE_NOTE: typed("x" * 501)}, FieldId.CHANGE_NOTE, "500"),
        ({FieldId.CHANGE_REASON: chosen("tone"), FieldId.CHANGE_NOTE: typed("bad \x00 byte")}, FieldId.CHANGE_NOTE,
         "characters Slack can't store"),
    ):
        body = answer(slack.submit(view, user="U_BOB", values=values))
        assert body["response_action"] == "errors" and words in body["errors"].get(field, ""), (values, body)
    app.settle()
    assert db_post(app, remote["id"]).changes_requested_by is None
    assert not [a for a in audit(app, post_id) if a[1] == "request_changes"]

    # Accepted: the card, the thread, the record.
    note = "Too salesy for LinkedIn <!channel> & drop the last hashtag"
    body = answer(slack.submit(view, user="U_BOB", values={FieldId.CHANGE_REASON: chosen("tone"),
                                                           FieldId.CHANGE_NOTE: typed(note)}))
    assert body == {}
    fake_slack.close_view(view["id"])
    app.settle()
    message = card(fake_slack, app, remote["id"])
    shown = text_of(message)
    assert message.blocks[0]["text"]["text"] == "💼 LinkedIn · ✋ Changes requested"
    assert f"✋ *Changes requested by <@U_BOB>:* Tone — {note}" in shown
    assert "&lt;!channel&gt;" in json.dumps(message.blocks)  # the note is text, it pings nobody
    assert buttons(message) == [ActionId.EDIT, ActionId.CANCEL]
    assert "LinkedIn draft for clip" in message.text and "Changes requested" in message.text
    replies = thread(fake_slack, app, remote["id"])
    assert f"✋ <@U_BOB> requested changes: Tone — {note}" in replies[-1]
    assert "<@U_ERIN>, please edit the draft" in replies[-1]  # whoever brought the draft in
    post = db_post(app, remote["id"])
    assert (post.changes_requested_by, post.change_reason, post.change_note) == ("U_BOB", "tone", note)
    assert ("U_BOB", "request_changes", "ok", f"v1 tone: {note}") in audit_details(app, post_id)
    assert live_markup_problems(fake_slack) == []

    # Approve, Publish and Schedule wait for the next edit (a stale card's click is refused too).
    n = 0
    for action in (ActionId.APPROVE, ActionId.PUBLISH, ActionId.SCHEDULE):
        n += 1
        slack.click(action, post_id, user="U_ANA")
        assert "<@U_BOB> asked for changes (Tone)" in told(fake_slack, "U_ANA", n)
    # A second request while one is open.
    slack.click(ActionId.REQUEST_CHANGES, post_id, user="U_ANA")
    assert "already asked for changes" in told(fake_slack, "U_ANA", n + 1)
    app.settle()
    assert not [v for v in fake_slack.open_views() if v.get("callback_id") in (ViewId.SCHEDULE, ViewId.REQUEST_CHANGES)]
    assert fake_choppity.calls("POST", r"/publish$") == []
    denied = [(a, d) for _, a, o, d in audit_details(app, post_id) if o == "denied"]
    assert denied == [("approve", "changes requested"), ("publish", "changes requested"),
                      ("schedule", "changes requested")]

    # Its own group in the queue and on Home.
    queue, reply = queue_text(slack, fake_slack)
    assert "Changes requested (1)" in queue and "Tone, asked by <@U_BOB>" in queue, queue
    assert "Waiting for review (0)" in queue and "with changes requested" in reply["text"]
    home = home_text(slack, fake_slack)
    assert "Changes requested (1)" in home and "Waiting for review (0)" in home
    assert home.index("Waiting for review") < home.index("Changes requested") < home.index("Scheduled")

    # The next edit resolves it, resets the approvals, and the buttons come back.
    edit(app, slack, fake_slack, post_id, "U_CAROL", caption="A calmer caption for LinkedIn")
    post = db_post(app, remote["id"])
    assert post.changes_requested_by is None and post.change_reason is None and post.content_version == 2
    assert buttons(card(fake_slack, app, remote["id"])) == [
        ActionId.EDIT, ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.CANCEL]
    assert "Approvals 0/2" in text_of(card(fake_slack, app, remote["id"]))
    last = thread(fake_slack, app, remote["id"])[-1]
    assert "<@U_CAROL> edited caption" in last and "This resolves the changes <@U_BOB> requested (Tone)" in last
    assert "Approvals were reset" in last
    assert ("U_CAROL", "request_changes", "resolved") in audit(app, post_id)
    queue, _ = queue_text(slack, fake_slack)
    assert "Waiting for review (1)" in queue and "Changes requested" not in queue


def test_the_thread_asks_the_last_editor_and_only_a_draft_can_be_sent_back(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    edited_id, edited = card_up(app, fake_choppity, "tiktok")  # by webhook: nobody imported it
    edit(app, slack, fake_slack, edited_id, "U_CAROL", caption="Carol's take #devlife")
    assert request_changes(app, slack, fake_slack, edited_id, "U_BOB", "timing") == {}
    assert "<@U_CAROL>, please edit the draft" in thread(fake_slack, app, edited["id"])[-1]

    untouched_id, untouched = card_up(app, fake_choppity, "instagram")
    assert request_changes(app, slack, fake_slack, untouched_id, "U_ANA", "wrong_asset", "Wrong clip!") == {}
    last = thread(fake_slack, app, untouched["id"])[-1]
    assert "<@U_ANA> requested changes: Wrong asset — Wrong clip!" in last and "Edit the draft to resolve it" in last

    # Once it is no longer a draft there is nothing to send back.
    queued_id, queued = card_up(app, fake_choppity, "linkedin")
    slack.click(ActionId.PUBLISH, queued_id, user="U_ANA")
    app.settle()
    assert db_post(app, queued["id"]).status == "queued"
    slack.click(ActionId.REQUEST_CHANGES, queued_id, user="U_BOB")
    assert "only be requested on a draft" in told(fake_slack, "U_BOB", 1)
    app.settle()
    assert db_post(app, queued["id"]).changes_requested_by is None


def test_two_reviewers_requesting_changes_at_once_record_one_request(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    views = []
    for user in ("U_ANA", "U_BOB"):
        slack.click(ActionId.REQUEST_CHANGES, post_id, user=user)
        views.append((user, slack.latest_view(ViewId.REQUEST_CHANGES, post_id=post_id)))
    bodies = [answer(slack.submit(view, user=user, values={FieldId.CHANGE_REASON: chosen("tone")}))
              for user, view in views]
    app.settle()
    assert bodies[0] == {} and bodies[1]["response_action"] == "errors"
    assert "already asked for changes" in bodies[1]["errors"][FieldId.CHANGE_REASON]
    assert db_post(app, remote["id"]).changes_requested_by == "U_ANA"
    assert [a for a in audit(app, post_id) if a[1] == "request_changes"] == [("U_ANA", "request_changes", "ok")]
    assert len([r for r in thread(fake_slack, app, remote["id"]) if "requested changes" in r]) == 1


# -- 4. what changed --------------------------------------------------------------------------------------


def test_every_edit_replies_with_a_word_diff_and_every_version_is_kept(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM, ALLOW_SELF_APPROVAL="true")
    original = "POV: you finally automate your Monday standup 🤖 #productivity #devlife"
    post_id, remote = card_up(app, fake_choppity, "youtube", caption=original, title="Old title")
    first = card(fake_slack, app, remote["id"])
    assert "🤖 AI draft" in text_of(first)

    # A title-only edit: the caption is still the AI's.
    edit(app, slack, fake_slack, post_id, "U_ANA", title="Automate your standup")
    reply = thread(fake_slack, app, remote["id"])[-1]
    assert "<@U_ANA> edited title" in reply and "> *Title:* ~Old title~ *Automate your standup*" in reply, reply
    assert "Caption:" not in reply
    assert "🤖 AI draft" in text_of(card(fake_slack, app, remote["id"]))

    # A caption edit: word by word, only the words around the change, and the AI mark goes.
    edit(app, slack, fake_slack, post_id, "U_BOB", caption="POV: you now automate your Monday standup 🤖 #devlife")
    reply = thread(fake_slack, app, remote["id"])[-1]
    assert "> *Caption:* POV: you ~finally~ *now* automate your Monday standup 🤖 ~#productivity~ #devlife" in reply, reply
    assert "🤖 AI draft" not in text_of(card(fake_slack, app, remote["id"]))
    assert db_post(app, remote["id"]).caption_by_ai is False

    # Only line breaks changed: said so, not a wall of identical words.
    edit(app, slack, fake_slack, post_id, "U_ANA", caption="POV: you now automate\nyour Monday standup 🤖 #devlife")
    assert "_only spacing or line breaks changed_" in replies_about(fake_slack, db_post(app, remote["id"]))[-1].text

    # Every version is kept, with who made it.
    kept = [(v.version, v.source, v.editor, v.content.get("title"), v.content["caption"]) for v in versions(app, post_id)]
    assert kept == [
        (1, "provider", None, "Old title", original),
        (2, "slack", "U_ANA", "Automate your standup", original),
        (3, "slack", "U_BOB", "Automate your standup", "POV: you now automate your Monday standup 🤖 #devlife"),
        (4, "slack", "U_ANA", "Automate your standup", "POV: you now automate\nyour Monday standup 🤖 #devlife"),
    ]
    assert versions(app, post_id)[2].summary == "caption (70 → 52 chars)"


def test_a_diff_of_hostile_or_huge_text_is_inert_and_fits_a_slack_message(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    post_id, remote = card_up(app, fake_choppity, "linkedin", caption="Launch day, short and sweet")
    hostile = "Launch day <!channel> *bold* _it_ ~gone~ `code` & <@U_EVIL> <https://evil.example|log in>"
    edit(app, slack, fake_slack, post_id, "U_ANA", caption=hostile)
    raw = replies_about(fake_slack, db_post(app, remote["id"]))[-1].text
    assert "&lt;!channel&gt;" in raw and "&amp;" in raw and "∗bold∗" in raw and "ˍitˍ" in raw and "∼gone∼" in raw
    assert "ˋcodeˋ" in raw and "*bold*" not in raw
    assert live_markup_problems(fake_slack) == []

    # A whole new caption of 3,000 characters: the reply is cut, says so, and Slack took it.
    words = " ".join(f"word{i}" for i in range(500))[:2990]
    edit(app, slack, fake_slack, post_id, "U_BOB", caption=words)
    raw = replies_about(fake_slack, db_post(app, remote["id"]))[-1].text
    assert len(raw) < 3000 and "diff shortened" in raw and raw.count("~") == 2
    assert db_post(app, remote["id"]).content["caption"] == words


def test_an_edit_made_at_the_provider_is_a_version_too_and_resolves_a_change_request(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    post_id, remote = card_up(app, fake_choppity, "linkedin", caption="The AI's words")
    request_changes(app, slack, fake_slack, post_id, "U_BOB", "tone", "Softer, please")
    fake_choppity.set_status(remote["id"], "draft", caption="Rewritten in Choppity")
    slack.click(ActionId.EDIT, post_id, user="U_CAROL")  # opening Edit re-reads the post
    slack.latest_view(ViewId.EDIT, post_id=post_id)
    app.settle()
    post = db_post(app, remote["id"])
    assert post.content_version == 2 and post.changes_requested_by is None and post.caption_by_ai is False
    assert [(v.version, v.source, v.content["caption"]) for v in versions(app, post_id)] == [
        (1, "provider", "The AI's words"), (2, "provider", "Rewritten in Choppity")]
    assert (None, "request_changes", "resolved") in audit(app, post_id)
    assert ActionId.PUBLISH in buttons(card(fake_slack, app, remote["id"]))


# -- 5. deadlines -------------------------------------------------------------------------------------------


def test_an_undecided_draft_is_overdue_and_the_approvers_are_escalated_to_once(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = team(**TEAM, DECISION_DEADLINE="48h")
    reminders = app.services.reminders
    late_id, late = card_up(app, fake_choppity, "linkedin", caption="Waiting far too long")
    done_id, done = card_up(app, fake_choppity, "instagram", caption="Decided in time")
    slack.click(ActionId.PUBLISH, done_id, user="U_ANA")
    app.settle()

    clock.offset = timedelta(hours=47)
    assert reminders.run_once() == 0
    assert "Overdue" not in text_of(card(fake_slack, app, late["id"]))
    queue, _ = queue_text(slack, fake_slack)
    assert "overdue" not in queue

    clock.offset = timedelta(hours=49)
    assert reminders.run_once() == 1
    assert reminders.run_once() == 0  # a second pass says nothing new
    app.settle()
    shown = text_of(card(fake_slack, app, late["id"]))
    due = int((db_post(app, late["id"]).created_at + timedelta(hours=48)).timestamp())
    assert f"⏰ *Overdue* — a decision was due <!date^{due}^" in shown, shown
    escalations = [r for r in thread(fake_slack, app, late["id"]) if "🚨" in r]
    assert len(escalations) == 1
    assert "<!subteam^S_LEADS> <@U_ANA>" in escalations[0] and "48 h after it arrived" in escalations[0]
    assert not [r for r in thread(fake_slack, app, done["id"]) if "🚨" in r]
    assert (None, "deadline", "overdue") in audit(app, late_id)
    assert db_post(app, late["id"]).escalated_at is not None

    queue, reply = queue_text(slack, fake_slack)
    assert "Waiting for review (1 · 1 overdue)" in queue and "⏰ *overdue*" in queue and "(1 overdue)" in reply["text"]
    home = home_text(slack, fake_slack)
    assert "Waiting for review (1 · 1 overdue)" in home and "⏰ *overdue*" in home

    # A restart (and a lease that has since lapsed) doesn't send it again.
    app.restart()
    with Session(app.services.engine) as session:
        session.execute(delete(Lease))
        session.commit()
    assert app.services.reminders.run_once() == 0
    app.settle()
    assert len([r for r in thread(fake_slack, app, late["id"]) if "🚨" in r]) == 1

    # Deciding it takes the mark off.
    slack.click(ActionId.PUBLISH, late_id, user="U_BOB")
    app.settle()
    assert "Overdue" not in text_of(card(fake_slack, app, late["id"]))


def test_an_overdue_draft_sent_back_for_changes_names_who_should_edit(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = team(APPROVERS="U_ANA", DECISION_DEADLINE="90m")
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    edit(app, slack, fake_slack, post_id, "U_CAROL", caption="Carol's version")
    request_changes(app, slack, fake_slack, post_id, "U_ANA", "claim", "Check the numbers")
    clock.offset = timedelta(minutes=91)
    assert app.services.reminders.run_once() == 1
    app.settle()
    escalation = [r for r in thread(fake_slack, app, remote["id"]) if "🚨" in r][0]
    assert "<@U_ANA>, a decision on this draft was due" in escalation and "90 min after it arrived" in escalation
    assert "Changes were requested (Claim to check) and are still waiting for an edit by <@U_CAROL>" in escalation
    queue, _ = queue_text(slack, fake_slack)
    assert "Changes requested (1 · 1 overdue)" in queue


def test_a_reminder_for_a_draft_sent_back_asks_for_the_edit(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity, clock: Clock
) -> None:
    app, slack = team(**TEAM, REMIND_AFTER_HOURS="24")
    app.services.reminders.stop()
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    edit(app, slack, fake_slack, post_id, "U_CAROL", caption="Carol's caption")
    request_changes(app, slack, fake_slack, post_id, "U_BOB", "timing", "Not before the launch")
    clock.offset = timedelta(hours=25)
    assert app.services.reminders.run_once() == 1
    app.settle()
    nudge = thread(fake_slack, app, remote["id"])[-1]
    assert nudge.startswith("*LinkedIn* · ⏰ <@U_CAROL>, the changes <@U_BOB> asked for (Timing) have been waiting for 25 h")


def test_no_deadline_means_no_escalation(team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity,
                                         clock: Clock) -> None:
    app, slack = team(**TEAM)
    _, remote = card_up(app, fake_choppity, "linkedin")
    clock.offset = timedelta(days=30)
    assert app.services.reminders.run_once() == 0
    app.settle()
    assert thread(fake_slack, app, remote["id"]) == []


# -- 6. partners in a Slack Connect channel -------------------------------------------------------------------


def partner(user: str, *, org: bool = False) -> dict[str, Any]:
    """How a click from the partner's workspace arrives: their own team id on the user (and on the team,
    with their Enterprise org's ids when they have one)."""
    if org:
        return {"team": PARTNER_TEAM, "user_team": PARTNER_ORG["id"], "enterprise": PARTNER_ORG}
    return {"team": "T1", "user_team": PARTNER_TEAM}


@pytest.mark.parametrize("org", [False, True], ids=["partner-workspace", "partner-enterprise-org"])
def test_a_listed_partner_can_act_and_an_unlisted_one_cannot(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity, org: bool
) -> None:
    fake_slack.add_user("U_PARTNER", team_id=PARTNER_TEAM)
    fake_slack.add_user("U_STRANGER", team_id=PARTNER_TEAM)
    fake_slack.add_usergroup("S_LEADS", ["U_BOB", "U_STRANGER"])  # a group can't make an outsider an approver
    app, slack = team(APPROVERS="U_ANA,S_LEADS,U_PARTNER")
    post_id, remote = card_up(app, fake_choppity, "linkedin")

    # The unlisted partner: every action refused, with why; nothing opens, nothing changes.
    n = 0
    for action in (ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.APPROVE, ActionId.REQUEST_CHANGES,
                   ActionId.CANCEL, ActionId.EDIT):
        n += 1
        assert slack.click(action, post_id, user="U_STRANGER", **partner("U_STRANGER", org=org)).status_code == 200
        assert "another organisation's workspace" in told(fake_slack, "U_STRANGER", n)
    app.settle()
    assert fake_slack.open_views() == [] and fake_choppity.calls("POST") == [] and fake_choppity.calls("PUT") == []
    denied = [(a, o) for actor, a, o in audit(app, post_id) if actor == "U_STRANGER"]
    assert denied == [(a, "denied") for a in ("publish", "schedule", "approve", "request_changes", "cancel", "edit")]
    # ... and a modal someone else opened, submitted by them: refused inline.
    slack.click(ActionId.EDIT, post_id, user="U_ANA")
    view = slack.latest_view(ViewId.EDIT, post_id=post_id)
    body = answer(slack.submit(view, user="U_STRANGER", values={FieldId.CAPTION: typed("Hijacked")},
                               **partner("U_STRANGER", org=org)))
    assert body["response_action"] == "errors" and "APPROVERS" in json.dumps(body)
    fake_slack.close_view(view["id"])
    app.settle()
    assert fake_choppity.calls("PUT") == []

    # The listed partner asks for changes, then (after our edit) publishes.
    assert request_changes(app, slack, fake_slack, post_id, "U_PARTNER", "wrong_account", "Post from our brand page",
                           **partner("U_PARTNER", org=org)) == {}
    assert "Changes requested by <@U_PARTNER>:* Wrong account" in text_of(card(fake_slack, app, remote["id"]))
    edit(app, slack, fake_slack, post_id, "U_ANA", caption="Now from the brand page")
    slack.click(ActionId.PUBLISH, post_id, user="U_PARTNER", **partner("U_PARTNER", org=org))
    app.settle()
    assert len(publish_calls(fake_choppity, remote["id"])) == 1
    assert "approved by <@U_PARTNER>" in text_of(card(fake_slack, app, remote["id"]))
    assert ("U_PARTNER", "publish", "ok") in audit(app, post_id)
    assert fake_slack.ephemerals("U_PARTNER") == []


def test_with_no_approvers_listed_only_our_own_people_may_act(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    fake_slack.add_user("U_STRANGER", team_id=PARTNER_TEAM)
    app, slack = team()  # APPROVERS empty: anyone in this organisation
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    slack.click(ActionId.PUBLISH, post_id, user="U_STRANGER", team="T1", user_team=PARTNER_TEAM)
    assert "another organisation's workspace" in told(fake_slack, "U_STRANGER", 1)
    app.settle()
    assert fake_choppity.calls("POST") == []
    slack.click(ActionId.PUBLISH, post_id, user="U_CAROL")
    app.settle()
    assert len(publish_calls(fake_choppity, remote["id"])) == 1


def test_a_partners_slash_commands_need_their_id_in_approvers(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(APPROVERS="U_ANA,U_PARTNER")
    card_up(app, fake_choppity, "linkedin", caption="Client A's secret launch")
    clip = fake_choppity.add_clip(["tiktok"])
    for text in ("queue", f"clip {clip}"):
        response, _ = slack.command(text, user="U_STRANGER", team=PARTNER_TEAM)
        assert response.status_code == 200
        assert "another organisation's workspace" in response.text, response.text
        assert "secret launch" not in response.text
    app.settle()
    assert len(cards_in_channel(fake_slack)) == 1  # nothing was imported

    # A listed partner may.
    _, url = slack.command("queue", user="U_PARTNER", team=PARTNER_TEAM)
    wait_until(lambda: bool(fake_slack.responses(url)), message="a listed partner's queue")
    assert "Waiting for review (1)" in text_of(fake_slack.responses(url)[-1]["blocks"])


# -- 7. four eyes ---------------------------------------------------------------------------------------------


def test_four_eyes_the_editor_can_neither_approve_nor_publish_nor_schedule_their_version(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)  # REQUIRED_APPROVALS=1, ALLOW_SELF_APPROVAL=false (the default)
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    edit(app, slack, fake_slack, post_id, "U_ANA", caption="Ana wrote this")
    shown = text_of(card(fake_slack, app, remote["id"]))
    assert ("🔒 Four eyes: <@U_ANA> made the last edit, so another approver must publish or schedule this version: "
            "<!subteam^S_LEADS> (not <@U_ANA>).") in shown, shown

    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    refusal = told(fake_slack, "U_ANA", 1)
    assert "You made the last edit, so someone else needs to publish this version" in refusal
    assert "four eyes" in refusal and "Who can: <!subteam^S_LEADS>." in refusal
    slack.click(ActionId.SCHEDULE, post_id, user="U_ANA")
    assert "someone else needs to schedule" in told(fake_slack, "U_ANA", 2)
    app.settle()
    assert not [v for v in fake_slack.open_views() if v.get("callback_id") == ViewId.SCHEDULE]
    # A schedule modal U_BOB opened, submitted by U_ANA: refused inline, in plain words.
    slack.click(ActionId.SCHEDULE, post_id, user="U_BOB")
    view = slack.latest_view(ViewId.SCHEDULE, post_id=post_id)
    when = int((utcnow() + timedelta(hours=3)).timestamp())
    body = answer(slack.submit(view, user="U_ANA", values={FieldId.WHEN: {"type": "datetimepicker",
                                                                          "selected_date_time": when}}))
    assert body["response_action"] == "errors"
    assert body["errors"][FieldId.WHEN].startswith("You made the last edit") and "<" not in body["errors"][FieldId.WHEN]
    fake_slack.close_view(view["id"])
    app.settle()
    assert fake_choppity.calls("POST") == []
    denied = [d for actor, a, o, d in audit_details(app, post_id) if actor == "U_ANA" and o == "denied"]
    assert denied == ["four eyes: U_ANA made the last edit"] * 3

    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    app.settle()
    assert len(publish_calls(fake_choppity, remote["id"])) == 1


def test_four_eyes_with_two_approvals_and_a_one_person_team(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(APPROVERS="U_ANA", REQUIRED_APPROVALS="2")
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    edit(app, slack, fake_slack, post_id, "U_ANA", caption="Only Ana here")
    shown = text_of(card(fake_slack, app, remote["id"]))
    assert "<@U_ANA> made the last edit and is the only approver, so nobody can approve, publish or schedule" in shown
    assert "ALLOW_SELF_APPROVAL=true" in shown
    slack.click(ActionId.APPROVE, post_id, user="U_ANA")
    refusal = told(fake_slack, "U_ANA", 1)
    assert "You made the last edit" in refusal and "nobody else is listed in APPROVERS" in refusal


def test_allow_self_approval_lets_a_one_person_team_publish_its_own_edit(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(APPROVERS="U_ANA", ALLOW_SELF_APPROVAL="true")
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    edit(app, slack, fake_slack, post_id, "U_ANA", caption="Ana wrote and ships this")
    assert "Four eyes" not in text_of(card(fake_slack, app, remote["id"]))
    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    app.settle()
    assert len(publish_calls(fake_choppity, remote["id"])) == 1
    assert fake_slack.ephemerals("U_ANA") == []
    assert db_post(app, remote["id"]).status == "queued"


def test_post_model_and_migration_agree(tmp_path: Any) -> None:
    """Migration 0005 builds exactly the tables and columns bot/models.py declares."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from bot.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diff if "post_version" in repr(d) or "post" in repr(d)] == []
    assert {c.name for c in Post.__table__.columns} >= {  # type: ignore[attr-defined]
        "changes_requested_by", "changes_requested_at", "change_reason", "change_note", "caption_by_ai", "escalated_at"}
