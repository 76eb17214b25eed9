"""Who may approve: user ids and Slack user groups from APPROVERS, resolved and cached briefly.

A failed group lookup refuses the action (fails closed) rather than letting anyone through.

Slack Connect: someone clicking from another organisation's workspace (a partner in a shared
channel) has their own team id (`user.team_id`). Such an outsider may act only when APPROVERS lists
their user id: user groups are one workspace's own, and "anyone in the channel" (an empty
APPROVERS) and "editors may edit" (EDITORS_CAN_EDIT) mean anyone *in this organisation*. Our own
team and enterprise ids come from auth.test; until Slack has told us them, an unlisted person who
names a team is refused (fails closed) with a "try again" answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.mrkdwn import Mrkdwn, mention, usergroup

log = logging.getLogger(__name__)


class ApproverLookupFailed(Exception):
    """Slack could not tell us who is in an approver group."""


class Approvers:
    """Answers "may this user approve?" from the APPROVERS setting."""

    def __init__(self, entries: tuple[str, ...], slack: WebClient, *, ttl: float = 300.0,
                 home: Callable[[], frozenset[str] | None] = lambda: None) -> None:
        self.entries = entries
        self.users = frozenset(e for e in entries if not e.startswith("S"))
        self.groups = tuple(e for e in entries if e.startswith("S"))
        self._slack = slack
        # Our own team (and enterprise) ids, None while unknown (bot.services.identity).
        self._home = home
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def restricted(self) -> bool:
        """False when APPROVERS is empty: anyone in the channel may act."""
        return bool(self.users or self.groups)

    def describe(self) -> Mrkdwn:
        """Mentions of everyone who can approve, for refusal messages and reminders."""
        parts = [mention(u) for u in sorted(self.users)] + [usergroup(g) for g in self.groups]
        return Mrkdwn(", ").join(parts) if parts else Mrkdwn("anyone in the channel")

    def _members(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(group)
            if hit and hit[0] > now:
                return hit[1]
        try:
            response = self._slack.usergroups_users_list(usergroup=group)
        except SlackApiError as err:
            log.warning("usergroups.users.list failed for %s: %s", group, err.response.get("error"))
            raise ApproverLookupFailed(group) from err
        except Exception as err:  # noqa: BLE001 - network errors fail closed too
            log.warning("usergroups.users.list failed for %s: %s", group, type(err).__name__)
            raise ApproverLookupFailed(group) from err
        users: list[Any] = list(response.get("users") or [])
        members = frozenset(str(u) for u in users)
        with self._lock:
            self._cache[group] = (now + self._ttl, members)
        return members

    def is_listed(self, user: str) -> bool:
        """Whether APPROVERS names `user` by id (the only way an outsider is an approver)."""
        return user in self.users

    def is_outsider(self, team: str | None) -> bool:
        """Whether a person whose home team (or enterprise) is `team` belongs to another organisation.

        No team (a payload without one) is taken as ours. Raises ApproverLookupFailed while our own
        ids are not known yet.
        """
        if not team:
            return False
        home = self._home()
        if not home:
            raise ApproverLookupFailed("own team unknown")
        return team not in home

    def is_approver(self, user: str, team: str | None = None) -> bool:
        """True if `user` (from `team`) may approve; raises ApproverLookupFailed when Slack can't say."""
        if user in self.users:
            return True
        if self.is_outsider(team):
            return False
        if not self.restricted:
            return True
        return any(user in self._members(group) for group in self.groups)
