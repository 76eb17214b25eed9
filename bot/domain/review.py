"""Review feedback as data: why a reviewer asked for changes, and what an edit changed, word by word.

Plain values only; `bot.slack` renders them (escaping every word that came from outside).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class ChangeReason(StrEnum):
    """The fixed reasons a reviewer can give when asking for changes (the modal's choices)."""

    TONE = "tone"
    CLAIM = "claim"
    WRONG_ASSET = "wrong_asset"
    WRONG_ACCOUNT = "wrong_account"
    TIMING = "timing"
    OTHER = "other"

    @property
    def label(self) -> str:
        """How the reason is shown: "Tone", "Claim to check"…"""
        return CHANGE_REASON_LABELS[self]

    @classmethod
    def parse(cls, value: object) -> ChangeReason | None:
        """The reason named by `value`, or None (a stale or forged choice)."""
        try:
            return cls(str(value))
        except ValueError:
            return None


CHANGE_REASON_LABELS: dict[ChangeReason, str] = {
    ChangeReason.TONE: "Tone",
    ChangeReason.CLAIM: "Claim to check",
    ChangeReason.WRONG_ASSET: "Wrong asset",
    ChangeReason.WRONG_ACCOUNT: "Wrong account",
    ChangeReason.TIMING: "Timing",
    ChangeReason.OTHER: "Other",
}
# The note's cap: enough for a paragraph, small enough for the card and the thread.
CHANGE_NOTE_LIMIT = 500


@dataclass(frozen=True)
class ChangeRequest:
    """An open "changes requested" on a draft: who asked, why, and when. The next edit resolves it."""

    by: str
    reason: ChangeReason
    note: str | None = None
    at: datetime | None = None


# -- what an edit changed ----------------------------------------------------------------------------

DiffKind = Literal["same", "removed", "added"]
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class DiffRun:
    """A run of words the old and the new text share, or that one of them has and the other hasn't."""

    kind: DiffKind
    words: tuple[str, ...]


def word_diff(old: str, new: str) -> tuple[DiffRun, ...]:
    """The word-level difference between two texts (whitespace separates words and is not compared).

    Removed runs come before the added runs that replace them. Equal texts give one "same" run (or
    none when both are empty); texts that differ only in spacing or line breaks give no change.
    """
    a, b = _WORD.findall(old), _WORD.findall(new)
    runs: list[DiffRun] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            runs.append(DiffRun("same", tuple(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(DiffRun("removed", tuple(a[i1:i2])))
        if j2 > j1:
            runs.append(DiffRun("added", tuple(b[j1:j2])))
    return tuple(runs)


def has_changes(runs: tuple[DiffRun, ...]) -> bool:
    """Whether a diff removes or adds any word."""
    return any(run.kind != "same" for run in runs)
