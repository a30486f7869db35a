"""Serving a fake API app on 127.0.0.1 in a background thread, for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette


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
