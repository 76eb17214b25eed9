"""Greenlight's words: thread replies, ephemeral notes, refusals and the notice modal.

Pure builders from data to text. Every value that came from outside (a reason someone typed, a
provider's error, a URL, an account name) goes through `bot.slack.mrkdwn`, so none of it can ping,
link or break out of the markup. Refusals are `Say` values: mrkdwn for ephemerals, plain text for a
modal's inline error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import SectionBlock
from slack_sdk.models.blocks.basic_components import MarkdownTextObject, PlainTextObject
from slack_sdk.models.views import View

from bot.domain import (
    AccountResult,
    BulkItem,
    ChangeRequest,
    Import,
    ImportState,
    PendingAction,
    Platform,
    PostStatus,
)
from bot.slack.ids import ViewId
from bot.slack.mrkdwn import Link, Mrkdwn, Person, Say, When, code, escape, fmt, link, mention, say, truncate
from bot.slack.review_lines import deciders

VERB: dict[PendingAction, str] = {
    PendingAction.PUBLISH: "publish",
    PendingAction.SCHEDULE: "schedule",
    PendingAction.CANCEL: "cancel",
    PendingAction.EDIT: "save your edit to",
}
VERB_ED: dict[PendingAction, str] = {
    PendingAction.PUBLISH: "published",
    PendingAction.SCHEDULE: "scheduled",
    PendingAction.EDIT: "edited",
    PendingAction.CANCEL: "cancelled",
}
NOTICE_TEXT_LIMIT = 2900


def notice_modal(title: str, text: Mrkdwn | Say | str) -> View:
    """A modal with one message and a Close button (replaces a loading modal when something failed)."""
    body = text.mrkdwn if isinstance(text, Say) else text if isinstance(text, Mrkdwn) else escape(text)
    return View(
        type="modal",
        callback_id=ViewId.LOADING.value,
        title=PlainTextObject(text=title[:24]),
        close=PlainTextObject(text="Close"),
        blocks=[SectionBlock(text=MarkdownTextObject(text=truncate(body, NOTICE_TEXT_LIMIT)))],
    )


# -- refusals (ephemeral or inline modal error) ------------------------------------------------------


def unknown_post() -> Say:
    """The post id in a click or a modal doesn't exist (any more)."""
    return say("Greenlight doesn't know this post any more.")


def unknown_clip() -> Say:
    """A clip button or modal naming a clip Greenlight no longer has."""
    return say("Greenlight doesn't know this clip any more.")


def edit_first(problems: Sequence[str]) -> Say:
    """What must be fixed before a draft can be published or scheduled."""
    return say("Edit the draft first: {problems}", problems=" ".join(problems))


def not_an_approver(action: str, approvers: Mrkdwn) -> Say:
    """Someone outside APPROVERS tried an approver action."""
    s = say("Only approvers can {action} posts.", action=action)
    return Say(fmt("{s} Approvers: {who}.", s=s.mrkdwn, who=approvers), s.plain + " Ask one of the approvers.")


def approver_check_failed() -> Say:
    """Slack couldn't tell us who is in an approver group: fail closed, say so."""
    return say("Greenlight couldn't check the approver list with Slack just now, so nothing was changed. Try again in a minute.")


def cannot_save_now() -> Say:
    """The database can't take writes: nothing was changed."""
    return say("Greenlight can't save right now, so nothing was changed. Please try again in a minute.")


def needs_approvals(action: PendingAction, have: int, need: int) -> Say:
    """Publish/Schedule pressed before enough people approved."""
    return say(
        "This post needs {need} approvals before it can be {verb}; it has {have}.",
        need=need, verb=VERB_ED[action], have=have,
    )


def who_else(approvers: Sequence[str], editor: str) -> Mrkdwn:
    """Who may decide on a version its last editor may not (four eyes), for a refusal."""
    if not approvers:
        return Mrkdwn("anyone else in the channel")
    others = deciders(tuple(approvers), editor)
    if not others:
        return Mrkdwn("nobody else is listed in APPROVERS (add an approver, or set ALLOW_SELF_APPROVAL=true)")
    return Mrkdwn(", ").join(others)


def self_approval(verb: str = "approve", who: Mrkdwn | None = None) -> Say:
    """The last editor tried to approve, publish or schedule their own version (four eyes)."""
    base = say("You made the last edit, so someone else needs to {verb} this version (four eyes: "
               "ALLOW_SELF_APPROVAL is off).", verb=verb)
    if who is None:
        return base
    return Say(fmt("{s} Who can: {who}.", s=base.mrkdwn, who=who), base.plain + " Ask another approver.")


def outsider(action: str) -> Say:
    """Someone from another organisation (Slack Connect) whose member ID is not in APPROVERS."""
    return say("You're in another organisation's workspace, so you can {action} posts here only once your member ID "
               "is listed in Greenlight's APPROVERS. Ask the people who run this channel to add it.", action=action)


def outsider_command() -> Say:
    """`/greenlight` imports or queue from someone of another organisation who is not in APPROVERS."""
    return say("You're in another organisation's workspace, so Greenlight's imports and queue open up to you only "
               "once your member ID is listed in its APPROVERS. Ask the people who run this channel to add it.")


def changes_pending(request: ChangeRequest, verb: str) -> Say:
    """Approve, Publish or Schedule while a change request is open."""
    return say("{who} asked for changes ({reason}), so this version can't be {verb} yet. Edit the draft: the next "
               "version resolves the request.", who=Person(request.by, plain="A reviewer"),
               reason=request.reason.label, verb=verb)


def changes_already_requested(request: ChangeRequest) -> Say:
    """A second "Request changes" while one is open."""
    return say("{who} already asked for changes ({reason}). Add yours in the card's thread; the next edit resolves "
               "the request.", who=Person(request.by, plain="A reviewer"), reason=request.reason.label)


def changes_only_on_drafts(status: PostStatus) -> Say:
    """"Request changes" on a post that is no longer a draft."""
    return say("Changes can only be requested on a draft; this post is {status}.", status=status.value)


def changes_requested(request: ChangeRequest, ask: str | None) -> Mrkdwn:
    """The thread's record of a change request, addressed to whoever should edit."""
    line = say("✋ {who} requested changes: {reason}", who=Person(request.by), reason=request.reason.label).mrkdwn
    if request.note:
        line = fmt("{line} — {note}", line=line, note=request.note)
    if ask:
        nudge = say("{who}, please edit the draft: Publish, Schedule and Approve come back with the next version.",
                    who=Person(ask)).mrkdwn
    else:
        nudge = Mrkdwn("Edit the draft to resolve it: Publish, Schedule and Approve come back with the next version.")
    return Mrkdwn("\n").join([line, nudge])


def already_approved() -> Say:
    """A second approval by the same person."""
    return say("You already approved this version.")


def why_not(
    action: PendingAction,
    *,
    status: PostStatus,
    pending: PendingAction | None,
    pending_by: str | None,
    error: str | None,
    raw_status: str | None,
    can_cancel: bool,
    provider: str,
) -> Say:
    """Why `action` isn't possible on a post in this state."""
    if pending is not None:
        return say("This post is already being {verb} by {who}.", verb=VERB_ED[pending], who=Person(pending_by))
    if status is PostStatus.PUBLISHED:
        return say("This post is already published.")
    if status is PostStatus.CANCELLED:
        return say("This post was cancelled.")
    if status is PostStatus.FAILED:
        return say("This post failed to publish ({reason}) and can't be changed from Slack.", reason=error or "no reason given")
    if status in (PostStatus.PROCESSING, PostStatus.UPLOADING):
        return say("Publishing is already under way at the platform; it can't be changed or pulled back now.")
    if status is PostStatus.UNKNOWN:
        return say("The provider reports this post as {word}, which Greenlight doesn't know, so it leaves it alone.",
                   word=raw_status or "an unfamiliar status")
    if status in (PostStatus.QUEUED, PostStatus.SCHEDULED):
        if can_cancel:
            return say("This post is already {status}; only Cancel is still possible.", status=status.value)
        return say("This post is already {status} at {provider} and can no longer be changed or cancelled from Slack; "
                   "use {provider}'s dashboard if it must be stopped.", status=status.value, provider=provider)
    return say("This post is {status}, so it can't be {verb}.", status=status.value, verb=VERB_ED[action])


# -- thread replies ----------------------------------------------------------------------------------


def approved(user: str, count: int, need: int) -> Mrkdwn:
    """One approval recorded."""
    return say("👍 {who} approved ({count}/{need}).", who=Person(user), count=count, need=need).mrkdwn


def handed_over(user: str, provider: str, status: PostStatus) -> Mrkdwn:
    """Publish accepted by the provider."""
    return say("✅ {who} approved; {provider} has it {status}.", who=Person(user), provider=provider, status=status.value).mrkdwn


def scheduled(when: datetime | None, user: str | None) -> Mrkdwn:
    """A post is scheduled (by someone, or as the provider reports)."""
    if when is None:
        return say("🗓 Scheduled{by}.", by=by(user)).mrkdwn
    return say("🗓 Scheduled for {when}{by}.", when=When(when), by=by(user)).mrkdwn


def by(user: str | None) -> Mrkdwn:
    """The " by <@U…>" suffix, or nothing."""
    return fmt(" by {who}", who=mention(user)) if user else Mrkdwn("")


def cancelled(user: str | None, reason: str | None) -> Mrkdwn:
    """A post was cancelled from Slack (with the optional reason, shown literally)."""
    if reason:
        return say("🚫 {who} cancelled this post. Reason: {reason}", who=Person(user), reason=reason).mrkdwn
    return say("🚫 {who} cancelled this post.", who=Person(user)).mrkdwn


def edited(user: str | None, summary: str, *, approvals_reset: bool, diff: Sequence[Mrkdwn] = (),
           resolved: ChangeRequest | None = None) -> Mrkdwn:
    """An edit was saved: what changed (field summary, then a word-level diff per text field)."""
    text = say("✏️ {who} edited {summary}.", who=Person(user), summary=summary).mrkdwn
    if approvals_reset:
        text = text + Mrkdwn(" Approvals were reset; this version needs new approvals.")
    if resolved is not None:
        text = text + say(" This resolves the changes {who} requested ({reason}).", who=Person(resolved.by),
                          reason=resolved.reason.label).mrkdwn
    return Mrkdwn("\n").join([text, *diff])


def handed_over_late(provider: str, minutes: int) -> Mrkdwn:
    """A held schedule was handed over after its time (Greenlight wasn't running then)."""
    return say("📤 Handed to {provider} {minutes} min after the scheduled time (Greenlight wasn't running then).",
               provider=provider, minutes=minutes).mrkdwn


def account_results(results: Sequence[AccountResult]) -> Mrkdwn:
    """Per-account results of a post that went to several accounts."""
    ok = [r for r in results if r.ok]
    head = "Published on every account:" if len(ok) == len(results) else (
        "⚠️ Published only in part:" if ok else "❌ Publishing failed on every account:")
    lines = [Mrkdwn(head)]
    for r in results:
        if r.ok:
            lines.append(fmt("✅ {account}: {link}", account=r.account, link=link_or_text(r.url)) if r.url
                         else fmt("✅ {account}", account=r.account))
        elif r.ok is False:
            lines.append(fmt("❌ {account} failed", account=r.account))
        else:
            lines.append(fmt("❔ {account}: no result reported", account=r.account))
    return Mrkdwn("\n").join(lines)


def could_not_load(message: str | None) -> Say:
    """Loading a post for a modal failed (the provider's words, when it gave some)."""
    if message:
        return say("⚠️ Couldn't load the post. {message}", message=message)
    return say("⚠️ Greenlight couldn't load this post just now. Nothing was changed; please try again.")


def provider_gone(slug: str) -> Say:
    """A post from a provider this Greenlight no longer has configured."""
    return say("{provider} isn't set up on this Greenlight any more, so this post can't be changed from here.",
               provider=slug.title())


def lost_hand_off(provider: str) -> Say:
    """A hand-off whose answer was lost, to a provider that can't be asked afterwards."""
    return say("Greenlight lost {provider}'s answer while handing this post over, so it may or may not be "
               "publishing. Check the {provider} dashboard; Greenlight won't send it again.", provider=provider)


def still_in_flight(provider: str, hours: int) -> Mrkdwn:
    """Polling gave up on a post that never finished."""
    return say("⚠️ {provider} still reports this post as in progress after {hours} hours; check the {provider} "
               "dashboard.", provider=provider, hours=hours).mrkdwn


def link_or_text(url: str) -> Mrkdwn:
    """A safe URL as a link to itself; anything else as escaped text."""
    return link(url, url)


def action_failed_thread(user: str, action: PendingAction, message: str) -> Mrkdwn:
    """The thread's record of a failed action."""
    return say("⚠️ {who} couldn't {verb} this post: {message}", who=Person(user),
               verb=action.value, message=message).mrkdwn


def action_failed_ephemeral(action: PendingAction, platform: Platform, message: str, *, now: PostStatus | None,
                            provider: str) -> Mrkdwn:
    """What the person who clicked is told when their action failed."""
    text = say("⚠️ Couldn't {verb} the {label} post. {message}", verb=VERB[action], label=platform.label, message=message).mrkdwn
    if now is not None:
        text = text + say(" It is now {status} on {provider}; the card has been updated.", status=now.value, provider=provider).mrkdwn
    return text


def internal_error_ephemeral() -> Mrkdwn:
    """A job gave up on an unexpected error."""
    return Mrkdwn("⚠️ Greenlight hit an internal error and could not finish that action. Nothing was published; please try again.")


def internal_error_thread(user: str | None, action: str) -> Mrkdwn:
    """The thread's record of an internal error."""
    return say("⚠️ {who} couldn't {action} this post: Greenlight hit an internal error.", who=Person(user), action=action).mrkdwn


def published(platform: Platform, url: str | None) -> Mrkdwn:
    """The post is live."""
    label = f"View on {platform.label}"
    if url:
        return say("🚀 Published on {platform}. {link}", platform=platform.label, link=Link(url, label)).mrkdwn
    return say("🚀 Published on {platform}.", platform=platform.label).mrkdwn


def publish_failed(platform: Platform, error: str | None, approver: str | None) -> Mrkdwn:
    """Publishing failed at the provider or the platform."""
    text = say("❌ Publishing to {platform} failed: {reason}.", platform=platform.label, reason=error or "no reason given").mrkdwn
    if approver:
        text = text + say(" {who}, please take a look.", who=Person(approver)).mrkdwn
    return text


def publishing_under_way(platform: Platform, status: PostStatus) -> Mrkdwn:
    """Processing/uploading reached: the platform has it."""
    return say("⏳ {platform} is {status} the post; it can no longer be pulled back.",
               platform=platform.label, status=status.value).mrkdwn


def card_not_shown(platform: Platform, clip_id: str, error: str) -> Mrkdwn:
    """Slack refused even the compact card: say which draft is missing."""
    return say("⚠️ Greenlight couldn't show the {platform} draft for clip {clip} here (Slack said {error}). "
               "Use /greenlight queue or the provider's dashboard to review it.",
               platform=platform.label, clip=clip_id, error=error).mrkdwn


def reminder(who: Mrkdwn, hours: int) -> Mrkdwn:
    """A draft has waited too long."""
    return fmt("⏰ {who}: this draft has been waiting for {hours} h. Publish, schedule or cancel it?", who=who, hours=hours)


def changes_reminder(request: ChangeRequest, ask: str | None, hours: int) -> Mrkdwn:
    """A draft sent back for changes has waited too long for its edit."""
    if ask:
        return say("⏰ {who}, the changes {by} asked for ({reason}) have been waiting for {hours} h. Edit the draft "
                   "to resolve them.", who=Person(ask), by=Person(request.by), reason=request.reason.label,
                   hours=hours).mrkdwn
    return say("⏰ The changes {by} asked for ({reason}) have been waiting for {hours} h. Edit the draft to resolve "
               "them.", by=Person(request.by), reason=request.reason.label, hours=hours).mrkdwn


def overdue(who: Mrkdwn, due: datetime, deadline: str, changes: ChangeRequest | None, ask: str | None) -> Mrkdwn:
    """The decision deadline passed: the one escalation to the approvers."""
    text = say("🚨 Overdue: {who}, a decision on this draft was due {when} ({deadline} after it arrived). Publish, "
               "schedule, request changes or cancel it.", who=who, when=When(due), deadline=deadline).mrkdwn
    if changes is not None:
        text = text + say(" Changes were requested ({reason}) and are still waiting for an edit{by}.",
                          reason=changes.reason.label, by=by(ask)).mrkdwn
    return text


# -- command replies -----------------------------------------------------------------------------------


def looking_up(what: str, ident: str) -> Mrkdwn:
    """The immediate ack of an import command."""
    return fmt("🔎 Looking up {what} {ident}…", what=what, ident=code(ident))


def lookup_failed(what: str, ident: str, message: str) -> Mrkdwn:
    """An import command failed at the provider."""
    return fmt("⚠️ Couldn't read {what} {ident}. {message}", what=what, ident=code(ident), message=message)


def import_summary(
    noun: str, found: Import, *, carded: Sequence[tuple[str, str]], already: int, shown: int | None = None,
    failed: int = 0,
) -> Mrkdwn:
    """The ephemeral answer to `/greenlight <command> <ref>`.

    `carded` lists (platform, targets) of the drafts carded now; `shown`/`failed` count the cards Slack
    really accepted or refused, once known.
    """
    ref = code(found.ref)
    n = len(carded)
    if found.state is ImportState.FAILED:
        lines = [fmt("The {noun} {ref} is {status}, so it has no drafts to review.", noun=noun, ref=ref,
                     status=found.state_word)]
    elif found.state is ImportState.RUNNING:
        lines = [fmt("The {noun} {ref} is still {status}. Greenlight will post its drafts once it is ready "
                     "(it checks again every few minutes).", noun=noun, ref=ref, status=found.state_word)]
    elif found.state is ImportState.NO_TARGETS:
        lines = [fmt("The {noun} {ref} is ready, but there is no active account to publish to (connect one, or "
                     "check REAP_INTEGRATIONS). No drafts were posted.", noun=noun, ref=ref)]
    elif n:
        lines = _posted(noun, ref, found, carded, shown, failed)
    elif already:
        lines = [fmt("Nothing new for the {noun} {ref}: every draft already has a card.", noun=noun, ref=ref)]
    else:
        lines = [fmt("The {noun} {ref} has no drafts to review.", noun=noun, ref=ref)]
    if n and already:
        lines.append(fmt("{k} draft(s) already had a card.", k=already))
    for post in found.others:
        word = post.raw_status if post.status is PostStatus.UNKNOWN and post.raw_status else post.status.value
        lines.append(fmt("• {platform}: {status} (not a draft, no card)", platform=post.platform.label, status=word))
    lines.extend(fmt("• Skipped {reason}.", reason=reason) for reason in found.unreadable)
    lines.extend(fmt("⚠️ {warning}", warning=warning) for warning in found.warnings)
    return Mrkdwn("\n").join(lines)


def _posted(noun: str, ref: Mrkdwn, found: Import, carded: Sequence[tuple[str, str]], shown: int | None,
            failed: int) -> list[Mrkdwn]:
    n = len(carded)
    where = ", ".join(found.targets) if found.targets else ", ".join(platform for platform, _ in carded)
    posted = n if shown is None else shown
    if posted == n:
        lines = [fmt("Posted {n} draft{s} for the {noun} {ref} ({where}).", n=n, s="s" if n != 1 else "", noun=noun,
                     ref=ref, where=where)]
    else:
        lines = [fmt("Posted {posted} of {n} drafts for the {noun} {ref} ({where}).", posted=posted, n=n, noun=noun,
                     ref=ref, where=where)]
    if failed:
        lines.append(fmt("⚠️ {failed} draft(s) couldn't be shown in Slack; the channel has a note saying which.",
                         failed=failed))
    if shown is not None and posted + failed < n:
        lines.append(fmt("{left} card(s) are still on their way (Slack is pacing new messages).", left=n - posted - failed))
    return lines


def bulk_done(action: PendingAction, accepted: Sequence[BulkItem], refused: Sequence[BulkItem]) -> Mrkdwn:
    """What Publish all / Schedule all did, for the person who confirmed it."""
    verb = "Publishing" if action is PendingAction.PUBLISH else "Scheduling"
    lines: list[Mrkdwn] = []
    if accepted:
        where = ", ".join(i.platform.label for i in accepted)
        lines.append(fmt("📣 {verb} {n} post(s) of this clip: {where}. Each card in the thread shows its outcome.",
                         verb=verb, n=len(accepted), where=where))
    else:
        lines.append(escape("Nothing was done."))
    for item in refused:
        lines.append(fmt("• {platform} was left out: {why}", platform=item.platform.label, why=item.refusal or ""))
    return Mrkdwn("\n").join(lines)


def bulk_too_late() -> Say:
    """The confirmation waited so long that the first time is now too close."""
    return say("The first time is now less than 5 minutes away, so nothing was scheduled. Please choose Schedule all "
               "again.")
