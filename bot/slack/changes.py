"""What an edit changed, as a compact word-level diff in mrkdwn: ~removed~ and *added* words, a few
unchanged words around each change, and "…" for the rest.

Pure: the diff itself is computed in `bot.domain.review.word_diff`; here it is rendered for a
thread reply. Every word is outside text: it goes through `mrkdwn.inert`, so `<!channel>` shows
literally and a caption's own `*` or `~` can't end a run early. Each field's diff is cut to a
budget (Slack reads a thread reply of up to 4,000 characters; the card shows the whole caption).
"""

from __future__ import annotations

from bot.domain import DiffRun, PostContent, has_changes, word_diff
from bot.slack.mrkdwn import Mrkdwn, fmt, inert

# Unchanged words kept on each side of a change.
CONTEXT_WORDS = 4
# Characters of mrkdwn per field's diff; the reply stays well inside Slack's 4,000.
DIFF_BUDGET = 1200
ELLIPSIS = "…"
SHORTENED = " _(diff shortened; the card shows the whole text)_"


def _context(words: tuple[str, ...], *, first: bool, last: bool) -> list[str]:
    """The unchanged words worth showing: the edges next to a change, "…" for the middle."""
    n = CONTEXT_WORDS
    if first and last:
        return list(words[:n]) + ([ELLIPSIS] if len(words) > n else [])
    if first:
        return ([ELLIPSIS] if len(words) > n else []) + list(words[-n:])
    if last:
        return list(words[:n]) + ([ELLIPSIS] if len(words) > n else [])
    if len(words) <= 2 * n + 1:
        return list(words)
    return list(words[:n]) + [ELLIPSIS] + list(words[-n:])


def _pieces(runs: tuple[DiffRun, ...]) -> list[tuple[str, list[str]]]:
    """(kind, words to show) per run, unchanged runs already shortened to their context."""
    out: list[tuple[str, list[str]]] = []
    for i, run in enumerate(runs):
        if run.kind == "same":
            shown = _context(run.words, first=i == 0, last=i == len(runs) - 1)
            if shown:
                out.append(("same", shown))
        else:
            out.append((run.kind, list(run.words)))
    return out


def _render(kind: str, words: list[str]) -> Mrkdwn:
    text = Mrkdwn(" ").join(Mrkdwn(ELLIPSIS) if w == ELLIPSIS and kind == "same" else inert(w) for w in words)
    if kind == "removed":
        return Mrkdwn("~") + text + Mrkdwn("~")
    if kind == "added":
        return Mrkdwn("*") + text + Mrkdwn("*")
    return text


def _fit(kind: str, words: list[str], room: int) -> Mrkdwn | None:
    """The longest prefix of a run that fits in `room` characters (ending in "…"), or None."""
    kept: list[str] = []
    for word in words:
        if len(_render(kind, [*kept, word, ELLIPSIS])) > room:
            break
        kept.append(word)
    if not kept:
        # One word longer than the room (a pasted URL, say): cut the word itself.
        word = words[0]
        for cut in range(min(len(word), room), 0, -1):
            if len(_render(kind, [word[:cut] + ELLIPSIS])) <= room:
                return _render(kind, [word[:cut] + ELLIPSIS])
        return None
    return _render(kind, [*kept, ELLIPSIS])


def render_diff(runs: tuple[DiffRun, ...], *, budget: int = DIFF_BUDGET) -> Mrkdwn:
    """One line: unchanged context, ~removed~ and *added* runs, at most `budget` characters (plus a
    note when it had to be shortened)."""
    parts: list[Mrkdwn] = []
    used = 0
    for kind, words in _pieces(runs):
        piece = _render(kind, words)
        sep = 1 if parts else 0
        if used + sep + len(piece) <= budget:
            parts.append(piece)
            used += sep + len(piece)
            continue
        partial = _fit(kind, words, budget - used - sep)
        if partial is not None:
            parts.append(partial)
        return Mrkdwn(" ").join(parts) + Mrkdwn(SHORTENED)
    return Mrkdwn(" ").join(parts)


def field_diffs(old: PostContent, new: PostContent, *, budget: int = DIFF_BUDGET) -> list[Mrkdwn]:
    """A quoted diff line per changed text field (title, caption), for an edit's thread reply."""
    lines: list[Mrkdwn] = []
    for label, before, after in (("Title", old.title or "", new.title or ""), ("Caption", old.caption, new.caption)):
        if before == after:
            continue
        runs = word_diff(before, after)
        if not has_changes(runs):
            lines.append(fmt("> *{label}:* _only spacing or line breaks changed_", label=label))
            continue
        lines.append(fmt("> *{label}:* {diff}", label=label, diff=render_diff(runs, budget=budget)))
    return lines
