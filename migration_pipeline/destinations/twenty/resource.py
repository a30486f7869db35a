"""`TwentyWriter`: the Dagster resource through which assets write to Twenty.

The API key arrives only through `dg.EnvVar("TWENTY__API_KEY")` at the call site; it is
never logged nor put into metadata or exception text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import dagster as dg
import httpx
from pydantic import Field, field_validator

from migration_pipeline.destinations.twenty.client import MAX_BATCH, TwentyClient
from migration_pipeline.destinations.twenty.loader import LoadOutcome, LoadRecord, load_object
from migration_pipeline.engine.preflight import ServerUnreachable, require_answer
from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.engine.retry import RetryPolicy
from migration_pipeline.ledger import Ledger


REQUESTS_PER_MINUTE_VAR = "TWENTY__REQUESTS_PER_MINUTE"
BATCH_SIZE_VAR = "TWENTY__BATCH_SIZE"
DEFAULT_REQUESTS_PER_MINUTE = 100  # Twenty's self-hosted default


@dataclass(frozen=True)
class TwentyLimits:
    """How hard a run may drive Twenty: the client-side rate cap and the records per write."""

    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    batch_size: int = MAX_BATCH

    def __post_init__(self) -> None:
        if self.requests_per_minute < 1:
            raise ValueError(f"requests per minute must be at least 1, got {self.requests_per_minute}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch size must be between 1 and {MAX_BATCH} (Twenty's cap), got {self.batch_size}")

    @classmethod
    def resolve(
        cls, requests_per_minute: int | str | None, batch_size: int | str | None, environ: Mapping[str, str]
    ) -> TwentyLimits:
        """Given values win, then TWENTY__REQUESTS_PER_MINUTE / TWENTY__BATCH_SIZE, then defaults."""
        rpm = _whole_number(requests_per_minute, environ, REQUESTS_PER_MINUTE_VAR, DEFAULT_REQUESTS_PER_MINUTE)
        return cls(rpm, _whole_number(batch_size, environ, BATCH_SIZE_VAR, MAX_BATCH))

    def as_metadata(self) -> dict[str, int]:
        return {"requests_per_minute": self.requests_per_minute, "batch_size": self.batch_size}

    def describe(self) -> str:
        return f"{self.requests_per_minute} requests/min, up to {self.batch_size} records per write request"


def _whole_number(given: int | str | None, environ: Mapping[str, str], var: str, default: int) -> int:
    if given is not None and given != "":
        value, origin = given, "the given value"
    elif environ.get(var, "").strip():
        value, origin = environ[var].strip(), var
    else:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{origin} {value!r} is not a whole number ({var})") from None


@lru_cache(maxsize=None)
def _workspace_limiter(api_url: str, requests_per_minute: int) -> RateLimiter:
    # Twenty's quota is per workspace, so every client in this process shares one bucket.
    return RateLimiter(requests_per_minute)


class TwentyWriter(dg.ConfigurableResource):
    """Writes records into one Twenty workspace: batched, rate-limited, retried, ledgered."""

    api_url: str = Field(description="Twenty server root, e.g. https://crm.example.com")
    api_key: str = Field(repr=False, description='Twenty API key; pass dg.EnvVar("TWENTY__API_KEY")')
    batch_size: int | None = Field(
        default=None,
        description=f"Records per write request, 1..{MAX_BATCH} (Twenty's cap); unset: {BATCH_SIZE_VAR}, "
        f"else {MAX_BATCH}",
    )
    requests_per_minute: int | None = Field(
        default=None,
        description=f"Client-side cap; unset: {REQUESTS_PER_MINUTE_VAR}, else {DEFAULT_REQUESTS_PER_MINUTE} "
        "(Twenty's self-hosted default). Raise it when your server's rate limit is higher",
    )
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout")
    max_attempts: int = Field(default=8, description="Attempts per request before the run stops")
    backoff_base_seconds: float = Field(default=1.0, description="First retry waits up to this")
    backoff_max_seconds: float = Field(default=60.0, description="Longest wait between attempts")

    @field_validator("batch_size")
    @classmethod
    def _batch_size_within_cap(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, got {value}")
        return value

    @field_validator("requests_per_minute", "max_attempts")
    @classmethod
    def _at_least_one(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value

    @property
    def limits(self) -> TwentyLimits:
        """The configured limits, else the TWENTY__* variables at run time, else the defaults."""
        return TwentyLimits.resolve(self.requests_per_minute, self.batch_size, os.environ)

    def check_reachable(self, timeout_seconds: float) -> None:
        """`Reachable`: one record read, no retries, not rate limited; raises ServerUnreachable
        naming the server and what to fix when it does not answer or refuses the API key."""
        url = f"{self.api_url.rstrip('/')}/rest/workspaceMembers?limit=1"
        response = require_answer("Twenty", url, timeout_seconds, headers={"Authorization": f"Bearer {self.api_key}"},
                                  hint="is the server running, and is TWENTY__API_URL its address?")
        if response.status_code in (401, 403):
            raise ServerUnreachable(
                f"Twenty at {self.api_url} refused TWENTY__API_KEY (HTTP {response.status_code}): create an API key "
                "under Settings > APIs & Webhooks (Admin role) and set TWENTY__API_KEY to it"
            )
        if response.status_code >= 400:
            raise ServerUnreachable(
                f"Twenty at {self.api_url} answered HTTP {response.status_code} to a simple read: is TWENTY__API_URL "
                "the server's root address (without /rest)?"
            )

    @contextmanager
    def client(self) -> Iterator[TwentyClient]:
        retry = RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base_seconds=self.backoff_base_seconds,
            backoff_max_seconds=self.backoff_max_seconds,
            log=dg.get_dagster_logger().warning,
        )
        with TwentyClient(
            self.api_url,
            self.api_key,
            timeout=httpx.Timeout(self.timeout_seconds),
            retry=retry,
            limiter=_workspace_limiter(self.api_url, self.limits.requests_per_minute),
        ) as client:
            yield client

    def load_object(
        self,
        ledger: Ledger,
        run_key: str,
        plural: str,
        records: Sequence[LoadRecord],
        *,
        external_key_field: str | None,
        natural_keys: Sequence[str] = (),
        log: Callable[[str], None] | None = None,
    ) -> LoadOutcome:
        """`loader.load_object` with this resource's client and batch size."""
        with self.client() as client:
            return load_object(
                client,
                ledger,
                run_key,
                plural,
                records,
                external_key_field=external_key_field,
                natural_keys=natural_keys,
                batch_size=self.limits.batch_size,
                log=log or dg.get_dagster_logger().info,
            )
