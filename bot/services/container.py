"""Every service of a running Greenlight, built once by the composition root (`bot.app`).

Listeners and routes receive this object (Bolt passes it in each request's context); they never
import the composition root, and nothing looks services up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.config import Settings
from bot.jobs import JobRunner
from bot.providers.registry import Providers
from bot.services.actions import ActionRunner
from bot.services.clips import ClipService
from bot.services.delivery import SlackDelivery
from bot.services.health import Health
from bot.services.identity import SlackIdentity
from bot.services.intake import IntakeService
from bot.services.outcomes import OutcomeService, Reconciler
from bot.services.overview import Overview
from bot.services.previews import Previews
from bot.services.reminders import Reminders
from bot.services.review import Review

# The key under which Bolt hands listeners the services (see bot.app).
SERVICES_KEY = "greenlight_services"


@dataclass(frozen=True)
class Services:
    """The services of one Greenlight process."""

    settings: Settings
    engine: Engine
    slack: WebClient
    identity: SlackIdentity
    providers: Providers
    review: Review
    clips: ClipService
    actions: ActionRunner
    intake: IntakeService
    outcomes: OutcomeService
    delivery: SlackDelivery
    previews: Previews
    overview: Overview
    runner: JobRunner
    reconciler: Reconciler
    reminders: Reminders
    health: Health
    # What time it is (tests move it forward); listeners read it instead of the wall clock.
    clock: Callable[[], datetime]
