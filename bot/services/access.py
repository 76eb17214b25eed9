"""Who may approve: user ids and Slack user groups from APPROVERS, resolved and cached briefly.

A failed group lookup refuses the action (fails closed) rather than letting anyone through.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.mrkdwn import Mrkdwn, mention, usergroup

log = logging.getLogger(__name__)


class ApproverLookupFailed(Exception):
    """Slack could not tell us who is in an approver group."""


class Approvers:
    """Answers "may this user approve?" from the APPROVERS setting."""

    def __init__(self, entries: tuple[str, ...], slack: WebClient, *, ttl: float = 300.0) -> None:
        self.users = frozenset(e for e in entries if not e.startswith("S"))
        self.groups = tuple(e for e in entries if e.startswith("S"))
        self._slack = slack
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

    def is_approver(self, user: str) -> bool:
        """True if `user` may approve; raises ApproverLookupFailed when Slack can't say."""
        if not self.restricted or user in self.users:
            return True
        return any(user in self._members(group) for group in self.groups)
