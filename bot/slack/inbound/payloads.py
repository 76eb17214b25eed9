"""Typed Slack payloads: interactions, slash commands, Events API envelopes."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
)

from bot.slack.inbound.policy import (
    MAX_DATETIME_SECONDS,
    AppId,
    BlockOrActionId,
    BotId,
    ButtonValue,
    Challenge,
    ChannelId,
    CommandName,
    CommandText,
    ElementType,
    EnterpriseId,
    EventId,
    EventType,
    InputText,
    Name,
    NonEmptyBlockOrActionId,
    OptionValue,
    PrivateMetadata,
    ResponseUrl,
    ShortText,
    SlackModel,
    TeamOrEnterpriseId,
    Timestamp,
    Token,
    TriggerId,
    UserId,
    ViewHash,
    ViewIdStr,
    empty_to_none,
)


class User(SlackModel):
    """The person who clicked or submitted."""

    id: UserId
    team_id: TeamOrEnterpriseId | None = None
    name: Name | None = None
    username: Name | None = None


class Team(SlackModel):
    id: TeamOrEnterpriseId
    domain: Name | None = None
    enterprise_id: EnterpriseId | None = None
    enterprise_name: Name | None = None


class Enterprise(SlackModel):
    id: EnterpriseId
    name: Name | None = None


class Channel(SlackModel):
    id: ChannelId
    name: Name | None = None


class Container(SlackModel):
    """Where a clicked element lives: a message (channel_id, message_ts) or a view (view_id)."""

    type: ElementType
    channel_id: ChannelId | None = None
    message_ts: Timestamp | None = None
    view_id: ViewIdStr | None = None
    is_ephemeral: bool | None = None


class Option(SlackModel):
    value: OptionValue


class StateValue(SlackModel):
    """One element's state in `view.state.values[block_id][action_id]`.

    Text is kept as sent (lone surrogates and control characters included) so the form code can
    answer with an inline error; `selected_date_time` is range-checked by `selected_date_time()`.
    """

    type: ElementType
    value: InputText | None = None
    selected_option: Option | None = None
    selected_options: Annotated[list[Option], Field(max_length=100)] | None = None
    selected_date_time: int | ShortText | None = None
    selected_date: ShortText | None = None
    selected_time: ShortText | None = None
    timezone: ShortText | None = None


StateValues = Annotated[
    dict[BlockOrActionId, Annotated[dict[BlockOrActionId, StateValue], Field(max_length=10)]],
    Field(max_length=100),  # Slack allows 100 blocks in a modal
]


class ViewState(SlackModel):
    values: StateValues = Field(default_factory=dict)


class View(SlackModel):
    """A modal (or the Home tab) as Slack echoes it back."""

    id: ViewIdStr
    # Required: Bolt reads body["view"]["type"] of every submission without checking it is there.
    type: ElementType
    callback_id: BlockOrActionId = ""
    private_metadata: PrivateMetadata = ""
    state: ViewState = Field(default_factory=ViewState)
    hash: ViewHash | None = None
    team_id: TeamOrEnterpriseId | None = None
    app_id: AppId | None = None
    bot_id: BotId | None = None
    app_installed_team_id: TeamOrEnterpriseId | None = None
    external_id: Name | None = None
    root_view_id: ViewIdStr | None = None
    previous_view_id: ViewIdStr | None = None


class Action(SlackModel):
    """One element of `block_actions.actions`."""

    action_id: NonEmptyBlockOrActionId
    block_id: BlockOrActionId | None = None
    type: ElementType
    value: ButtonValue | None = None
    action_ts: Timestamp | None = None
    selected_option: Option | None = None
    selected_options: Annotated[list[Option], Field(max_length=100)] | None = None


class ResponseUrlEntry(SlackModel):
    """`view_submission.response_urls[]` (conversation selects with response_url_enabled)."""

    block_id: BlockOrActionId
    action_id: BlockOrActionId
    channel_id: ChannelId
    response_url: ResponseUrl


# ---------------------------------------------------------------------------------------------
# Payload kinds
# ---------------------------------------------------------------------------------------------


class BlockActions(SlackModel):
    """A click on a card button or a Home-tab button (interactive payload, type block_actions)."""

    kind: ClassVar[str] = "block_actions"
    type: Literal["block_actions"]
    user: User
    team: Team | None = None
    enterprise: Enterprise | None = None
    api_app_id: AppId | None = None
    container: Container | None = None
    channel: Channel | None = None
    view: View | None = None
    trigger_id: TriggerId
    response_url: ResponseUrl | None = None
    actions: Annotated[list[Action], Field(min_length=1, max_length=25)]
    is_enterprise_install: bool | None = None

    @property
    def action(self) -> Action:
        """The element that was used (Slack sends exactly one)."""
        return self.actions[0]

    @property
    def channel_id(self) -> str | None:
        """The channel of the clicked message, if it was in a message."""
        if self.container is not None and self.container.channel_id:
            return self.container.channel_id
        return self.channel.id if self.channel is not None else None


class ViewSubmission(SlackModel):
    """A modal's submit button (type view_submission)."""

    kind: ClassVar[str] = "view_submission"
    type: Literal["view_submission"]
    user: User
    team: Team | None = None
    enterprise: Enterprise | None = None
    api_app_id: AppId | None = None
    trigger_id: TriggerId | None = None
    view: View
    response_urls: Annotated[list[ResponseUrlEntry], Field(max_length=10)] = Field(default_factory=list)
    is_enterprise_install: bool | None = None


class ViewClosed(SlackModel):
    """A modal closed with notify_on_close (type view_closed)."""

    kind: ClassVar[str] = "view_closed"
    type: Literal["view_closed"]
    user: User
    team: Team | None = None
    enterprise: Enterprise | None = None
    api_app_id: AppId | None = None
    view: View
    is_cleared: bool | None = None
    is_enterprise_install: bool | None = None


class SlashCommand(SlackModel):
    """A slash command (form fields, all strings)."""

    kind: ClassVar[str] = "slash_command"
    command: CommandName
    text: CommandText = ""
    user_id: UserId
    channel_id: ChannelId
    team_id: TeamOrEnterpriseId
    trigger_id: TriggerId
    response_url: ResponseUrl
    enterprise_id: Annotated[EnterpriseId | None, BeforeValidator(empty_to_none)] = None
    api_app_id: Annotated[AppId | None, BeforeValidator(empty_to_none)] = None
    user_name: Name | None = None
    team_domain: Name | None = None
    channel_name: Name | None = None
    enterprise_name: Name | None = None
    is_enterprise_install: Literal["true", "false"] | None = None


class AppHomeOpened(SlackModel):
    type: Literal["app_home_opened"]
    user: UserId
    channel: ChannelId | None = None
    tab: ShortText = "home"
    event_ts: Timestamp | None = None


class OtherEvent(SlackModel):
    """An event Greenlight has no model for: only its type is checked; Bolt answers it."""

    type: EventType


def _event_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return "app_home_opened" if kind == "app_home_opened" else "other"


Event = Annotated[
    Annotated[AppHomeOpened, Tag("app_home_opened")] | Annotated[OtherEvent, Tag("other")],
    Discriminator(_event_tag),
]


class Authorization(SlackModel):
    enterprise_id: EnterpriseId | None = None
    team_id: TeamOrEnterpriseId | None = None
    user_id: UserId | None = None
    is_bot: bool | None = None
    is_enterprise_install: bool | None = None


class EventCallback(SlackModel):
    """An Events API delivery (JSON, type event_callback)."""

    kind: ClassVar[str] = "event_callback"
    type: Literal["event_callback"]
    team_id: TeamOrEnterpriseId | None = None
    enterprise_id: EnterpriseId | None = None
    api_app_id: AppId | None = None
    event: Event
    event_id: EventId
    event_time: Annotated[int, Field(ge=0, le=MAX_DATETIME_SECONDS)]
    authorizations: Annotated[list[Authorization], Field(max_length=10)] | None = None
    is_ext_shared_channel: bool | None = None


class UrlVerification(SlackModel):
    """The Events API URL handshake; Bolt answers it with the challenge."""

    kind: ClassVar[str] = "url_verification"
    type: Literal["url_verification"]
    challenge: Challenge
    token: Token | None = None


class AppRateLimited(SlackModel):
    """Slack telling the app it dropped events this minute."""

    kind: ClassVar[str] = "app_rate_limited"
    type: Literal["app_rate_limited"]
    team_id: TeamOrEnterpriseId | None = None
    api_app_id: AppId | None = None
    minute_rate_limited: Annotated[int, Field(ge=0, le=MAX_DATETIME_SECONDS)]


class SslCheck(SlackModel):
    """Slack's periodic certificate probe for slash-command URLs; Bolt's SslCheck answers 200."""

    kind: ClassVar[str] = "ssl_check"
    ssl_check: Literal["1"]
    token: Token | None = None


SlackPayload = (
    BlockActions
    | ViewSubmission
    | ViewClosed
    | SlashCommand
    | EventCallback
    | UrlVerification
    | AppRateLimited
    | SslCheck
)

INTERACTIVE: dict[str, type[SlackModel]] = {
    "block_actions": BlockActions,
    "view_submission": ViewSubmission,
    "view_closed": ViewClosed,
}
JSON_ENVELOPES: dict[str, type[SlackModel]] = {
    "event_callback": EventCallback,
    "url_verification": UrlVerification,
    "app_rate_limited": AppRateLimited,
}


@dataclass(frozen=True)
class Inbound:
    """A validated Slack request: `payload` for our code, `body` (the decoded dict) for Bolt."""

    payload: SlackPayload
    body: dict[str, Any] = field(repr=False)

    @property
    def kind(self) -> str:
        """block_actions, view_submission, view_closed, slash_command, event_callback, ..."""
        return self.payload.kind
