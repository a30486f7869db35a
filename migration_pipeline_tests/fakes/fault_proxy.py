"""A fault-injecting HTTP proxy for tests: put it in front of the fake Twenty or a real one.

Each request is classed by what it touches and does (`record_read`, `record_write`,
`metadata_read`, `metadata_write`) and, with the seeded rates configured for its class (or a
fault a test scripted for it), gets one of these instead of a plain round trip:

- `throttle`: 429 with `Retry-After: 0`, not forwarded;
- `unavailable`: 503, not forwarded;
- `lost`: forwarded, and Twenty's answer replaced by a 504 (a load balancer that gave up);
- `drop`: forwarded, then the connection is closed half-way through the answer;
- `stall`: forwarded, then the answer held back past the client's timeout (then a 504).

The last three are the ambiguous ones: the write happened, the client cannot know it. The proxy
counts what it did per class and fault (`counts`), so a test can assert the faults really
happened.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Literal

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from migration_pipeline_tests.fakes.loopback import serve_in_thread

Fault = Literal["throttle", "unavailable", "lost", "drop", "stall"]
RequestClass = Literal["record_read", "record_write", "metadata_read", "metadata_write"]
REQUEST_CLASSES: tuple[RequestClass, ...] = ("record_read", "record_write", "metadata_read", "metadata_write")
_HOP_BY_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "accept-encoding",
               "content-encoding", "upgrade", "te", "trailer"}


@dataclass(frozen=True)
class FaultRates:
    """The share of a class's requests that get each fault (the rest pass through untouched)."""

    throttle: float = 0.0
    unavailable: float = 0.0
    lost: float = 0.0
    drop: float = 0.0
    stall: float = 0.0

    def __post_init__(self) -> None:
        if any(r < 0 for r in self.as_dict().values()) or sum(self.as_dict().values()) > 1:
            raise ValueError(f"fault rates must be >= 0 and add up to at most 1, got {self}")

    @classmethod
    def spread(cls, total: float, *faults: Fault) -> FaultRates:
        """`total` shared evenly by `faults` (all five by default)."""
        chosen = faults or tuple(f.name for f in fields(cls))
        return cls(**{fault: total / len(chosen) for fault in chosen})

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def request_class(method: str, path: str) -> RequestClass:
    area = "metadata" if path.startswith("/rest/metadata") else "record"
    return f"{area}_{'read' if method.upper() in ('GET', 'HEAD') else 'write'}"  # type: ignore[return-value]


@dataclass
class _Scripted:
    fault: Fault
    method: str | None
    path_contains: str | None
    remaining: int


class FaultProxy:
    """What the proxy injects and has injected; serve it with `serve_fault_proxy`."""

    def __init__(self, upstream: str, rates: Mapping[RequestClass, FaultRates] | None = None, *, seed: int = 0,
                 stall_seconds: float = 2.0, upstream_timeout: float = 120.0) -> None:
        unknown = set(rates or {}) - set(REQUEST_CLASSES)
        if unknown:
            raise ValueError(f"unknown request classes {sorted(unknown)}; use {REQUEST_CLASSES}")
        self.rates: dict[str, FaultRates] = dict(rates or {})
        self.stall_seconds = stall_seconds
        self.counts: Counter[tuple[str, str]] = Counter()  # (request class, fault or "passed") -> requests
        self.base_url = ""  # set while served
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._scripted: list[_Scripted] = []
        self._upstream = httpx.Client(base_url=upstream.rstrip("/"), timeout=httpx.Timeout(upstream_timeout))

    def script(self, fault: Fault, *, method: str | None = None, path_contains: str | None = None,
               times: int = 1) -> None:
        """Give the next `times` matching requests this fault, before any rate applies."""
        with self._lock:
            self._scripted.append(_Scripted(fault, method and method.upper(), path_contains, times))

    def faults(self, kind: RequestClass | None = None) -> dict[str, int]:
        """Fault -> how many requests (of `kind`, or of every class) got it."""
        with self._lock:
            totals: Counter[str] = Counter()
            for (cls, fault), n in self.counts.items():
                if fault != "passed" and kind in (None, cls):
                    totals[fault] += n
            return dict(totals)

    def close(self) -> None:
        self._upstream.close()

    def _choose(self, method: str, path: str) -> tuple[RequestClass, Fault | None]:
        kind = request_class(method, path)
        with self._lock:
            fault = self._take_scripted(method, path) or self._roll(kind)
            self.counts[(kind, fault or "passed")] += 1
        return kind, fault

    def _take_scripted(self, method: str, path: str) -> Fault | None:
        for scripted in self._scripted:
            if scripted.method in (None, method) and (scripted.path_contains or "") in path:
                scripted.remaining -= 1
                if scripted.remaining <= 0:
                    self._scripted.remove(scripted)
                return scripted.fault
        return None

    def _roll(self, kind: RequestClass) -> Fault | None:
        rates = self.rates.get(kind)
        if rates is None:
            return None
        roll, edge = self._random.random(), 0.0
        for fault, rate in rates.as_dict().items():
            edge += rate
            if roll < edge:
                return fault  # type: ignore[return-value]
        return None


async def _proxy(proxy: FaultProxy, scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    method, path = request.method, request.url.path
    _, fault = proxy._choose(method, path)
    if fault == "throttle":
        return await _send(send, 429, b'{"statusCode":429,"messages":["fault proxy: throttled"]}',
                           {"retry-after": "0"})
    if fault == "unavailable":
        return await _send(send, 503, b'{"statusCode":503,"messages":["fault proxy: unavailable"]}')
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    target = path + (f"?{request.url.query}" if request.url.query else "")
    upstream = await run_in_threadpool(proxy._upstream.request, method, target, content=body, headers=headers)
    if fault == "lost":
        return await _send(send, 504, b'{"statusCode":504,"messages":["fault proxy: answer lost"]}')
    if fault == "stall":
        await asyncio.sleep(proxy.stall_seconds)
        return await _send(send, 504, b'{"statusCode":504,"messages":["fault proxy: stalled"]}')
    answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
    if fault == "drop":
        # Promise the whole answer, send half of it, then end: uvicorn closes the connection and the
        # client sees an incomplete response (a transport error), after Twenty did the work.
        content = upstream.content or b"{}"
        await send({"type": "http.response.start", "status": upstream.status_code,
                    "headers": _raw({**answer_headers, "content-length": str(len(content) + 1)})})
        await send({"type": "http.response.body", "body": content[: len(content) // 2], "more_body": True})
        raise _Dropped()
    await _send(send, upstream.status_code, upstream.content, answer_headers)


class _Dropped(Exception):
    """Ends a request half-way through its answer, so the server closes the connection."""


async def _send(send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
    headers = {"content-type": "application/json", **(headers or {}), "content-length": str(len(body))}
    await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
    await send({"type": "http.response.body", "body": body})


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]


@contextmanager
def serve_fault_proxy(upstream: str, rates: Mapping[RequestClass, FaultRates] | None = None, *, seed: int = 0,
                      stall_seconds: float = 2.0) -> Iterator[FaultProxy]:
    """A `FaultProxy` in front of `upstream`, served on loopback; its `base_url` is set."""
    proxy = FaultProxy(upstream, rates, seed=seed, stall_seconds=stall_seconds)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await _proxy(proxy, scope, receive, send)

    try:
        with serve_in_thread(app, "fault-proxy") as base_url:  # type: ignore[arg-type]
            proxy.base_url = base_url
            yield proxy
    finally:
        proxy.close()
