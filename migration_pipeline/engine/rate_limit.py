"""A thread-safe client-side token bucket, so we stay under a server's request quota
instead of discovering it through 429 answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`requests_per_minute` tokens refill continuously; at most `burst` can be saved up.

    `burst` defaults to `requests_per_minute`, which mirrors a server bucket of one minute
    (Twenty: 100 tokens per 60 s). Callers that arrive while the bucket is empty reserve
    the next tokens in arrival order, so concurrent threads share the rate fairly.
    """

    def __init__(
        self,
        requests_per_minute: int,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError(f"requests_per_minute must be at least 1, got {requests_per_minute}")
        capacity = requests_per_minute if burst is None else burst
        if capacity < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.requests_per_minute = requests_per_minute
        self.burst = capacity
        self._per_second = requests_per_minute / 60.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._refilled_at = clock()

    def acquire(self) -> float:
        """Take one token, blocking until it is available. Returns the seconds waited."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._refilled_at
            self._tokens = min(float(self.burst), self._tokens + elapsed * self._per_second)
            self._refilled_at = now
            # Going negative reserves a future token; the debt is the wait.
            self._tokens -= 1.0
            wait = -self._tokens / self._per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
