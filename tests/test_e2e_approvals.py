"""End to end: team approval rules — who may act, how many approvals, the audit trail, the queue,
the App Home tab and reminders.

Each test runs the real app over HTTP against the fake Slack and fake Choppity servers and asserts
on what Slack received (cards, ephemerals, thread replies, home views, command responses), what
Choppity received and what the database holds (`Post`, `Approval`, `AuditEvent`).

Cast: U_ANA is an approver by id, U_BOB is an approver through the S_LEADS user group, U_CAROL is
not an approver (she may still edit unless EDITORS_CAN_EDIT=false).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import event, update
from sqlmodel import Session, col, select

from bot.domain.forms import FieldId
from bot.models import Approval, Post, utcnow
from bot.services.reminders import Reminders
from bot.slack.ids import ActionId, ViewId
from tests.fakes.choppity import FakeChoppity
from tests.fakes.slack import PERMALINK_BASE, FakeSlack
from tests.harness import (
    CHANNEL,
    Greenlight,
    SlackDriver,
    audit,
    audit_rows,
    buttons,
    card,
    card_up,
    db_post,
    text_of,
    thread,
    wait_until,
)

TEAM = {"APPROVERS": "U_ANA,S_LEADS"}
TWO = {**TEAM, "REQUIRED_APPROVALS": "2"}
OUTSIDER = "U_CAROL"
BOT_DIR = Path(__file__).resolve().parent.parent / "bot"

Start = Callable[..., tuple[Greenlight, SlackDriver]]


@pytest.fixture
def team(make_app: Callable[..., Greenlight], fake_slack: FakeSlack) -> Start:
    """Start Greenlight with the given settings and an S_LEADS group holding U_BOB."""
    fake_slack.add_usergroup("S_LEADS", ["U_BOB"])

    def start(**settings: str) -> tuple[Greenlight, SlackDriver]:
        app = make_app(**settings)
        return app, SlackDriver(app, fake_slack)

    return start


# -- helpers -----------------------------------------------------------------------------------------


def detail_of(app: Greenlight, post_id: int, action: str, outcome: str) -> str:
    found = [r.detail or "" for r in audit_rows(app, post_id) if r.action == action and r.outcome == outcome]
    assert found, f"no audit row {action}/{outcome}: {audit(app, post_id)}"
    return found[-1]


def approvals(app: Greenlight, post_id: int) -> list[tuple[str, int]]:
    with Session(app.services.engine) as session:
        rows = session.exec(select(Approval).where(Approval.post_id == post_id).order_by(col(Approval.id))).all()
        return [(r.user_id, r.content_version) for r in rows]


def replies(fake_slack: FakeSlack, app: Greenlight, external_id: str) -> list[str]:
    return thread(fake_slack, app, external_id)


def ephemeral_texts(fake_slack: FakeSlack, user: str) -> list[str]:
    return [text_of(e) for e in fake_slack.ephemerals(user)]


def wait_ephemerals(fake_slack: FakeSlack, user: str, count: int) -> list[str]:
    wait_until(lambda: len(fake_slack.ephemerals(user)) >= count, message=f"{count} ephemeral(s) for {user}")
    return ephemeral_texts(fake_slack, user)


def snapshot(app: Greenlight, external_id: str) -> tuple[Any, ...]:
    post = db_post(app, external_id)
    return (post.status, post.pending_action, post.pending_by, post.content, post.content_version,
            post.last_editor, post.approved_by, post.cancelled_by, post.activity, post.updated_at)


def approve(app: Greenlight, slack: SlackDriver, post_id: int, user: str) -> None:
    assert slack.click(ActionId.APPROVE, post_id, user=user).status_code == 200
    app.settle()


def edit_title(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, post_id: int, user: str,
               title: str) -> None:
    assert slack.click(ActionId.EDIT, post_id, user=user).status_code == 200
    view = slack.latest_view(ViewId.EDIT, post_id=post_id)
    response = slack.submit(view, user=user, values={FieldId.TITLE: {"type": "plain_text_input", "value": title}})
    assert response.status_code == 200 and response.text in ("", "{}"), response.text
    fake_slack.close_view(view["id"])
    app.settle()


def schedule(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, post_id: int, user: str, when: int) -> None:
    assert slack.click(ActionId.SCHEDULE, post_id, user=user).status_code == 200
    view = slack.latest_view(ViewId.SCHEDULE, post_id=post_id)
    response = slack.submit(view, user=user,
                            values={FieldId.WHEN: {"type": "datetimepicker", "selected_date_time": when}})
    assert response.status_code == 200 and response.text in ("", "{}"), response.text
    fake_slack.close_view(view["id"])
    app.settle()


def cancel(app: Greenlight, slack: SlackDriver, fake_slack: FakeSlack, post_id: int, user: str,
           reason: str | None = None) -> None:
    assert slack.click(ActionId.CANCEL, post_id, user=user).status_code == 200
    view = slack.latest_view(ViewId.CANCEL, post_id=post_id)
    values: dict[str, Any] | None = {FieldId.REASON: {"type": "plain_text_input", "value": reason}} if reason else None
    response = slack.submit(view, user=user, values=values)
    assert response.status_code == 200 and response.text in ("", "{}"), response.text
    fake_slack.close_view(view["id"])
    app.settle()


def approvals_line(fake_slack: FakeSlack, app: Greenlight, external_id: str) -> str:
    lines = [line for line in text_of(card(fake_slack, app, external_id)).splitlines() if "Approvals" in line]
    assert lines, "the card shows no approvals line"
    return lines[0]


# -- who may act -------------------------------------------------------------------------------------


def test_an_outsiders_click_changes_nothing_and_is_told_who_can_approve(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    post_id, remote = card_up(app, fake_choppity)
    before, calls_before = snapshot(app, remote["id"]), len(fake_choppity.calls())
    card_before = card(fake_slack, app, remote["id"])

    clicks = (ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL, ActionId.APPROVE)
    for n, action in enumerate(clicks, 1):
        assert slack.click(action, post_id, user=OUTSIDER).status_code == 200
        told = wait_ephemerals(fake_slack, OUTSIDER, n)[-1]
        assert "Only approvers can" in told, told
        assert "<@U_ANA>" in told and "<!subteam^S_LEADS>" in told
    app.settle()

    assert fake_slack.open_views() == []  # no Schedule / Cancel modal was opened for her
    assert len(fake_choppity.calls()) == calls_before  # no Choppity call at all
    assert snapshot(app, remote["id"]) == before
    after = card(fake_slack, app, remote["id"])
    assert after.blocks == card_before.blocks and buttons(after) == [
        ActionId.EDIT, ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL
    ]
    assert approvals(app, post_id) == []
    denied = [(actor, action) for actor, action, outcome in audit(app, post_id) if outcome == "denied"]
    assert denied == [(OUTSIDER, "publish"), (OUTSIDER, "schedule"), (OUTSIDER, "request_changes"),
                      (OUTSIDER, "cancel"), (OUTSIDER, "approve")]
    # Refusals are private: nothing was said in the card's thread.
    assert replies(fake_slack, app, remote["id"]) == []


def test_an_outsider_can_still_edit_by_default_but_not_publish_her_edit(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    post_id, remote = card_up(app, fake_choppity, "youtube", title="Old title")
    edit_title(app, slack, fake_slack, post_id, OUTSIDER, "Carol's title")
    puts = fake_choppity.calls("PUT", rf"/v1/posts/{remote['id']}$")
    assert [c.json for c in puts] == [{"title": "Carol's title"}]
    assert (OUTSIDER, "edit", "ok") in audit(app, post_id)
    assert "Edited by <@U_CAROL>" in text_of(card(fake_slack, app, remote["id"]))

    slack.click(ActionId.PUBLISH, post_id, user=OUTSIDER)
    assert "Only approvers can publish" in wait_ephemerals(fake_slack, OUTSIDER, 1)[-1]
    app.settle()
    assert fake_choppity.calls("POST", r"/publish$") == []
    assert db_post(app, remote["id"]).status == "draft"


def test_editors_can_edit_false_refuses_an_outsiders_edit(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM, EDITORS_CAN_EDIT="false")
    post_id, remote = card_up(app, fake_choppity, "youtube")
    calls_before = len(fake_choppity.calls())

    slack.click(ActionId.EDIT, post_id, user=OUTSIDER)
    told = wait_ephemerals(fake_slack, OUTSIDER, 1)[-1]
    assert "Only approvers can edit" in told and "<@U_ANA>" in told
    app.settle()
    assert fake_slack.calls("views.open") == []  # not even a loading modal
    assert len(fake_choppity.calls()) == calls_before
    assert (OUTSIDER, "edit", "denied") in audit(app, post_id)

    # A submission of an edit modal by an outsider (e.g. a modal opened by an approver, submitted
    # by someone else) is refused too, inline, with no PUT.
    slack.click(ActionId.EDIT, post_id, user="U_ANA")
    view = slack.latest_view(ViewId.EDIT, post_id=post_id)
    response = slack.submit(view, user=OUTSIDER,
                            values={FieldId.TITLE: {"type": "plain_text_input", "value": "Sneaky"}})
    assert response.json()["response_action"] == "errors"
    assert "Only approvers can edit" in json.dumps(response.json())
    app.settle()
    assert fake_choppity.calls("PUT") == []

    # An approver's edit goes through.
    response = slack.submit(view, user="U_ANA", values={FieldId.TITLE: {"type": "plain_text_input", "value": "Fine"}})
    assert response.status_code == 200 and response.text in ("", "{}")
    app.settle()
    assert [c.json for c in fake_choppity.calls("PUT")] == [{"title": "Fine"}]


def test_a_user_group_member_is_an_approver_and_the_group_is_cached(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    first_id, first = card_up(app, fake_choppity)
    second_id, second = card_up(app, fake_choppity, "linkedin")

    slack.click(ActionId.PUBLISH, first_id, user="U_BOB")  # U_BOB only qualifies through S_LEADS
    app.settle()
    assert len(fake_choppity.calls("POST", rf"/v1/posts/{first['id']}/publish$")) == 1
    assert db_post(app, first["id"]).status == "queued"
    lookups = fake_slack.calls("usergroups.users.list")
    assert [c.args.get("usergroup") for c in lookups] == ["S_LEADS"]

    # U_ANA is listed by id: no group lookup is needed for her.
    slack.click(ActionId.PUBLISH, second_id, user="U_ANA")
    app.settle()
    assert len(fake_slack.calls("usergroups.users.list")) == 1
    # U_BOB again: the membership is still cached.
    cancel(app, slack, fake_slack, second_id, "U_BOB")
    assert db_post(app, second["id"]).status == "cancelled"
    assert len(fake_slack.calls("usergroups.users.list")) == 1
    assert ephemeral_texts(fake_slack, "U_BOB") == []


def test_a_failed_group_lookup_refuses_the_action_and_calls_nothing(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(APPROVERS="S_LEADS")
    post_id, remote = card_up(app, fake_choppity)
    before, calls_before = snapshot(app, remote["id"]), len(fake_choppity.calls())
    fake_slack.fail_next("usergroups.users.list", "plan_upgrade_required")

    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    told = wait_ephemerals(fake_slack, "U_BOB", 1)[-1]
    assert "couldn't check the approver list" in told and "nothing was changed" in told
    app.settle()
    assert len(fake_choppity.calls()) == calls_before
    assert snapshot(app, remote["id"]) == before
    assert ("U_BOB", "publish", "denied") in audit(app, post_id)

    # Slack answers again: the same click now works.
    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    app.settle()
    assert len(fake_choppity.calls("POST", r"/publish$")) == 1
    assert db_post(app, remote["id"]).status == "queued"


def test_anyone_may_act_when_approvers_is_empty_and_one_click_publishes(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team()
    post_id, remote = card_up(app, fake_choppity)
    message = card(fake_slack, app, remote["id"])
    assert ActionId.APPROVE not in buttons(message) and "Approvals" not in text_of(message)
    slack.click(ActionId.PUBLISH, post_id, user=OUTSIDER)
    app.settle()
    assert len(fake_choppity.calls("POST", r"/publish$")) == 1
    assert fake_slack.calls("usergroups.users.list") == []
    assert ephemeral_texts(fake_slack, OUTSIDER) == []


# -- how many approvals ------------------------------------------------------------------------------


def test_two_approvals_are_needed_and_given_by_two_people(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO)
    post_id, remote = card_up(app, fake_choppity)
    message = card(fake_slack, app, remote["id"])
    assert buttons(message) == [ActionId.EDIT, ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.CANCEL]
    assert "Approvals 0/2" in approvals_line(fake_slack, app, remote["id"])

    # Publish and Schedule are not offered yet; a stale or forged click is refused without a call.
    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    assert "needs 2 approvals" in wait_ephemerals(fake_slack, "U_ANA", 1)[-1]
    app.settle()
    assert fake_choppity.calls("POST") == []

    approve(app, slack, post_id, "U_ANA")
    assert "Approvals 1/2: <@U_ANA>" in approvals_line(fake_slack, app, remote["id"])
    assert buttons(card(fake_slack, app, remote["id"])) == [ActionId.EDIT, ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.CANCEL]
    assert any("<@U_ANA> approved (1/2)" in r for r in replies(fake_slack, app, remote["id"]))
    assert approvals(app, post_id) == [("U_ANA", 1)]
    assert ("U_ANA", "approve", "ok") in audit(app, post_id)

    approve(app, slack, post_id, "U_BOB")
    line = approvals_line(fake_slack, app, remote["id"])
    assert "Approvals 2/2: <@U_ANA>, <@U_BOB>" in line and "ready to publish" in line
    assert buttons(card(fake_slack, app, remote["id"])) == [
        ActionId.EDIT, ActionId.PUBLISH, ActionId.SCHEDULE, ActionId.REQUEST_CHANGES, ActionId.CANCEL
    ]
    assert any("<@U_BOB> approved (2/2)" in r for r in replies(fake_slack, app, remote["id"]))
    assert approvals(app, post_id) == [("U_ANA", 1), ("U_BOB", 1)]
    assert fake_choppity.calls("POST") == []  # approving alone publishes nothing

    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    app.settle()
    assert len(fake_choppity.calls("POST", rf"/v1/posts/{remote['id']}/publish$")) == 1
    assert db_post(app, remote["id"]).status == "queued"
    assert [a for _, a, o in audit(app, post_id) if o == "ok"] == ["carded", "approve", "approve", "publish"]


def test_schedule_becomes_available_after_the_approvals(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO)
    post_id, remote = card_up(app, fake_choppity, "linkedin")
    approve(app, slack, post_id, "U_ANA")
    # One approval is not enough: the schedule modal's submission is refused inline.
    slack.click(ActionId.SCHEDULE, post_id, user="U_ANA")
    view = slack.latest_view(ViewId.SCHEDULE, post_id=post_id)
    when = int(time.time()) + 7200
    refused = slack.submit(view, user="U_ANA",
                           values={FieldId.WHEN: {"type": "datetimepicker", "selected_date_time": when}})
    assert refused.json()["response_action"] == "errors" and "needs 2 approvals" in json.dumps(refused.json())
    fake_slack.close_view(view["id"])
    app.settle()
    assert fake_choppity.calls("POST") == []

    approve(app, slack, post_id, "U_BOB")
    schedule(app, slack, fake_slack, post_id, "U_ANA", when)
    assert [c.json for c in fake_choppity.calls("POST", r"/publish$")] == [{"scheduled_at": when * 1000}]
    assert db_post(app, remote["id"]).status == "scheduled"


def test_the_same_person_approving_twice_counts_once(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO)
    post_id, remote = card_up(app, fake_choppity)

    # A double (quadruple) click arriving at once counts once, and every click is answered.
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def click() -> None:
        barrier.wait()
        statuses.append(slack.click(ActionId.APPROVE, post_id, user="U_ANA").status_code)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.settle()
    assert statuses == [200] * 4
    assert approvals(app, post_id) == [("U_ANA", 1)]
    told = wait_ephemerals(fake_slack, "U_ANA", 3)
    assert len(told) == 3 and all("already approved" in t for t in told)

    # And a later click again.
    approve(app, slack, post_id, "U_ANA")
    assert "already approved" in wait_ephemerals(fake_slack, "U_ANA", 4)[-1]
    assert approvals(app, post_id) == [("U_ANA", 1)]
    assert "Approvals 1/2: <@U_ANA>" in approvals_line(fake_slack, app, remote["id"])
    assert ActionId.PUBLISH not in buttons(card(fake_slack, app, remote["id"]))
    assert [r for r in replies(fake_slack, app, remote["id"]) if "approved" in r] == ["*YouTube* · 👍 <@U_ANA> approved (1/2)."]
    assert [(a, o) for _, a, o in audit(app, post_id) if a == "approve"] == [("approve", "ok")]
    assert fake_choppity.calls("POST") == []


def test_the_last_editor_cannot_approve_their_own_version(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO)
    post_id, remote = card_up(app, fake_choppity, "youtube")
    edit_title(app, slack, fake_slack, post_id, "U_ANA", "Ana's title")
    assert db_post(app, remote["id"]).last_editor == "U_ANA"

    approve(app, slack, post_id, "U_ANA")
    assert "You made the last edit" in wait_ephemerals(fake_slack, "U_ANA", 1)[-1]
    assert approvals(app, post_id) == []
    assert ("U_ANA", "approve", "denied") in audit(app, post_id)
    assert "Approvals 0/2" in approvals_line(fake_slack, app, remote["id"])

    # Anyone else may approve that version.
    approve(app, slack, post_id, "U_BOB")
    assert approvals(app, post_id) == [("U_BOB", 2)]


def test_self_approval_is_allowed_when_configured(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO, ALLOW_SELF_APPROVAL="true")
    post_id, remote = card_up(app, fake_choppity, "youtube")
    edit_title(app, slack, fake_slack, post_id, "U_ANA", "Ana's title")
    approve(app, slack, post_id, "U_ANA")
    assert approvals(app, post_id) == [("U_ANA", 2)]
    assert ephemeral_texts(fake_slack, "U_ANA") == []


def test_an_edit_resets_approvals_and_says_so_in_the_thread(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO)
    post_id, remote = card_up(app, fake_choppity, "youtube")
    approve(app, slack, post_id, "U_ANA")
    approve(app, slack, post_id, "U_BOB")
    assert ActionId.PUBLISH in buttons(card(fake_slack, app, remote["id"]))

    edit_title(app, slack, fake_slack, post_id, OUTSIDER, "Changed after approval")
    post = db_post(app, remote["id"])
    assert post.content_version == 2 and post.last_editor == OUTSIDER
    assert "Approvals 0/2" in approvals_line(fake_slack, app, remote["id"])
    assert buttons(card(fake_slack, app, remote["id"])) == [ActionId.EDIT, ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.CANCEL]
    edited = [r for r in replies(fake_slack, app, remote["id"]) if "edited" in r]
    assert len(edited) == 1 and "<@U_CAROL> edited title" in edited[0] and "Approvals were reset" in edited[0]
    # The old approvals stay on record (for version 1); they just don't count for version 2.
    assert approvals(app, post_id) == [("U_ANA", 1), ("U_BOB", 1)]

    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    assert "needs 2 approvals" in wait_ephemerals(fake_slack, "U_ANA", 1)[-1]
    app.settle()
    assert fake_choppity.calls("POST") == []

    approve(app, slack, post_id, "U_ANA")
    approve(app, slack, post_id, "U_BOB")
    assert "Approvals 2/2" in approvals_line(fake_slack, app, remote["id"])
    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    app.settle()
    assert len(fake_choppity.calls("POST", r"/publish$")) == 1


# -- the record --------------------------------------------------------------------------------------


def test_every_action_is_audited_and_replied_in_the_thread(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)

    # Edit (with a field-level summary), publish, then Choppity's webhook reports it published.
    post_id, remote = card_up(app, fake_choppity, "youtube", caption="short")
    edit_title(app, slack, fake_slack, post_id, "U_ANA", "A better title")
    assert detail_of(app, post_id, "edit", "ok") == "title"
    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    app.settle()
    fake_choppity.complete_publish(remote["id"], url="https://youtu.be/abc")
    assert app.choppity_event("post.published", {"post_id": remote["id"]}).status_code == 200
    app.settle()
    assert audit(app, post_id) == [
        (None, "carded", "ok"),
        ("U_ANA", "edit", "requested"),
        ("U_ANA", "edit", "ok"),
        ("U_BOB", "publish", "requested"),
        ("U_BOB", "publish", "ok"),
        (None, "post.published", "published"),
    ]
    thread = replies(fake_slack, app, remote["id"])
    assert len(thread) == 3, thread
    assert "<@U_ANA> edited title" in thread[0]
    assert "<@U_BOB> approved" in thread[1] and "queued" in thread[1]
    assert "Published on YouTube" in thread[2] and "https://youtu.be/abc" in thread[2]

    # Schedule.
    sched_id, sched = card_up(app, fake_choppity, "linkedin")
    when = int(time.time()) + 7200
    schedule(app, slack, fake_slack, sched_id, "U_ANA", when)
    assert ("U_ANA", "schedule", "ok") in audit(app, sched_id)
    thread = replies(fake_slack, app, sched["id"])
    assert len(thread) == 1 and f"<!date^{when}^" in thread[0] and "<@U_ANA>" in thread[0]

    # Cancel with a reason: the reason is in the record and in the thread.
    cancel_id, cancelled = card_up(app, fake_choppity, "tiktok")
    cancel(app, slack, fake_slack, cancel_id, "U_BOB", reason="Off-brand music")
    assert "Off-brand music" in detail_of(app, cancel_id, "cancel", "ok")
    thread = replies(fake_slack, app, cancelled["id"])
    assert len(thread) == 1 and "<@U_BOB> cancelled" in thread[0] and "Off-brand music" in thread[0]
    # ... and without one.
    plain_id, plain = card_up(app, fake_choppity, "instagram")
    cancel(app, slack, fake_slack, plain_id, "U_ANA")
    assert detail_of(app, plain_id, "cancel", "ok") == "cancelled"
    assert len(replies(fake_slack, app, plain["id"])) == 1


def test_errors_and_failed_webhook_outcomes_are_recorded_and_replied(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, slack = team(**TEAM)
    post_id, remote = card_up(app, fake_choppity)

    # Choppity refuses the publish: the clicker is told, the record and the thread say so.
    fake_choppity.fail_next("POST", r"/publish$", 400, code="BAD_REQUEST", message="YouTube connection expired")
    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    app.settle()
    assert "YouTube connection expired" in wait_ephemerals(fake_slack, "U_ANA", 1)[-1]
    assert "YouTube connection expired" in detail_of(app, post_id, "publish", "failed")
    thread = replies(fake_slack, app, remote["id"])
    assert len(thread) == 1 and "YouTube connection expired" in thread[0] and "<@U_ANA>" in thread[0]

    # It goes through on the second try, then fails on the platform (reported by webhook).
    slack.click(ActionId.PUBLISH, post_id, user="U_ANA")
    app.settle()
    fake_choppity.fail_post(remote["id"], "Video rejected by YouTube")
    app.choppity_event("post.failed", {"post_id": remote["id"]})
    app.settle()
    assert (None, "post.failed", "failed") in audit(app, post_id)
    assert "Video rejected by YouTube" in detail_of(app, post_id, "post.failed", "failed")
    thread = replies(fake_slack, app, remote["id"])
    assert len(thread) == 3, thread
    assert "failed" in thread[2] and "Video rejected by YouTube" in thread[2]

    # An unexpected internal error: recorded, told, and said in the thread, with the post released.
    other_id, other = card_up(app, fake_choppity, "linkedin")

    def boom(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.services.actions, "_call", boom)
    monkeypatch.setattr(app.services.runner, "max_attempts", 1)
    slack.click(ActionId.PUBLISH, other_id, user="U_BOB")
    app.settle()
    assert ("U_BOB", "publish", "failed") in audit(app, other_id)
    assert "internal error" in wait_ephemerals(fake_slack, "U_BOB", 1)[-1]
    thread = replies(fake_slack, app, other["id"])
    assert len(thread) == 1 and "<@U_BOB>" in thread[0] and "internal error" in thread[0]
    assert db_post(app, other["id"]).pending_action is None


def test_the_audit_log_is_append_only(team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity) -> None:
    # In the source: audit rows are only ever created (through db.add_audit), never updated or deleted.
    offenders: list[str] = []
    forbidden = [
        re.compile(r"\b(update|delete)\(\s*AuditEvent\b"),
        re.compile(r"\bAuditEvent\b[^\n]*\.\s*(update|delete)\("),
        re.compile(r"\b(UPDATE|DELETE\s+FROM)\s+\"?audit_event\b", re.IGNORECASE),
    ]
    for path in sorted(BOT_DIR.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        source = path.read_text()
        offenders += [f"{path.name}: {m.group(0)}" for p in forbidden for m in p.finditer(source)]
        if path.name != "db.py":
            offenders += [f"{path.name}: {m.group(0)}" for m in re.finditer(r"(?<!class )\bAuditEvent\(", source)]
        if path.name != "models.py":
            offenders += [f"{path.name}: audit_event" for _ in re.finditer(r"\baudit_event\b", source)]
    assert offenders == []

    # At run time: no UPDATE or DELETE ever reaches the audit_event table...
    app, slack = team(**TWO)
    statements: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.match(r"\s*(UPDATE|DELETE\s+FROM)\s+\"?audit_event", statement, re.IGNORECASE):
            statements.append(statement)

    event.listen(app.services.engine, "before_cursor_execute", watch)
    post_id, _ = card_up(app, fake_choppity, "youtube")

    def rows() -> list[tuple[Any, ...]]:
        return [(r.id, r.post_id, r.actor, r.action, r.outcome, r.detail, r.created_at) for r in audit_rows(app)]

    # ... and the log only grows: after each step every earlier row is still there, unchanged.
    seen = rows()
    steps: list[Callable[[], None]] = [
        lambda: approve(app, slack, post_id, "U_ANA"),
        lambda: approve(app, slack, post_id, OUTSIDER),  # denied, still recorded
        lambda: edit_title(app, slack, fake_slack, post_id, "U_BOB", "New"),
        lambda: approve(app, slack, post_id, "U_BOB"),  # self-approval, denied
        lambda: approve(app, slack, post_id, "U_ANA"),
        lambda: cancel(app, slack, fake_slack, post_id, "U_ANA", reason="Not now"),
    ]
    for step in steps:
        step()
        now = rows()
        assert len(now) > len(seen) and now[: len(seen)] == seen
        seen = now
    assert statements == []


# -- overview ----------------------------------------------------------------------------------------


def test_queue_lists_waiting_and_scheduled_posts_with_permalinks_and_local_times(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO)
    waiting_id, waiting = card_up(app, fake_choppity, "youtube", title="Waiting title")
    approve(app, slack, waiting_id, "U_ANA")
    sched_id, sched = card_up(app, fake_choppity, "linkedin", caption="Scheduled caption")
    approve(app, slack, sched_id, "U_ANA")
    approve(app, slack, sched_id, "U_BOB")
    when = int(time.time()) + 3 * 3600
    schedule(app, slack, fake_slack, sched_id, "U_BOB", when)
    gone_id, _ = card_up(app, fake_choppity, "tiktok", caption="Cancelled caption")
    cancel(app, slack, fake_slack, gone_id, "U_ANA")

    response, response_url = slack.command("queue", user=OUTSIDER)  # anyone may look
    assert response.status_code == 200
    wait_until(lambda: bool(fake_slack.responses(response_url)), message="queue reply")
    reply = fake_slack.responses(response_url)[-1]
    assert reply.get("response_type") == "ephemeral"
    shown = text_of(reply["blocks"])
    assert "Waiting for review (1)" in shown and "Scheduled (1)" in shown
    assert "Waiting title" in shown and "Scheduled caption" in shown and "Cancelled caption" not in shown
    assert "approvals 1/2" in shown

    # Links to cards are Slack's permalinks, computed from auth.test's workspace URL: exactly what
    # chat.getPermalink answers, without one Slack call per card.
    assert fake_slack.calls("chat.getPermalink") == []
    for external_id in (waiting["id"], sched["id"]):
        ts = db_post(app, external_id).message_ts
        assert ts is not None
        official = WebClient(token=fake_slack.token, base_url=fake_slack.url).chat_getPermalink(
            channel=CHANNEL, message_ts=ts)["permalink"]
        assert f"<{official}|Open card>" in shown
    # Times are <!date> tokens, which Slack renders in each viewer's own time zone.
    assert f"<!date^{when}^" in shown
    waiting_since = int(db_post(app, waiting["id"]).updated_at.timestamp())
    assert f"waiting since <!date^{waiting_since}^" in shown
    assert "UTC" in shown  # only as the fallback text after the `|`
    assert all(re.search(r"\|[^>]*UTC>", m.group(0)) for m in re.finditer(r"<!date\^[^>]+>", shown))


def test_queue_when_nothing_is_waiting(team: Start, fake_slack: FakeSlack) -> None:
    app, slack = team(**TEAM)
    _, response_url = slack.command("queue")
    wait_until(lambda: bool(fake_slack.responses(response_url)), message="queue reply")
    assert "Nothing is waiting for review" in fake_slack.responses(response_url)[-1]["text"]


def test_app_home_shows_the_four_groups_and_refreshes_when_opened(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM)
    assert slack.event({"type": "app_home_opened", "user": "U_BOB", "channel": "D1", "tab": "home"}).status_code == 200
    wait_until(lambda: fake_slack.home_view("U_BOB") is not None, message="home published")
    empty = text_of(fake_slack.home_view("U_BOB"))
    for group in ("Waiting for review (0)", "Scheduled (0)", "Publishing now (0)", "Failed (last 7 days) (0)",
                  "Recently published (last 7 days) (0)"):
        assert group in empty

    _, waiting = card_up(app, fake_choppity, "youtube", title="Still waiting")
    sched_id, _ = card_up(app, fake_choppity, "linkedin", caption="Goes out later")
    when = int(time.time()) + 7200
    schedule(app, slack, fake_slack, sched_id, "U_ANA", when)
    pub_id, published = card_up(app, fake_choppity, "instagram", caption="Already out")
    slack.click(ActionId.PUBLISH, pub_id, user="U_ANA")
    app.settle()
    fake_choppity.complete_publish(published["id"], url="https://instagram.com/p/xyz")
    app.choppity_event("post.published", {"post_id": published["id"]})
    fail_id, failed = card_up(app, fake_choppity, "tiktok", caption="Went wrong")
    slack.click(ActionId.PUBLISH, fail_id, user="U_ANA")
    app.settle()
    fake_choppity.fail_post(failed["id"], "TikTok said no")
    app.choppity_event("post.failed", {"post_id": failed["id"]})
    app.settle()

    # Not refreshed until the tab is opened again.
    assert text_of(fake_slack.home_view("U_BOB")) == empty
    slack.event({"type": "app_home_opened", "user": "U_BOB", "channel": "D1", "tab": "home"})
    wait_until(lambda: text_of(fake_slack.home_view("U_BOB")) != empty, message="home refreshed")
    home = fake_slack.home_view("U_BOB")
    assert home is not None and home["type"] == "home"
    shown = text_of(home)
    for group in ("Waiting for review (1)", "Scheduled (1)", "Failed (last 7 days) (1)", "Recently published (last 7 days) (1)"):
        assert group in shown, shown
    order = [shown.index(g) for g in ("Waiting for review", "Scheduled", "Failed", "Recently published")]
    assert order == sorted(order)
    sections = {g: shown.index(g) for g in ("Waiting for review", "Scheduled", "Failed", "Recently published")}
    assert sections["Waiting for review"] < shown.index("Still waiting") < sections["Scheduled"]
    assert sections["Scheduled"] < shown.index("Goes out later") < sections["Failed"]
    assert sections["Failed"] < shown.index("Went wrong") < sections["Recently published"]
    assert sections["Recently published"] < shown.index("Already out")
    assert f"<!date^{when}^" in shown
    # Each item links to its card through a button carrying chat.getPermalink's URL.
    urls = [e["url"] for b in home["blocks"] if (e := b.get("accessory")) and e.get("url")]
    expected = set()
    for x in (waiting["id"], published["id"], failed["id"]):
        post = db_post(app, x)
        assert post.message_ts is not None and post.thread_ts is not None  # each card is in its clip's thread
        expected.add(f"{PERMALINK_BASE}/archives/{CHANNEL}/p{post.message_ts.replace('.', '')}"
                     f"?thread_ts={post.thread_ts}&cid={CHANNEL}")
    assert expected <= set(urls) and len(urls) == 4

    # Other tabs don't republish the Home view.
    calls = len(fake_slack.calls("views.publish"))
    slack.event({"type": "app_home_opened", "user": "U_BOB", "channel": "D1", "tab": "messages"})
    time.sleep(0.3)
    assert len(fake_slack.calls("views.publish")) == calls


# -- reminders ---------------------------------------------------------------------------------------


def reminders_of(app: Greenlight) -> Reminders:
    assert app.runtime is not None
    return app.services.reminders  # type: ignore[no-any-return]


def backdate(app: Greenlight, post_id: int, *, hours: float, reminded_hours: float | None = None) -> None:
    values: dict[str, Any] = {"updated_at": utcnow() - timedelta(hours=hours)}
    if reminded_hours is not None:
        values["reminded_at"] = utcnow() - timedelta(hours=reminded_hours)
    with Session(app.services.engine) as session:
        session.execute(update(Post).where(col(Post.id) == post_id).values(**values))
        session.commit()


def test_reminders_fire_once_per_period_and_not_for_decided_posts(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM, REMIND_AFTER_HOURS="0.0001")  # a period of 0.36 s
    reminders = reminders_of(app)
    reminders.stop()  # this test drives the passes itself

    stale_id, stale = card_up(app, fake_choppity, "youtube")
    fresh_id, fresh = card_up(app, fake_choppity, "linkedin")
    pub_id, published = card_up(app, fake_choppity, "instagram")
    slack.click(ActionId.PUBLISH, pub_id, user="U_ANA")
    gone_id, gone = card_up(app, fake_choppity, "tiktok")
    cancel(app, slack, fake_slack, gone_id, "U_ANA")
    sched_id, sched = card_up(app, fake_choppity, "youtube")
    schedule(app, slack, fake_slack, sched_id, "U_ANA", int(time.time()) + 7200)
    app.settle()
    assert db_post(app, published["id"]).status == "queued"
    for post_id in (stale_id, pub_id, gone_id, sched_id):
        backdate(app, post_id, hours=2)
    backdate(app, fresh_id, hours=-1)  # touched "just now", well within the period

    # Two passes in a row, within one period: one reminder.
    assert (reminders.run_once(), reminders.run_once()) == (1, 0)
    app.settle()
    nudges = [r for r in replies(fake_slack, app, stale["id"]) if "⏰" in r]
    assert len(nudges) == 1
    assert "<@U_ANA>" in nudges[0] and "<!subteam^S_LEADS>" in nudges[0] and "waiting" in nudges[0]
    assert len([r for r in replies(fake_slack, app, stale["id"]) if "⏰" in r]) == 1

    # The next period: one more.
    time.sleep(0.4)
    assert reminders.run_once() == 1
    app.settle()
    assert len([r for r in replies(fake_slack, app, stale["id"]) if "⏰" in r]) == 2

    for external_id in (fresh["id"], published["id"], gone["id"], sched["id"]):
        assert not any("⏰" in r for r in replies(fake_slack, app, external_id))


def test_reminders_respect_a_long_period(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM, REMIND_AFTER_HOURS="24")
    reminders = reminders_of(app)
    post_id, remote = card_up(app, fake_choppity)
    backdate(app, post_id, hours=23)
    assert reminders.run_once() == 0
    backdate(app, post_id, hours=25)
    assert reminders.run_once() == 1
    assert reminders.run_once() == 0
    app.settle()  # (so the two reminders reach the thread in order)
    backdate(app, post_id, hours=49, reminded_hours=23)
    assert reminders.run_once() == 0
    backdate(app, post_id, hours=49, reminded_hours=25)
    assert reminders.run_once() == 1
    app.settle()
    nudges = [r for r in replies(fake_slack, app, remote["id"]) if "⏰" in r]
    assert len(nudges) == 2 and "25 h" in nudges[0] and "49 h" in nudges[1]


def test_remind_after_hours_zero_turns_reminders_off(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TEAM, REMIND_AFTER_HOURS="0")
    post_id, remote = card_up(app, fake_choppity)
    backdate(app, post_id, hours=1000)
    assert reminders_of(app).run_once() == 0
    app.settle()
    assert replies(fake_slack, app, remote["id"]) == []


def test_an_edit_made_in_choppity_also_resets_approvals(
    team: Start, fake_slack: FakeSlack, fake_choppity: FakeChoppity
) -> None:
    app, slack = team(**TWO)
    post_id, remote = card_up(app, fake_choppity)
    approve(app, slack, post_id, "U_ANA")
    approve(app, slack, post_id, "U_BOB")
    # Someone rewrites the caption in Choppity after both approvals; Greenlight notices on re-read.
    fake_choppity.set_status(remote["id"], "draft", caption="Rewritten outside Slack")
    slack.click(ActionId.EDIT, post_id, user="U_CAROL")
    slack.latest_view(ViewId.EDIT, post_id=post_id)
    app.settle()
    assert db_post(app, remote["id"]).content_version == 2
    assert "Approvals 0/2" in approvals_line(fake_slack, app, remote["id"])
    slack.click(ActionId.PUBLISH, post_id, user="U_BOB")
    assert "needs 2 approvals" in wait_ephemerals(fake_slack, "U_BOB", 1)[-1]
    app.settle()
    assert fake_choppity.calls("POST") == []
