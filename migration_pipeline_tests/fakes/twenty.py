"""An in-repo fake of a Twenty 2.21 CRM server, for contract tests and benchmarks.

Built from the recorded contract in `shared/twenty-contract/` (examples.md, core-openapi.json,
metadata-openapi.json). Where the contract is silent, the choice is marked "Assumption" in the
`twenty_*` helper modules.

    with serve_fake_twenty(api_key="test-key") as fake:
        httpx.get(f"{fake.base_url}/rest/people", headers={"Authorization": "Bearer test-key"})
        fake.records("people")

Run in the foreground: `python -m migration_pipeline_tests.fakes.twenty --port 3999 --api-key dev-key`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from migration_pipeline_tests.fakes.loopback import (
    FAULTS,
    DroppedConnection,
    FailurePlan,
    InjectedFailure,
    RandomFaults,
    serve_in_thread,
)
from migration_pipeline_tests.fakes.twenty_errors import ApiError
from migration_pipeline_tests.fakes.twenty_http import Call, TwentyRoutes
from migration_pipeline_tests.fakes.twenty_samples import sample_companies, sample_people
from migration_pipeline_tests.fakes.twenty_store import SEED_ACTOR, Workspace
from migration_pipeline_tests.fakes.twenty_workflows import add_workflows

# Node's default --max-http-header-size: a request line plus headers over it gets an empty 431.
MAX_HEADER_BYTES = 16 * 1024
# Twenty's `settings.storage.maxFileSize: '10MB'` as body-parser's JSON limit; the overflow is a 500.
MAX_JSON_BODY_BYTES = 10 * 1024 * 1024
ADMIN_EMAIL = "admin@example.com"
_LOGGER = logging.getLogger(__name__)
_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
_ERROR_NAMES = {429: "HttpException", 500: "InternalServerErrorException", 502: "BadGatewayException",
                503: "ServiceUnavailableException", 504: "GatewayTimeoutException"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int = 0  # set once the answer is decided


class _TokenBucket:
    """Twenty's throttler bucket: `capacity` tokens, refilled continuously over `period_ms`."""

    def __init__(self, capacity: int, period_ms: int, clock: Callable[[], float]) -> None:
        self.capacity, self.period_ms, self._clock = capacity, period_ms, clock
        self._tokens, self._updated = float(capacity), clock()

    def has_token(self) -> bool:
        now = self._clock()
        refill = (now - self._updated) * self.capacity / (self.period_ms / 1000)
        self._tokens, self._updated = min(self.capacity, self._tokens + refill), now
        return self._tokens >= 1

    def take(self) -> None:
        self._tokens -= 1

    @property
    def limit_message(self) -> str:
        return f"Limit reached ({self.capacity} tokens per {self.period_ms} ms)"


def _buckets(per_minute: int | None, short_per_second: int | None, clock: Callable[[], float]) -> list[_TokenBucket]:
    buckets = [_TokenBucket(per_minute, 60_000, clock)] if per_minute is not None else []
    if short_per_second is not None:
        buckets.append(_TokenBucket(short_per_second, 1_000, clock))
    return buckets


def _injected(status: int, fault: str) -> JSONResponse:
    return JSONResponse(_error_body(status, f"Injected fault {fault} (FakeTwenty.inject_faults)"), status_code=status)


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "error": _ERROR_NAMES.get(status, "HttpException"), "messages": [message]}


class FakeTwenty:
    """State and Starlette `app` of one fake workspace. Thread-safe: every access holds one lock."""

    def __init__(
        self,
        api_key: str = "test-key",
        rate_limit_per_minute: int | None = None,
        short_limit_per_second: int | None = None,
        *,
        max_upload_bytes: int | None = None,
        api_key_name: str = "migration-tool",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.base_url = ""
        self.max_upload_bytes = self._configured_upload_limit = max_upload_bytes  # None: no limit, as on 2.21
        self._api_key_name = api_key_name
        self._clock = clock
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._failures = FailurePlan()
        self._faults: RandomFaults | None = None
        self._rate_limit = (rate_limit_per_minute, short_limit_per_second)
        self._buckets = _buckets(rate_limit_per_minute, short_limit_per_second, clock)
        self._workspace = self._new_workspace()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=_METHODS)])

    # ---- Python API used by tests ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def files(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._workspace.files)

    def records(self, plural: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            obj = self._workspace.object_by_plural(plural)
            if obj is None:
                raise KeyError(f"FakeTwenty has no active object {plural!r}")
            rows = self._workspace.select(obj, None, with_deleted=include_deleted)
            return [self._workspace.render(obj, row) for row in rows]

    def add_workspace_member(self, email: str, first_name: str = "", last_name: str = "") -> str:
        with self._lock:
            return self._add_member(self._workspace, email, first_name, last_name)

    def snapshot(self) -> dict[str, Any]:
        """All rows (soft-deleted included, keyed by id) of every object, plus the metadata."""
        with self._lock:
            ws = self._workspace
            return copy.deepcopy({
                "records": {obj.name_plural: dict(ws.tables[obj.id]) for obj in ws.objects.values()},
                "metadata": [obj.to_json() for obj in ws.objects.values()],
            })

    def set_rate_limit(self, per_minute: int | None, short_per_second: int | None = None) -> None:
        with self._lock:
            self._rate_limit = (per_minute, short_per_second)
            self._buckets = _buckets(per_minute, short_per_second, self._clock)

    def fail_next(self, status: int, times: int = 1, path_contains: str | None = None,
                  delay_seconds: float = 0.0) -> None:
        """Answer the next `times` requests whose path (with query) contains `path_contains` with `status`
        after `delay_seconds`. A status below 400 only delays: the request is then served normally."""
        with self._lock:
            self._failures.add(InjectedFailure(status, times, path_contains, delay_seconds))

    def inject_faults(self, rate: float, *, seed: int = 0, kinds: tuple[str, ...] = FAULTS,
                      hang_seconds: float = 1.0, metadata: bool = False,
                      max_faults: int | None = None, path_contains: str | None = None) -> RandomFaults:
        """From now on answer a share `rate` of the record requests (`/rest/...`; metadata ones
        too with `metadata`) with a fault drawn, seeded, from `kinds`: 429 or 503 before anything
        is done; the request served, then answered 504 (a response lost after the write), left
        hanging `hang_seconds` (past the client's timeout) or its connection dropped; or left
        hanging / dropped before anything is done; at most `max_faults` in all, only on paths
        (with query) holding `path_contains` when given. Returns the plan
        (its `injected` counts)."""
        def applies(_method: str, target: str) -> bool:
            return (target.startswith("/rest/") and (metadata or not target.startswith("/rest/metadata"))
                    and (path_contains is None or path_contains in target))

        with self._lock:
            self._faults = RandomFaults(rate, seed=seed, kinds=kinds, applies=applies,
                                       hang_seconds=hang_seconds, max_faults=max_faults)
            return self._faults

    def clear_failures(self) -> None:
        """Drop injected failures still pending and stop random faults (the server recovers)."""
        with self._lock:
            self._failures.clear()
            self._faults = None

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self, *, with_sample_records: bool = False) -> None:
        """Fresh workspace (standard metadata, one admin member); clears requests, injected failures
        and refills the rate-limit buckets (the configured limits stay, a changed upload limit not). `with_sample_records` adds the
        5 companies and 5 people a new real workspace holds (off: tests start from an empty workspace)."""
        with self._lock:
            self._workspace = self._new_workspace()
            self.max_upload_bytes = self._configured_upload_limit
            if with_sample_records:
                self._add_sample_records(self._workspace)
            self._requests.clear()
            self._failures.clear()
            self._faults = None
            self._buckets = _buckets(*self._rate_limit, self._clock)

    def _new_workspace(self) -> Workspace:
        workspace = Workspace(self._api_key_name)
        self._add_member(workspace, ADMIN_EMAIL)
        add_workflows(workspace)  # the sample workflows a new workspace has (twenty_workflows.py)
        return workspace

    @staticmethod
    def _add_sample_records(workspace: Workspace) -> None:
        companies, people = workspace.object_by_plural("companies"), workspace.object_by_plural("people")
        company_ids = {row["name"]: workspace.insert_system_record(companies, row, SEED_ACTOR)["id"]
                       for row in sample_companies()}
        for row in sample_people(company_ids):
            workspace.insert_system_record(people, row, SEED_ACTOR)

    @staticmethod
    def _add_member(workspace: Workspace, email: str, first_name: str = "", last_name: str = "") -> str:
        members = workspace.object_by_plural("workspaceMembers")
        data = {"name": {"firstName": first_name, "lastName": last_name}, "userEmail": email,
                "userId": str(uuid.uuid4())}
        try:
            return workspace.insert_system_record(members, data)["id"]
        except ApiError as error:
            raise ValueError(f"cannot add workspace member {email!r}: {error.body}") from None

    # ---- HTTP ----------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        if _head_size(request) > MAX_HEADER_BYTES:
            return Response(status_code=431)
        body = await request.body()
        if len(body) > MAX_JSON_BODY_BYTES and "json" in request.headers.get("content-type", ""):
            return JSONResponse("request entity too large", status_code=500)
        record = RecordedRequest(request.method, request.url.path, dict(request.query_params), _parse_json(body))
        with self._lock:
            self._requests.append(record)
        try:
            response = await self._answer(request, body, record)
        except ApiError as error:
            response = JSONResponse(error.body, status_code=error.status)
        except Exception as error:  # a bug of the fake itself: answer loudly rather than with a bare 500
            _LOGGER.exception("FakeTwenty failed on %s %s", record.method, record.path)
            response = JSONResponse(_error_body(500, f"FakeTwenty bug: {error!r}"), status_code=500)
        record.status = response.status_code
        return response

    async def _answer(self, request: Request, body: bytes, record: RecordedRequest) -> Response:
        target = f"{record.path}?{request.url.query}" if request.url.query else record.path
        failure = self._failures.take(target)
        if failure is not None:
            await asyncio.sleep(failure.delay_seconds)
            if failure.status >= 400:
                message = f"Injected failure {failure.status} (FakeTwenty.fail_next)"
                return JSONResponse(_error_body(failure.status, message), status_code=failure.status)
        faults = self._faults
        fault = faults.draw(request.method, target) if faults is not None else None
        if fault is None:
            return self._serve(request, body, record)
        if fault in ("429", "503"):
            return _injected(int(fault), fault)
        if fault.endswith("_before_write"):
            if fault.startswith("timeout"):
                await asyncio.sleep(faults.hang_seconds)
                return _injected(504, fault)
            return DroppedConnection()
        response = self._serve(request, body, record)
        if fault == "504_after_write":
            return _injected(504, fault)
        if fault == "timeout_after_write":
            await asyncio.sleep(faults.hang_seconds)
            return response
        return DroppedConnection()

    def _serve(self, request: Request, body: bytes, record: RecordedRequest) -> Response:
        content_type = request.headers.get("content-type", "")
        if body and "json" in content_type and record.json is None:
            return JSONResponse({"message": "Unexpected token in JSON body", "error": "Bad Request",
                                 "statusCode": 400}, status_code=400)
        try:
            if not record.path.startswith("/file/"):  # file downloads use their signed token instead
                self._authenticate(request.headers.get("authorization"))
            call = Call(request.method, record.path, record.query, record.json, body, content_type,
                        str(request.base_url).rstrip("/"))
            with self._lock:
                if record.path.startswith("/rest/") and not record.path.startswith("/rest/metadata"):
                    self._throttle()
                return TwentyRoutes(self._workspace, self.max_upload_bytes).dispatch(call)
        except ApiError as error:
            return JSONResponse(error.body, status_code=error.status)

    def _authenticate(self, header: str | None) -> None:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(403, {"statusCode": 403, "messages": ["Missing authentication token"],
                                 "error": "FORBIDDEN_EXCEPTION"})
        if token.strip() != self.api_key:
            raise ApiError(401, {"statusCode": 401, "messages": ["Token invalid."], "error": "UNAUTHENTICATED"})

    def _throttle(self) -> None:
        for bucket in self._buckets:
            if not bucket.has_token():
                raise ApiError(429, _error_body(429, bucket.limit_message))
        for bucket in self._buckets:
            bucket.take()


def _head_size(request: Request) -> int:
    """Bytes of the request line and headers as sent."""
    target = len(request.scope.get("raw_path") or request.url.path.encode()) + len(request.scope["query_string"]) + 1
    headers = sum(len(name) + len(value) + 4 for name, value in request.scope["headers"])
    return len(request.method) + 1 + target + len(" HTTP/1.1\r\n") + headers + 2


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


@contextmanager
def serve_fake_twenty(
    api_key: str = "test-key",
    rate_limit_per_minute: int | None = None,
    short_limit_per_second: int | None = None,
    **options: Any,
) -> Iterator[FakeTwenty]:
    """Serve a FakeTwenty on 127.0.0.1 (free port) in a background thread; `options` go to FakeTwenty."""
    fake = FakeTwenty(api_key, rate_limit_per_minute, short_limit_per_second, **options)
    with serve_in_thread(fake.app, "fake-twenty") as base_url:
        fake.base_url = base_url
        yield fake


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Twenty 2.21 CRM in the foreground.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3999)
    parser.add_argument("--api-key", default="dev-key")
    parser.add_argument("--rate-limit-per-minute", type=int, default=None)
    parser.add_argument("--short-limit-per-second", type=int, default=None)
    parser.add_argument("--sample-records", action="store_true",
                        help="start with the 5 sample companies and people of a new Twenty workspace")
    args = parser.parse_args(argv)
    fake = FakeTwenty(args.api_key, args.rate_limit_per_minute, args.short_limit_per_second)
    if args.sample_records:
        fake.reset(with_sample_records=True)
    fake.base_url = f"http://{args.host}:{args.port}"
    print(f"FakeTwenty at {fake.base_url} (REST {fake.base_url}/rest/..., Bearer {args.api_key})", flush=True)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
