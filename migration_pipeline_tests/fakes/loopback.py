"""Serving a fake API app on 127.0.0.1 in a background thread, for tests and benchmarks."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response


@contextmanager
def serve_in_thread(app: Starlette, name: str) -> Iterator[str]:
    """Yields the base URL of `app` served on a free loopback port; stops it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class InjectedFailure:
    """One failure a test asked a fake to answer with, for the next `remaining` matching requests."""

    status: int
    remaining: int
    path_contains: str | None
    delay_seconds: float = 0.0
    retry_after: str | None = None


class FailurePlan:
    """The failures a fake still has to inject, taken in order by matching requests (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[InjectedFailure] = []

    def add(self, failure: InjectedFailure) -> None:
        with self._lock:
            self._failures.append(failure)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()

    def take(self, target: str) -> InjectedFailure | None:
        with self._lock:
            for failure in self._failures:
                if failure.path_contains is None or failure.path_contains in target:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure
        return None


# Faults a fake can inject at random (`RandomFaults`), each as a real server or the network
# in front of it produces it: refused before the server reads the request (429, 503), lost
# after the server wrote (504, a timeout, a dropped connection), or hanging before anything.
BEFORE_WRITE = ("429", "503", "timeout_before_write", "drop_before_write")
AFTER_WRITE = ("504_after_write", "timeout_after_write", "drop_after_write")
FAULTS = BEFORE_WRITE + AFTER_WRITE


class RandomFaults:
    """Answers a share (`rate`) of the requests `applies` to with one of `kinds`, drawn from a
    seeded generator, so a test sees the same faults in the same order on every run (for the
    same sequence of requests). Counts what it injected, per kind (thread-safe)."""

    def __init__(
        self,
        rate: float,
        *,
        seed: int = 0,
        kinds: Sequence[str] = FAULTS,
        applies: Callable[[str, str], bool] = lambda _method, _target: True,
        hang_seconds: float = 1.0,
        max_faults: int | None = None,
    ) -> None:
        unknown = set(kinds) - set(FAULTS)
        if unknown or not 0 <= rate <= 1:
            raise ValueError(f"rate must be within 0..1 and kinds among {FAULTS}; got {rate}, {sorted(unknown)}")
        self.rate, self.kinds, self.applies, self.hang_seconds = rate, tuple(kinds), applies, hang_seconds
        self.max_faults = max_faults
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self, method: str, target: str) -> str | None:
        """The fault to inject into this request, or None to serve it normally."""
        if not self.applies(method, target):
            return None
        with self._lock:
            if self.max_faults is not None and sum(self.injected.values()) >= self.max_faults:
                return None
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
            return kind


class DroppedConnection(Response):
    """Starts an answer and closes the connection in the middle of its body: the client sees the
    connection drop (httpx.RemoteProtocolError) with no way to tell what the server did."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"data":', "more_body": True})
        # returning with the body incomplete makes the server close the connection
