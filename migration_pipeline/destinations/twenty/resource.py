"""`TwentyWriter`: the Dagster resource through which assets write to Twenty.

The API key arrives only through `dg.EnvVar("TWENTY__API_KEY")` at the call site; it is
never logged nor put into metadata or exception text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import dagster as dg
import httpx
from pydantic import Field, field_validator

from migration_pipeline.destinations.twenty.client import MAX_BATCH, TwentyClient
from migration_pipeline.destinations.twenty.loader import LoadOutcome, LoadRecord, load_object
from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.engine.retry import RetryPolicy
from migration_pipeline.ledger import Ledger


@lru_cache(maxsize=None)
def _workspace_limiter(api_url: str, requests_per_minute: int) -> RateLimiter:
    # Twenty's quota is per workspace, so every client in this process shares one bucket.
    return RateLimiter(requests_per_minute)


class TwentyWriter(dg.ConfigurableResource):
    """Writes records into one Twenty workspace: batched, rate-limited, retried, ledgered."""

    api_url: str = Field(description="Twenty server root, e.g. https://crm.example.com")
    api_key: str = Field(repr=False, description='Twenty API key; pass dg.EnvVar("TWENTY__API_KEY")')
    batch_size: int = Field(
        default=MAX_BATCH, description=f"Records per write request (Twenty caps it at {MAX_BATCH})"
    )
    requests_per_minute: int = Field(
        default=100, description="Client-side cap; Twenty's self-hosted default is 100/min"
    )
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout")
    max_attempts: int = Field(default=8, description="Attempts per request before the run stops")
    backoff_base_seconds: float = Field(default=1.0, description="First retry waits up to this")
    backoff_max_seconds: float = Field(default=60.0, description="Longest wait between attempts")

    @field_validator("batch_size")
    @classmethod
    def _batch_size_within_cap(cls, value: int) -> int:
        if not 1 <= value <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, got {value}")
        return value

    @field_validator("requests_per_minute", "max_attempts")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value

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
            limiter=_workspace_limiter(self.api_url, self.requests_per_minute),
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
                batch_size=self.batch_size,
                log=log or dg.get_dagster_logger().info,
            )
