"""The review lines of a card: changes requested, overdue, and who may still decide (four eyes).

Pure functions from `domain.Card` to mrkdwn lines; `bot.slack.blocks` places them on the card.
The reviewer's note is outside text and is escaped like every other value.
"""

from __future__ import annotations

from bot.domain import Card, ChangeRequest, PostStatus
from bot.slack.mrkdwn import Mrkdwn, date, fmt, mention, usergroup


def is_open_draft(card: Card) -> bool:
    """A draft nobody is acting on right now: the only state these lines are about."""
    return card.status is PostStatus.DRAFT and card.pending_action is None


def change_request_text(request: ChangeRequest) -> Mrkdwn:
    """ "Changes requested by @x: Tone — the note" (the note only when there is one)."""
    line = fmt("✋ *Changes requested by {who}:* {reason}", who=mention(request.by), reason=request.reason.label)
    if request.note:
        line = fmt("{line} — {note}", line=line, note=request.note)
    return line


def change_request_line(card: Card) -> Mrkdwn | None:
    """The card's status line while changes are requested (it replaces "Draft — awaiting review")."""
    if card.change_request is None or not is_open_draft(card):
        return None
    return change_request_text(card.change_request) + Mrkdwn("\n_Publish, Schedule and Approve come back "
                                                             "with the next edit._")


def overdue_line(card: Card) -> Mrkdwn | None:
    """"⏰ Overdue" once the decision deadline passed without a decision."""
    if card.overdue_since is None or not is_open_draft(card):
        return None
    return fmt("⏰ *Overdue* — a decision was due {when}.", when=date(card.overdue_since))


def deciders(approvers: tuple[str, ...], editor: str) -> list[Mrkdwn]:
    """Mentions of everyone in APPROVERS but the editor (user groups as groups)."""
    users = [mention(a) for a in approvers if not a.startswith("S") and a != editor]
    groups = [usergroup(a) for a in approvers if a.startswith("S")]
    return users + groups


def four_eyes_line(card: Card) -> Mrkdwn | None:
    """Who may still decide on this version when its last editor may not (ALLOW_SELF_APPROVAL=false)."""
    if card.last_editor is None or not is_open_draft(card):
        return None
    editor = mention(card.last_editor)
    decide = "approve, publish or schedule" if card.required_approvals > 1 else "publish or schedule"
    if not card.approvers:
        return fmt("🔒 Four eyes: {editor} made the last edit, so someone else must {decide} this version.",
                   editor=editor, decide=decide)
    others = deciders(card.approvers, card.last_editor)
    if not others:
        return fmt("🔒 Four eyes: {editor} made the last edit and is the only approver, so nobody can {decide} "
                   "this version. Add an approver to APPROVERS, or set ALLOW_SELF_APPROVAL=true.",
                   editor=editor, decide=decide)
    groups = any(a.startswith("S") for a in card.approvers)
    besides = fmt(" (not {editor})", editor=editor) if groups else Mrkdwn("")
    return fmt("🔒 Four eyes: {editor} made the last edit, so another approver must {decide} this version: "
               "{who}{besides}.", editor=editor, decide=decide, who=Mrkdwn(", ").join(others), besides=besides)
