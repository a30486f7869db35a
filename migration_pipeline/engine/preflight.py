"""Before a run starts: does each server it needs answer? One cheap request each, no retries,
so an unreachable server fails the run in seconds with one message instead of every step
retrying on its own.

A resource takes part by having `check_reachable(timeout_seconds)` (the `Reachable` protocol);
the CLI asks every resource of the run that has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import httpx

TIMEOUT_SECONDS = 5.0


class ServerUnreachable(Exception):
    """A server the run needs did not answer, or refused the credentials; the message says
    which server and what to check (never a secret)."""


@runtime_checkable
class Reachable(Protocol):
    def check_reachable(self, timeout_seconds: float) -> None:
        """Return when the server answers; raise ServerUnreachable otherwise."""


def require_answer(
    server: str, url: str, timeout_seconds: float, *, headers: Mapping[str, str] | None = None, hint: str = ""
) -> httpx.Response:
    """One GET without retries: the response whatever its status, or ServerUnreachable when
    nothing answered (refused, unknown host, timeout, TLS)."""
    where = f"{server} at {_origin(url)}"
    try:
        return httpx.get(url, headers=dict(headers or {}), timeout=httpx.Timeout(timeout_seconds))
    except httpx.TimeoutException:
        raise ServerUnreachable(f"{where} did not answer within {timeout_seconds:.0f}s{_hint(hint)}") from None
    except (httpx.TransportError, httpx.InvalidURL, ValueError) as error:
        reason = str(error).split("\n", 1)[0] or type(error).__name__
        raise ServerUnreachable(f"{where} does not answer ({reason}){_hint(hint)}") from None


def check_all(resources: Mapping[str, object], timeout_seconds: float = TIMEOUT_SECONDS) -> list[str]:
    """The problem of every reachable-checkable resource that failed its check, in order."""
    problems: list[str] = []
    for resource in resources.values():
        if isinstance(resource, Reachable):
            try:
                resource.check_reachable(timeout_seconds)
            except ServerUnreachable as problem:
                problems.append(str(problem))
    return problems


def _origin(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return repr(url)
    return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))


def _hint(hint: str) -> str:
    return f": {hint}" if hint else ""
