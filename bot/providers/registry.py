"""The providers this Greenlight serves, built from the settings. The only place provider classes
are named: everything else looks providers up here, by slug or by command."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from bot.config import Settings
from bot.providers.base import Provider
from bot.providers.budget import RateBudget
from bot.providers.choppity.provider import ChoppityProvider
from bot.providers.reap.provider import ReapProvider

BudgetFactory = Callable[[str, int], RateBudget]


class Providers(Mapping[str, Provider]):
    """The configured providers, by slug."""

    def __init__(self, providers: Iterable[Provider]) -> None:
        self._by_slug = {p.slug: p for p in providers}

    def __getitem__(self, slug: str) -> Provider:
        return self._by_slug[slug]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_slug)

    def __len__(self) -> int:
        return len(self._by_slug)

    def by_command(self, command: str) -> Provider | None:
        """The provider whose drafts `/greenlight <command> <ref>` brings in."""
        return next((p for p in self._by_slug.values() if p.command == command), None)

    def close(self) -> None:
        """Close every provider's connections."""
        for provider in self._by_slug.values():
            provider.close()


def build_providers(settings: Settings, budget_for: BudgetFactory) -> Providers:
    """Every provider whose API key is set, each with its own request budget."""
    found: list[Provider] = []
    if settings.choppity_api_key:
        found.append(ChoppityProvider.build(
            base_url=settings.choppity_api_url, api_key=settings.choppity_api_key,
            webhook_secrets=settings.choppity_webhook_secrets,
            budget=budget_for("choppity", settings.choppity_requests_per_minute),
            timeout=settings.http_timeout_seconds,
        ))
    if settings.reap_api_key:
        found.append(ReapProvider.build(
            base_url=settings.reap_api_url, api_key=settings.reap_api_key,
            webhook_token=settings.reap_webhook_token, integrations=settings.reap_integrations,
            budget=budget_for("reap", settings.reap_requests_per_minute),
            timeout=settings.http_timeout_seconds,
        ))
    return Providers(found)
