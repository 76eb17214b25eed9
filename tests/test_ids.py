"""Every id written in bot/slack/ids.py reaches a listener: an unmatched one would leave a button dead."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.slack.ids import ActionId, ViewId
from tests.fakes.slack import FakeSlack
from tests.harness import Greenlight, SlackDriver


@pytest.fixture
def everything(make_app: Callable[..., Greenlight], fake_slack: FakeSlack) -> SlackDriver:
    # Reap's modal is registered only when Reap is on; the URL is never called by these requests.
    app = make_app(REAP_API_KEY="reap-key-for-ids-test", REAP_API_URL="http://127.0.0.1:9/api")
    return SlackDriver(app, fake_slack)


@pytest.mark.parametrize("action_id", list(ActionId))
def test_every_action_id_is_acknowledged(everything: SlackDriver, action_id: ActionId) -> None:
    response = everything.click(action_id, 999_999)
    assert response.status_code == 200  # Bolt answers 404 when no listener matches


@pytest.mark.parametrize("view_id", list(ViewId))
def test_every_view_id_is_acknowledged(everything: SlackDriver, view_id: ViewId) -> None:
    view = {"id": "V1", "callback_id": view_id.value, "private_metadata": '{"post_id": 999999}', "blocks": []}
    response = everything.submit(view)
    assert response.status_code == 200
