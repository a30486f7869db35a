"""The one retry policy for every HTTP call the pipeline makes.

Transport errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and full
jitter (or the server's `Retry-After`, when it sends one), for a bounded number of attempts.
Everything else is handed back to the caller at once: a 4xx is a request problem that
retrying cannot fix. When the attempts run out, `RetriesExhausted` tells the operator what
to check and that a rerun resumes where the run stopped.

A request that is not idempotent (a create) is retried here only when it certainly did not
reach the server (a refused connection, a 429). Any other failure may have happened after
the server wrote (a timeout, a dropped connection, a 502/503/504 from a proxy): it raises
`OutcomeUnknown` at once, and the caller, which knows how to read back what it sent, decides
what to send again (see `TwentyClient.create_batch`).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

import httpx
import tenacity


class Action(Enum):
    ACCEPT = "accept"  # 1xx-3xx: hand the response to the caller
    RETRY = "retry"
    FAIL = "fail"  # hand the response to the caller, who raises its own error


# status -> (action, what the operator should check). Statuses not listed fall back to
# their class: 5xx retry, any other 4xx fail. Refreshing an expired OAuth token on 401 is
# the source client's job (its httpx.Auth flow re-sends once); this table only reports.
STATUS_ACTIONS: dict[int, tuple[Action, str]] = {
    401: (Action.FAIL, "the credentials were rejected: check the API key or token"),
    403: (Action.FAIL, "access was refused: check the credential's role and permissions"),
    404: (Action.FAIL, "the route does not exist: check the base URL and the object name"),
    408: (Action.RETRY, "the server timed the request out: check its load"),
    429: (
        Action.RETRY,
        "the server kept rate-limiting: lower requests_per_minute, or check whether "
        "another client shares the same quota",
    ),
}
_SERVER_ERROR_ADVICE = "the server kept failing: check its health and logs"
_CLIENT_ERROR_ADVICE = "the server rejected the request: read its message"
_TIMEOUT_ADVICE = "the server did not answer in time: check its load or raise timeout_seconds"
_TRANSPORT_ADVICE = "the server could not be reached: check the URL, the network and that it is up"


def decide(status: int) -> Action:
    """What to do with a response of this HTTP status."""
    if status in STATUS_ACTIONS:
        return STATUS_ACTIONS[status][0]
    if status >= 500:
        return Action.RETRY
    if status >= 400:
        return Action.FAIL
    return Action.ACCEPT


def advice(status: int) -> str:
    """One operator-facing sentence about a status that ended a request."""
    if status in STATUS_ACTIONS:
        return STATUS_ACTIONS[status][1]
    return _SERVER_ERROR_ADVICE if status >= 500 else _CLIENT_ERROR_ADVICE


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The server's `Retry-After` (seconds or HTTP date) as seconds from now, if it sent one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class RetryableStatus(Exception):
    """Raised inside an attempt so tenacity retries a response whose status asks for it."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class RetriesExhausted(Exception):
    """Every attempt failed with a retryable error; the run should stop and be rerun later."""

    def __init__(self, description: str, attempts: int, cause: BaseException | None) -> None:
        self.description = description
        self.attempts = attempts
        self.status = cause.response.status_code if isinstance(cause, RetryableStatus) else None
        if self.status is not None:
            what, hint = f"last answer: HTTP {self.status}", advice(self.status)
        elif isinstance(cause, httpx.TimeoutException):
            what, hint = f"last error: timeout ({type(cause).__name__})", _TIMEOUT_ADVICE
        else:
            what, hint = f"last error: {type(cause).__name__}", _TRANSPORT_ADVICE
        super().__init__(
            f"{description} still failed after {attempts} attempts ({what}); {hint}. "
            "The run stopped here; rerunning it resumes where it left off."
        )


class OutcomeUnknown(Exception):
    """A non-idempotent request failed in a way that does not say whether the server acted on it."""

    def __init__(self, description: str, cause: BaseException | httpx.Response) -> None:
        self.description = description
        self.cause = cause
        what = f"HTTP {cause.status_code}" if isinstance(cause, httpx.Response) else type(cause).__name__
        super().__init__(f"{description}: {what}; whether the server acted on it is unknown")

    def as_retryable(self) -> BaseException:
        """The failure as the retry loop would have seen it (for `RetriesExhausted`)."""
        return RetryableStatus(self.cause) if isinstance(self.cause, httpx.Response) else self.cause


# Transport errors raised before a request left the client: it cannot have been acted on.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers a server gives before it looks at a request (Twenty's throttler runs before any write).
_REFUSED_UNREAD = frozenset({429})


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    def __init__(self, base_seconds: float, max_seconds: float) -> None:
        self._max = max_seconds
        self._backoff = tenacity.wait_random_exponential(multiplier=base_seconds, max=max_seconds)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RetryableStatus):
            server_says = retry_after_seconds(error.response)
            if server_says is not None:
                return min(server_says, self._max)
        return self._backoff(retry_state)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter; `Retry-After` wins when present."""

    max_attempts: int = 8
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    log: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not 0 <= self.backoff_base_seconds <= self.backoff_max_seconds:
            raise ValueError(
                "need 0 <= backoff_base_seconds <= backoff_max_seconds, got "
                f"{self.backoff_base_seconds} and {self.backoff_max_seconds}"
            )

    def send(
        self, send: Callable[[], httpx.Response], description: str, *, idempotent: bool = True
    ) -> httpx.Response:
        """Call `send` until it returns a non-retryable response, or raise `RetriesExhausted`.

        `description` (e.g. "POST /rest/batch/people") names the request in logs and errors;
        it must not contain secrets. With `idempotent=False` only failures that certainly did
        not reach the server are retried; any other raises `OutcomeUnknown`.
        """

        def attempt() -> httpx.Response:
            try:
                response = send()
            except httpx.TransportError as error:
                if not idempotent and not isinstance(error, _UNSENT):
                    raise OutcomeUnknown(description, error) from error
                raise
            if decide(response.status_code) is Action.RETRY:
                if not idempotent and response.status_code not in _REFUSED_UNREAD:
                    raise OutcomeUnknown(description, response)
                raise RetryableStatus(response)
            return response

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=_WaitRetryAfterOrBackoff(self.backoff_base_seconds, self.backoff_max_seconds),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, RetryableStatus)),
            sleep=self.sleep,
            before_sleep=self._log_retry(description),
        )
        try:
            return retrying(attempt)
        except tenacity.RetryError as gave_up:
            cause = gave_up.last_attempt.exception()
            raise RetriesExhausted(description, self.max_attempts, cause) from cause

    def pause(self, attempt: int, description: str, reason: BaseException) -> None:
        """Wait before attempt `attempt + 1` of a request the caller retries itself (the same
        full-jitter backoff as `send`), logging why."""
        wait = random.uniform(0, min(self.backoff_max_seconds, self.backoff_base_seconds * 2**attempt))
        if self.log is not None:
            self.log(f"{description}: {reason}, settled and retried ({attempt}/{self.max_attempts - 1}) in {wait:.1f}s")
        self.sleep(wait)

    def _log_retry(self, description: str) -> Callable[[tenacity.RetryCallState], None] | None:
        log = self.log
        if log is None:
            return None

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            reason = str(error) or type(error).__name__
            log(
                f"{description}: {reason}, retry "
                f"{state.attempt_number}/{self.max_attempts - 1} in {wait:.1f}s"
            )

        return before_sleep
