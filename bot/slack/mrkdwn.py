"""Slack mrkdwn, safely: text from outside (people, providers) is escaped here and nowhere else.

Everything Greenlight shows in mrkdwn is built with this module. `Mrkdwn` marks a string as markup
we wrote on purpose (a mention of a validated user id, a checked link, a date token); `fmt()` fills a
template and escapes every value that is not `Mrkdwn`. So a cancel reason of `<!channel>` shows as
the literal text, a provider error that echoes an API key shows `[REDACTED]`, and a published URL
with `|` or `>` in it can never break out of its link.

Slack only decodes `&amp;`, `&lt;` and `&gt;`; those three are all that needs escaping
(https://docs.slack.dev/messaging/formatting-message-text#escaping).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.security import redact

# Slack user ids (U… or W… on Enterprise Grid) and user-group ids (S…). "_" admits the readable ids
# the test suite uses; the length bound keeps hostile ids out of mentions.
_USER_ID = re.compile(r"[UW][A-Z0-9_]{2,31}")
_GROUP_ID = re.compile(r"S[A-Z0-9_]{2,31}")
# RFC 3986 characters only: no spaces, no control characters, and none of `<`, `>`, `|`, `"`, which
# would end or split a Slack link.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
MAX_LINK_URL = 2000
# Markup tokens that must never be cut in half: `<…>` links/mentions/dates and the three entities.
_TOKEN = re.compile(r"<[^<>]*>|&(?:amp|lt|gt);")
# C0 controls other than newline and tab render as boxes or vanish; drop them from shown text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Mrkdwn(str):
    """A string that is intended mrkdwn: it goes to Slack as is. Only this module should make one."""

    __slots__ = ()

    def __add__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(self, other if isinstance(other, Mrkdwn) else escape(other)))

    def __radd__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(other if isinstance(other, Mrkdwn) else escape(other), self))

    def join(self, parts: Iterable[str]) -> Mrkdwn:  # type: ignore[override]
        """Join, escaping every part that isn't Mrkdwn."""
        return Mrkdwn(str.join(self, (p if isinstance(p, Mrkdwn) else escape(p) for p in parts)))


def escape(text: object) -> Mrkdwn:
    """Outside text as literal mrkdwn: secrets redacted, control characters dropped, `&<>` escaped."""
    value = redact(str(text))
    value = _CONTROL.sub("", value)
    return Mrkdwn(value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


# Slack has no escape for its formatting characters. Where outside words sit between our own
# markers (a diff's ~removed~ and *added* runs), they are swapped for look-alikes Slack never reads
# as markup, so a caption's `*bold*` can't close or open a run.
_INERT = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"})


def inert(text: object) -> Mrkdwn:
    """Outside text that must not format itself: escaped (secrets redacted first), and `* _ ~ \``
    replaced by look-alikes (∗ ˍ ∼ ˋ)."""
    return Mrkdwn(escape(text).translate(_INERT))


def unescape(text: str) -> str:
    """Inverse of the escaping (for tests and for measuring what a viewer sees)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def raw(markup: str) -> Mrkdwn:
    """Mark a constant written in our own code as markup (`*bold*`, emoji). Never pass outside text."""
    return Mrkdwn(markup)


def is_user_id(value: object) -> bool:
    """Whether `value` looks like a Slack user id (so a mention can be made of it)."""
    return isinstance(value, str) and _USER_ID.fullmatch(value) is not None


def mention(user: str | None, *, nobody: str = "someone") -> Mrkdwn:
    """`<@U…>` for a valid user id; anything else (a provider's name, garbage) as escaped text."""
    if not user:
        return escape(nobody)
    if is_user_id(user):
        return Mrkdwn(f"<@{user}>")
    return escape(user)


def usergroup(group: str) -> Mrkdwn:
    """`<!subteam^S…>` for a valid user-group id, else escaped text."""
    if _GROUP_ID.fullmatch(group):
        return Mrkdwn(f"<!subteam^{group}>")
    return escape(group)


def safe_url(url: object) -> str | None:
    """The URL if it is a plain http(s) address that can sit inside a Slack link, else None."""
    if not isinstance(url, str) or not url or len(url) > MAX_LINK_URL:
        return None
    if not _URL_CHARS.fullmatch(url):
        return None
    lowered = url.lower()
    if not lowered.startswith(("https://", "http://")):
        return None
    host = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if not host or host.startswith(("@", ":")):
        return None
    return url


def link(url: object, label: str) -> Mrkdwn:
    """`<url|label>` for a safe URL; otherwise the label alone (the bad URL is never made clickable)."""
    checked = safe_url(url)
    if checked is None:
        return escape(label)
    # `|` in a label is harmless (only the first one separates), `>` is escaped.
    return Mrkdwn(f"<{escape(checked)}|{escape(label)}>")


def date(when: datetime, token: str = "{date_short_pretty} at {time}") -> Mrkdwn:
    """A `<!date>` token, so every viewer sees the time in their own zone; UTC text as the fallback."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    utc = aware.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return Mrkdwn(f"<!date^{int(utc.timestamp())}^{token}|{fallback}>")


def code(text: object) -> Mrkdwn:
    """Inline code of outside text (an id someone typed), escaped, backticks removed."""
    return Mrkdwn(f"`{escape(str(text).replace('`', ''))}`")


class _Escaping(Mapping[str, Any]):
    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        return value if isinstance(value, Mrkdwn) else escape(value)

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


_FORMATTER = string.Formatter()


def fmt(template: str, /, **values: Any) -> Mrkdwn:
    """Fill a template written in our code; every value that isn't Mrkdwn is escaped.

    Format specs are not allowed (they would apply to the escaped text and could cut an entity).
    """
    for _, field, spec, conversion in _FORMATTER.parse(template):
        if field is not None and (spec or conversion):
            raise ValueError(f"fmt() takes plain {{name}} fields, got {{{field}!{conversion}:{spec}}}")
    return Mrkdwn(template.format_map(_Escaping(values)))


def truncate(text: str, limit: int, *, ellipsis: str = "…") -> Mrkdwn:
    """Shorten markup to at most `limit` characters without cutting a link, mention or entity."""
    if len(text) <= limit:
        return Mrkdwn(text)
    budget = max(0, limit - len(ellipsis))
    out: list[str] = []
    used = 0
    pos = 0
    for match in _TOKEN.finditer(text):
        plain = text[pos : match.start()]
        if used + len(plain) > budget:
            out.append(plain[: budget - used])
            return Mrkdwn("".join(out) + ellipsis)
        out.append(plain)
        used += len(plain)
        token = match.group(0)
        if used + len(token) > budget:
            return Mrkdwn("".join(out) + ellipsis)
        out.append(token)
        used += len(token)
        pos = match.end()
    tail = text[pos:]
    out.append(tail[: max(0, budget - used)])
    return Mrkdwn("".join(out) + ellipsis)


def plain_text(text: object, limit: int) -> str:
    """Outside text for a plain_text object: redacted, control characters dropped, cut to `limit`."""
    value = _CONTROL.sub("", redact(str(text)))
    return value if len(value) <= limit else value[: max(0, limit - 1)] + "…"


# -- one message, two surfaces ---------------------------------------------------------------------
# Ephemerals and thread replies are mrkdwn; modal inline errors are plain text, where a mention
# would show as raw `<@U…>`. `say()` renders one template both ways.


@dataclass(frozen=True)
class Person:
    """A Slack user in a message: a mention in mrkdwn, `plain` in plain text."""

    user: str | None
    plain: str = "another reviewer"


@dataclass(frozen=True)
class When:
    """A moment: a `<!date>` token in mrkdwn (the viewer's own zone), UTC text in plain text."""

    at: datetime


@dataclass(frozen=True)
class Link:
    """A link: `<url|label>` in mrkdwn when the URL is safe; `label` in plain text."""

    url: str | None
    label: str


@dataclass(frozen=True)
class Say:
    """A message rendered for both surfaces."""

    mrkdwn: Mrkdwn
    plain: str

    def __str__(self) -> str:
        return str(self.mrkdwn)


def _as_mrkdwn(value: Any) -> Mrkdwn:
    if isinstance(value, Person):
        return mention(value.user)
    if isinstance(value, When):
        return date(value.at)
    if isinstance(value, Link):
        return link(value.url, value.label)
    if isinstance(value, Say):
        return value.mrkdwn
    if isinstance(value, Mrkdwn):
        return value
    return escape(value)


def _as_plain(value: Any) -> str:
    if isinstance(value, Person):
        return value.plain
    if isinstance(value, When):
        return value.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, Link):
        return value.label
    if isinstance(value, Say):
        return value.plain
    return _CONTROL.sub("", redact(unescape(value) if isinstance(value, Mrkdwn) else str(value)))


def say(template: str, /, **values: Any) -> Say:
    """Render a template (our own words, no markup) with values for mrkdwn and for plain text."""
    return Say(
        mrkdwn=fmt(template, **{k: _as_mrkdwn(v) for k, v in values.items()}),
        plain=template.format_map({k: _as_plain(v) for k, v in values.items()}),
    )
