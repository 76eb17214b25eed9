"""The Choppity client on httpx's MockTransport: error mapping, retries, timeouts, budget."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from bot.domain import Platform, PostStatus
from bot.providers.budget import BudgetExhausted, Priority, RateBudget
from bot.providers.choppity.client import ChoppityClient
from bot.providers.errors import (
    ApiBadRequest,
    ApiNotFound,
    ApiOutcomeUnknown,
    ApiRateLimited,
    ApiUnauthorized,
    ApiUnavailable,
)

POST = {"id": "p1", "clip_id": "c1", "platform": "youtube", "status": "draft", "caption": "Hi", "title": "T",
        "youtube": {"category_id": "22"}, "some_future_field": {"ignored": True}}


def client(handler: Callable[[httpx.Request], httpx.Response], *, per_minute: int = 60) -> tuple[ChoppityClient, list[float]]:
    sleeps: list[float] = []
    http = httpx.Client(base_url="https://choppity.test", transport=httpx.MockTransport(handler),
                        headers={"Authorization": "Key k"})
    return ChoppityClient(http, RateBudget(per_minute, key="t"), sleep=sleeps.append), sleeps


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


def test_parses_posts_and_ignores_unknown_fields() -> None:
    c, _ = client(lambda r: httpx.Response(200, json={"post": POST}))
    post = c.get_post("p1")
    assert post.platform is Platform.YOUTUBE and post.status is PostStatus.DRAFT
    assert post.content.youtube is not None and post.content.youtube.category_id == "22"


@pytest.mark.parametrize(("status", "exc"), [(400, ApiBadRequest), (401, ApiUnauthorized), (403, ApiUnauthorized),
                                             (404, ApiNotFound)])
def test_4xx_map_to_the_error_tree_with_choppitys_message(status: int, exc: type[Exception]) -> None:
    c, _ = client(lambda r: error(status, "X", "Choppity's own words"))
    with pytest.raises(exc) as info:
        c.get_post("p1")
    assert "Choppity's own words" in info.value.user_message  # type: ignore[attr-defined]


def test_reads_retry_5xx_and_honour_retry_after_on_429() -> None:
    answers = iter([error(503, "INTERNAL", "down"), error(429, "RATE_LIMITED", "slow", **{"Retry-After": "2"}),
                    httpx.Response(200, json={"post": POST})])
    c, sleeps = client(lambda r: next(answers))
    assert c.get_post("p1").id == "p1"
    assert len(sleeps) == 2 and sleeps[1] >= 2.0


def test_long_retry_after_is_handed_back_not_slept() -> None:
    c, sleeps = client(lambda r: error(429, "RATE_LIMITED", "slow", **{"Retry-After": "40"}))
    with pytest.raises(ApiRateLimited) as info:
        c.get_post("p1")
    assert info.value.retry_after == 40 and sleeps == []


def test_publish_is_not_retried_after_a_read_timeout() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ReadTimeout("slow", request=request)

    c, _ = client(handler)
    with pytest.raises(ApiOutcomeUnknown) as info:
        c.publish_post("p1")
    assert info.value.sent and calls == ["/v1/posts/p1/publish"]


def test_publish_is_retried_when_the_connection_never_opened() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(202, json={"post": {**POST, "status": "queued"}})

    c, _ = client(handler)
    assert c.publish_post("p1").status is PostStatus.QUEUED and len(attempts) == 2


def test_publish_5xx_is_reported_as_possibly_sent() -> None:
    c, _ = client(lambda r: error(502, "BAD_GATEWAY", "upstream"))
    with pytest.raises(ApiUnavailable) as info:
        c.publish_post("p1")
    assert info.value.sent


def test_ids_are_checked_and_quoted_into_one_path_segment() -> None:
    seen: list[str] = []
    c, _ = client(lambda r: (seen.append(r.url.raw_path.decode()), httpx.Response(200, json={"post": POST}))[1])
    for hostile in ("..", ".", "../keys", "a/b", "a b", "x\n", "", "é"):
        with pytest.raises(ApiBadRequest):
            c.get_post(hostile)
    assert seen == []
    c.get_post("clip:9d8e-7f6a_x.1")
    assert seen == ["/v1/posts/clip%3A9d8e-7f6a_x.1"]


def test_built_client_has_explicit_timeouts_and_key_in_header_only() -> None:
    c = ChoppityClient.build(base_url="https://choppity.test", api_key="secret-team", budget=RateBudget(60, key="t"))
    timeout = c._http.timeout
    assert None not in (timeout.connect, timeout.read, timeout.write, timeout.pool)
    assert c._http.headers["Authorization"] == "Key secret-team"
    assert "secret" not in str(c._http.base_url)


def test_budget_keeps_a_reserve_for_clicks() -> None:
    now = [1000.0]
    budget = RateBudget(4, key="t", clock=lambda: now[0], sleep=lambda s: None)
    budget.acquire(Priority.BACKGROUND, max_wait=0)
    budget.acquire(Priority.BACKGROUND, max_wait=0)
    budget.acquire(Priority.BACKGROUND, max_wait=0)
    with pytest.raises(BudgetExhausted):
        budget.acquire(Priority.BACKGROUND, max_wait=0)  # the last slot is kept for a person
    budget.acquire(Priority.INTERACTIVE, max_wait=0)


def test_budget_follows_the_servers_rate_limit_headers() -> None:
    now = [1000.0]
    budget = RateBudget(60, key="t", clock=lambda: now[0], sleep=lambda s: None)
    budget.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}, 200)
    with pytest.raises(BudgetExhausted) as info:
        budget.acquire(Priority.INTERACTIVE, max_wait=5)
    assert info.value.wait == pytest.approx(30)
