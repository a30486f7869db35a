"""Retry decisions and the client-side rate limiter, without a network: responses are built
directly or served by httpx.MockTransport."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.engine.retry import (
    Action,
    RetriesExhausted,
    RetryPolicy,
    decide,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.ACCEPT),
        (201, Action.ACCEPT),
        (204, Action.ACCEPT),
        (400, Action.FAIL),
        (401, Action.FAIL),
        (403, Action.FAIL),
        (404, Action.FAIL),
        (408, Action.RETRY),
        (409, Action.FAIL),
        (422, Action.FAIL),
        (429, Action.RETRY),
        (500, Action.RETRY),
        (502, Action.RETRY),
        (503, Action.RETRY),
        (504, Action.RETRY),
    ],
)
def test_status_decides_the_action(status: int, action: Action) -> None:
    assert decide(status) is action


def test_retry_after_is_read_as_seconds_or_http_date() -> None:
    in_ten_seconds = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)

    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert 8.0 < retry_after_seconds(httpx.Response(429, headers={"Retry-After": in_ten_seconds})) <= 10.0
    assert retry_after_seconds(httpx.Response(429)) is None
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None


class Server:
    """Answers with scripted statuses (or raises scripted errors) and counts calls."""

    def __init__(self, *script: int | Exception | httpx.Response) -> None:
        self.script: Iterator[int | Exception | httpx.Response] = iter(script)
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        step = next(self.script)
        if isinstance(step, Exception):
            raise step
        return step if isinstance(step, httpx.Response) else httpx.Response(step, json={})

    def sender(self) -> Callable[[], httpx.Response]:
        client = httpx.Client(transport=httpx.MockTransport(self.handle), base_url="http://crm.test")
        return lambda: client.get("/rest/people")


def policy(sleeps: list[float], **overrides: float) -> RetryPolicy:
    settings = {"max_attempts": 4, "backoff_base_seconds": 1.0, "backoff_max_seconds": 30.0}
    return RetryPolicy(**{**settings, **overrides}, sleep=sleeps.append)  # type: ignore[arg-type]


def test_server_errors_are_retried_until_one_succeeds() -> None:
    server = Server(503, 500, 200)
    sleeps: list[float] = []

    response = policy(sleeps).send(server.sender(), "GET /rest/people")

    assert response.status_code == 200
    assert server.calls == 3
    assert len(sleeps) == 2


def test_a_client_error_is_returned_at_once_without_retrying() -> None:
    server = Server(400)
    sleeps: list[float] = []

    response = policy(sleeps).send(server.sender(), "GET /rest/people")

    assert response.status_code == 400
    assert (server.calls, sleeps) == (1, [])


def test_retry_after_is_honoured_and_capped() -> None:
    server = Server(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
        200,
    )
    sleeps: list[float] = []

    policy(sleeps, backoff_max_seconds=30.0).send(server.sender(), "GET /rest/people")

    assert sleeps == [3.0, 30.0]


def test_backoff_without_retry_after_grows_exponentially_with_jitter_and_is_bounded() -> None:
    server = Server(*[429] * 9, 200)
    sleeps: list[float] = []

    policy(sleeps, max_attempts=10, backoff_base_seconds=1.0, backoff_max_seconds=20.0).send(
        server.sender(), "GET /rest/people"
    )

    assert len(sleeps) == 9
    for attempt, wait in enumerate(sleeps, start=1):
        assert 0 <= wait <= min(20.0, 2 ** (attempt - 1))
    assert len(set(sleeps)) > 1, "jitter should spread the waits"


def test_transport_errors_and_timeouts_are_retried() -> None:
    server = Server(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 200)
    sleeps: list[float] = []

    response = policy(sleeps).send(server.sender(), "GET /rest/people")

    assert response.status_code == 200
    assert server.calls == 3


def test_giving_up_raises_an_operator_actionable_error() -> None:
    server = Server(*[502] * 4)
    sleeps: list[float] = []

    with pytest.raises(RetriesExhausted) as raised:
        policy(sleeps, max_attempts=4).send(server.sender(), "POST /rest/batch/people")

    message = str(raised.value)
    assert server.calls == 4
    assert raised.value.status == 502
    assert "POST /rest/batch/people" in message
    assert "4 attempts" in message and "HTTP 502" in message
    assert "rerun" in message.lower()


def test_giving_up_on_timeouts_says_so() -> None:
    server = Server(*[httpx.ReadTimeout("slow")] * 2)

    with pytest.raises(RetriesExhausted, match="timeout.*timeout_seconds"):
        policy([], max_attempts=2).send(server.sender(), "GET /rest/people")


def test_each_retry_is_logged() -> None:
    server = Server(503, 200)
    logged: list[str] = []

    RetryPolicy(max_attempts=3, sleep=lambda _s: None, log=logged.append).send(
        server.sender(), "GET /rest/people"
    )

    assert len(logged) == 1
    assert "GET /rest/people" in logged[0] and "503" in logged[0]


def test_policy_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(backoff_base_seconds=10.0, backoff_max_seconds=1.0)


# -- rate limiter (a fake clock: `sleep` advances it) ---------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_limiter_lets_a_burst_through_then_paces_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, burst=5, clock=lambda: clock.now, sleep=clock.sleep)

    for _ in range(5):
        limiter.acquire()
    assert clock.slept == []

    for _ in range(3):
        limiter.acquire()
    assert clock.slept == pytest.approx([1.0, 1.0, 1.0])  # 60/min = one token per second


def test_limiter_refills_while_idle_but_never_beyond_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(120, burst=2, clock=lambda: clock.now, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()

    clock.now += 3600  # an hour idle refills two tokens, not 7200
    for _ in range(3):
        limiter.acquire()

    assert clock.slept == pytest.approx([0.5])


def test_limiter_defaults_its_burst_to_one_minute_of_requests() -> None:
    assert RateLimiter(100).burst == 100
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_limiter_is_shared_fairly_between_threads() -> None:
    limiter = RateLimiter(600, burst=1)  # one token per 0.1 s
    started = time.monotonic()
    threads = [threading.Thread(target=limiter.acquire) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 1 immediate token + 5 paced ones: no thread got in early
    assert time.monotonic() - started >= 0.45
