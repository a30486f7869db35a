"""An in-repo fake of the Actionstep REST API and its OAuth token endpoint, for contract tests.

Built to `shared/sources/actionstep.md` and the published OpenAPI files; it serves a dataset
from `migration_pipeline.sources.actionstep.generate` verbatim (T/F booleans, ids as ints or
strings, composite ids, mixed timestamp formats) with the API's quirks:

- `POST /api/oauth/token` (refresh_token grant) issues short-lived access tokens and answers
  `api_endpoint` = `<base>/ap-southeast-2/api` (a different path than the token host's
  `/api`, so a client that ignores `api_endpoint` hits a loud 404);
- `GET <api_endpoint>/rest/<resource>[/<id>]`: `page` / `pageSize` (default 50, capped at 200),
  `meta.paging.<resource>` with full-URL `nextPage`/`prevPage`; a page holding exactly one
  record serves it as an object, not a list; an empty result is HTTP 204 with no body;
  `include=<link>,...` side-loads related records under `linked`; plain `field=value`
  filters (comma = any of); `sort=-field,field` (timestamps compared as instants). Names
  are case-sensitive: `Participants` is a 404 and `pagesize` an unknown filter (400). A
  request must `Accept: application/vnd.api+json` (406).
- `GET <api_endpoint>/rest/files/<file>?part_number=n`: part n of the document whose `file`
  reference is <file>, as raw bytes, `file_part_bytes` (5 MiB) per part; the bytes are
  derived from the reference (`document_bytes`), as many as the document's `fileSize`.
  Assumption: the real answer is undocumented; this follows Actionstep's sample app
  (actionstep/Actionstep.API.WebClient, `DownloadFileAsync`), which concatenates the raw
  bodies of parts 1..ceil(fileSize / 5 MiB). A part beyond the file is a 400 here.
- Error bodies are `{"errors": [{"status", "code", "title", "detail"}]}`: Assumption, the
  real shape is undocumented.

Refresh tokens rotate as Actionstep's do: each token answer carries a new refresh token and
the one just used is spent (a second use is `400 invalid_grant`). `reset()` is a new
authorisation: the fake's `refresh_token` becomes one no client has used.

Fault injection: `fail_next` (429 with or without `Retry-After`, 500s, slow answers),
`deny(resource, 403)` (a key without access to that resource), `expire_access_tokens` (the
next API call gets 401), `reject_access_tokens` (every call gets 401), `access_token_ttl_seconds` (tokens really expire, while `expires_in` may claim more).
Every request is recorded (`requests`, `served_pages`).

    with serve_fake_actionstep() as fake:
        fake.token_url, fake.client_id, fake.client_secret, fake.refresh_token

Run in the foreground: `python -m migration_pipeline_tests.fakes.actionstep --port 3998`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from migration_pipeline.sources.actionstep.generate import ActionstepDataset, generate_dataset
from migration_pipeline_tests.fakes.loopback import FailurePlan, InjectedFailure, serve_in_thread

TOKEN_PATH = "/api/oauth/token"
DEFAULT_API_PREFIX = "/ap-southeast-2/api"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MEDIA_TYPE = "application/vnd.api+json"
FILE_PART_BYTES = 5 * 1024 * 1024
FILES_ROUTE = "files"
_RESERVED_PARAMS = frozenset({"page", "pageSize", "include", "sort", "fields"})
_LOGGER = logging.getLogger(__name__)

# (resource, link name) -> the resource type its ids point at, for `include=`.
INCLUDES: dict[tuple[str, str], str] = {
    ("actions", "actionType"): "actiontypes",
    ("actions", "assignedTo"): "participants",
    ("actions", "primaryParticipants"): "participants",
    ("actionparticipants", "action"): "actions",
    ("actionparticipants", "participant"): "participants",
    ("actionparticipants", "participantType"): "participanttypes",
    ("actiondocuments", "action"): "actions",
    ("actiontypeparticipanttypes", "participantType"): "participanttypes",
    ("contactnotes", "participant"): "participants",
    ("datacollections", "actionType"): "actiontypes",
    ("datacollectionfields", "dataCollection"): "datacollections",
    ("datacollectionrecords", "dataCollection"): "datacollections",
    ("datacollectionrecordvalues", "dataCollection"): "datacollections",
    ("datacollectionrecordvalues", "dataCollectionField"): "datacollectionfields",
    ("datacollectionrecordvalues", "dataCollectionRecord"): "datacollectionrecords",
    ("filenotes", "action"): "actions",
    ("tasks", "action"): "actions",
    ("tasks", "assignee"): "participants",
    ("users", "participant"): "participants",
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]  # token requests only (fake credentials)
    at: float  # time.monotonic() when received
    status: int = 0  # set once answered


@dataclass
class _Token:
    expires_at: float
    rejected: bool = False


class _Answer(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.response = JSONResponse(_error_body(status, code, title, detail), status_code=status)


def _error_body(status: int, code: str, title: str, detail: str) -> dict[str, Any]:
    # Assumption: Actionstep does not document its error body; this shape is invented.
    return {"errors": [{"status": str(status), "code": code, "title": title, "detail": detail}]}


@dataclass
class FakeActionstep:
    """State and Starlette `app` of one fake Actionstep organisation. Thread-safe (one lock)."""

    dataset: ActionstepDataset = field(default_factory=generate_dataset)
    client_id: str = "fake-client-id"
    client_secret: str = "fake-client-secret"
    refresh_token: str = "fake-refresh-token-0"
    access_token_ttl_seconds: float = 3600.0
    advertised_expires_in: int | None = None  # `expires_in` sent; default: the real ttl
    api_prefix: str = DEFAULT_API_PREFIX
    clock: Callable[[], float] = time.monotonic
    base_url: str = ""
    file_part_bytes: int = FILE_PART_BYTES

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._data = copy.deepcopy(self.dataset.resources)
        self._requests: list[RecordedRequest] = []
        self._failures = FailurePlan()
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens = {self.refresh_token}
        self._initial_refresh_token, self._generation = self.refresh_token, 0
        self._reject_all = False
        self._denied: dict[str, int] = {}
        self._serial = itertools.count(1)
        self.app = Starlette(routes=[
            Route(TOKEN_PATH, self._token, methods=["POST"]),
            Route(self.api_prefix + "/rest/{path:path}", self._rest, methods=["GET"]),
            Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ])

    # ---- Python API used by tests ---------------------------------------------------------

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def api_endpoint(self) -> str:
        return self.base_url + self.api_prefix

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def api_requests(self, resource: str | None = None) -> list[RecordedRequest]:
        """Requests to the REST API (not the token endpoint), optionally of one resource."""
        prefix = f"{self.api_prefix}/rest/"
        return [r for r in self.requests
                if r.path.startswith(prefix) and (resource is None or r.path == prefix + resource)]

    def file_requests(self, reference: str | None = None) -> list[RecordedRequest]:
        """Requests for document parts (`files/<file>?part_number=n`), optionally of one file."""
        prefix = f"{self.api_prefix}/rest/{FILES_ROUTE}/"
        return [r for r in self.requests
                if r.path.startswith(prefix) and (reference is None or r.path == prefix + reference)]

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == TOKEN_PATH]

    def served_pages(self, resource: str) -> list[int]:
        """Page numbers of `resource` answered successfully (200 or 204), in order."""
        return [int(r.query.get("page", "1")) for r in self.api_requests(resource) if r.status in (200, 204)]

    def records(self, resource: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._data.get(resource, []))

    def set_records(self, resource: str, records: list[dict[str, Any]]) -> None:
        with self._lock:
            self._data[resource] = copy.deepcopy(records)

    def fail_next(self, status: int, times: int = 1, path_contains: str | None = None,
                  delay_seconds: float = 0.0, retry_after: str | None = None) -> None:
        """Answer the next `times` requests whose path (with query) contains `path_contains`
        with `status` after `delay_seconds` (and a `Retry-After` header if given). A status
        below 400 only delays: the request is then served normally."""
        with self._lock:
            self._failures.add(InjectedFailure(status, times, path_contains, delay_seconds, retry_after))

    def clear_failures(self) -> None:
        """Drop injected failures still pending (the server recovers)."""
        with self._lock:
            self._failures.clear()

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired: the next API call gets 401."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = -math.inf

    def reject_access_tokens(self, reject: bool = True) -> None:
        """Every access token, even a fresh one, gets 401 (the user lost API access)."""
        with self._lock:
            self._reject_all = reject

    def deny(self, resource: str, status: int = 403) -> None:
        """Answer every request for `resource` with `status` (403: the user's role may not read
        it; 404: the account does not have it), as Actionstep does for a key without access."""
        with self._lock:
            self._denied[resource] = status

    def authorise_again(self) -> str:
        """A new refresh token, as an operator gets by authorising the app again."""
        with self._lock:
            self._generation += 1
            token = f"{self._initial_refresh_token}.{self._generation}"
            self._refresh_tokens.add(token)
            return token

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Back to the generated data and 5 MiB file parts; forgets requests, failures and issued tokens."""
        with self._lock:
            self._data = copy.deepcopy(self.dataset.resources)
            self.file_part_bytes = FILE_PART_BYTES
            self._requests.clear()
            self._failures.clear()
            self._tokens.clear()
            # A new authorisation: a refresh token no earlier client has seen (or stored).
            self._generation += 1
            self.refresh_token = f"{self._initial_refresh_token}.{self._generation}"
            self._refresh_tokens = {self.refresh_token}
            self._reject_all = False
            self._denied.clear()
            self._serial = itertools.count(1)

    # ---- HTTP ------------------------------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest:
        form: dict[str, str] = {}
        if request.method == "POST" and "x-www-form-urlencoded" in request.headers.get("content-type", ""):
            form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        record = RecordedRequest(request.method, request.url.path, dict(request.query_params),
                                 dict(request.headers), form, time.monotonic())
        with self._lock:
            self._requests.append(record)
        return record

    async def _answer(self, request: Request, handler: Callable[[Request, RecordedRequest], Response]) -> Response:
        record = await self._record(request)
        target = f"{record.path}?{request.url.query}" if request.url.query else record.path
        failure = self._failures.take(target)
        try:
            if failure is not None:
                await asyncio.sleep(failure.delay_seconds)
            if failure is not None and failure.status >= 400:
                headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                body = _error_body(failure.status, "1500", "Injected failure", "FakeActionstep.fail_next")
                response: Response = JSONResponse(body, status_code=failure.status, headers=headers)
            else:
                with self._lock:
                    response = handler(request, record)
        except _Answer as answer:
            response = answer.response
        except Exception as error:  # a bug of the fake itself: answer loudly
            _LOGGER.exception("FakeActionstep failed on %s %s", record.method, record.path)
            response = JSONResponse(_error_body(500, "1500", "FakeActionstep bug", repr(error)), status_code=500)
        record.status = response.status_code
        return response

    async def _unknown(self, request: Request) -> Response:
        def answer(_: Request, record: RecordedRequest) -> Response:
            raise _Answer(404, "1101", "Not Found", f"FakeActionstep has no route {record.method} {record.path}")

        return await self._answer(request, answer)

    async def _token(self, request: Request) -> Response:
        return await self._answer(request, self._issue_token)

    async def _rest(self, request: Request) -> Response:
        return await self._answer(request, self._serve)

    # ---- OAuth -----------------------------------------------------------------------------

    def _issue_token(self, _: Request, record: RecordedRequest) -> Response:
        form = record.form
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"},
                                status_code=401)
        if form.get("refresh_token") not in self._refresh_tokens:
            # Echoes what it received, as careless servers do: the client must redact it.
            detail = f"The refresh token {form.get('refresh_token')!r} is invalid, expired or already used"
            return JSONResponse({"error": "invalid_grant", "error_description": detail}, status_code=400)
        serial = next(self._serial)
        access, refresh = f"fake-access-token-{serial}", f"fake-refresh-token-{serial}"
        self._tokens[access] = _Token(self.clock() + self.access_token_ttl_seconds)
        # Rotation, as Actionstep does: the refresh token just used is spent, the new one replaces it.
        self._refresh_tokens.discard(form["refresh_token"])
        self._refresh_tokens.add(refresh)
        expires_in = self.advertised_expires_in
        return JSONResponse({
            "access_token": access, "token_type": "bearer",
            "expires_in": int(self.access_token_ttl_seconds) if expires_in is None else expires_in,
            "refresh_token": refresh, "api_endpoint": self.api_endpoint, "orgkey": "fakeorg",
        })

    def _authenticate(self, header: str | None) -> None:
        scheme, _, token = (header or "").partition(" ")
        issued = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if issued is None:
            raise _Answer(401, "1302", "Unauthorized", "Missing or unknown access token")
        if self._reject_all or issued.rejected:
            raise _Answer(401, "1302", "Unauthorized", "The access token was rejected")
        if self.clock() >= issued.expires_at:
            raise _Answer(401, "1302", "Unauthorized", "The access token has expired")

    # ---- REST ------------------------------------------------------------------------------

    def _serve(self, request: Request, record: RecordedRequest) -> Response:
        self._authenticate(request.headers.get("authorization"))
        if MEDIA_TYPE not in request.headers.get("accept", ""):
            raise _Answer(406, "1201", "Not Acceptable", f"Accept must include {MEDIA_TYPE}")
        resource, _, record_id = request.path_params["path"].partition("/")
        if resource == FILES_ROUTE and record_id:
            return self._serve_file_part(record_id, record.query)
        if resource in self._denied:
            status = self._denied[resource]
            title, detail = (("Forbidden", f"You do not have permission to access {resource}") if status == 403
                             else ("Not Found", f"Unknown resource {resource!r}"))
            raise _Answer(status, "1502", title, detail)
        if resource not in self._data:  # case-sensitive, as the real API
            raise _Answer(404, "1101", "Not Found", f"Unknown resource {resource!r}")
        if record_id:
            return self._serve_one(resource, record_id)
        rows = self._sorted(self._filtered(resource, record.query), record.query.get("sort", ""))
        includes = self._includes(resource, record.query.get("include", ""))
        size = min(MAX_PAGE_SIZE, max(1, _int_param(record.query, "pageSize", DEFAULT_PAGE_SIZE)))
        page = max(1, _int_param(record.query, "page", 1))
        page_count = math.ceil(len(rows) / size)
        if not rows or page > page_count:
            return Response(status_code=204)
        chunk = rows[(page - 1) * size : page * size]
        body: dict[str, Any] = {resource: _one_or_many(chunk), "links": self._link_templates(resource)}
        if includes:
            body["linked"] = {kind: _one_or_many(found) for kind, found in self._linked(resource, chunk, includes).items()}
        body["meta"] = {
            "paging": {resource: {
                "recordCount": len(rows), "pageCount": page_count, "page": page, "pageSize": size,
                "prevPage": self._page_url(resource, record.query, page - 1) if page > 1 else None,
                "nextPage": self._page_url(resource, record.query, page + 1) if page < page_count else None,
            }},
            "debug": {"requestTime": "0.012", "app": "FakeActionstep"},
        }
        return JSONResponse(body)

    def _serve_one(self, resource: str, record_id: str) -> Response:
        for row in self._data[resource]:
            if str(row.get("id")) == record_id:
                return JSONResponse({resource: row, "links": self._link_templates(resource),
                                     "meta": {"debug": {"requestTime": "0.004"}}})
        raise _Answer(404, "1501", "Not Found", f"No {resource} record with id {record_id!r}")

    def _serve_file_part(self, reference: str, query: dict[str, str]) -> Response:
        document = next((row for rows in self._data.values() for row in rows if row.get("file") == reference), None)
        if document is None:
            raise _Answer(404, "1501", "Not Found", f"No file {reference!r}")
        number = _int_param(query, "part_number", 0)
        size = int(document.get("fileSize") or 0)
        start = (number - 1) * self.file_part_bytes
        if number < 1 or (start >= size and number > 1):
            raise _Answer(400, "1301", "Bad Request", f"part_number {number} is outside file {reference!r}")
        content = document_bytes(reference, start, min(size, start + self.file_part_bytes))
        return Response(content, media_type="application/octet-stream")

    def _filtered(self, resource: str, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = self._data[resource]
        filters = {k: v for k, v in query.items() if k not in _RESERVED_PARAMS}
        known = {name for row in rows for name in row if name != "links"}
        known |= {name for row in rows for name in (row.get("links") or {})}
        for name, wanted in filters.items():
            if name not in known:
                raise _Answer(400, "1301", "Bad Request", f"Unknown filter {name!r} on {resource}")
            accepted = set(wanted.split(","))
            rows = [row for row in rows if _values(row, name) & accepted]
        return rows

    @staticmethod
    def _sorted(rows: list[dict[str, Any]], raw: str) -> list[dict[str, Any]]:
        for name in reversed([n for n in raw.split(",") if n.strip("-")]):
            field_name = name.lstrip("-")
            present = [row for row in rows if row.get(field_name) is not None]
            present.sort(key=lambda row: _sort_key(row[field_name]), reverse=name.startswith("-"))
            rows = present + [row for row in rows if row.get(field_name) is None]  # nulls last
        return rows

    def _includes(self, resource: str, raw: str) -> list[str]:
        names = [name for name in raw.split(",") if name]
        for name in names:
            if (resource, name) not in INCLUDES:
                raise _Answer(400, "1301", "Bad Request", f"Cannot include {name!r} on {resource}")
        return names

    def _linked(self, resource: str, chunk: list[dict[str, Any]], includes: list[str]) -> dict[str, list[dict[str, Any]]]:
        linked: dict[str, list[dict[str, Any]]] = {}
        for name in includes:
            kind = INCLUDES[(resource, name)]
            wanted = set().union(*(_values(row, name) for row in chunk))
            found = [row for row in self._data.get(kind, []) if str(row.get("id")) in wanted]
            seen = {str(row.get("id")) for row in linked.get(kind, [])}
            linked.setdefault(kind, []).extend(row for row in found if str(row.get("id")) not in seen)
        return linked

    def _page_url(self, resource: str, query: dict[str, str], page: int) -> str:
        return f"{self.api_endpoint}/rest/{resource}?{urlencode({**query, 'page': str(page)})}"

    def _link_templates(self, resource: str) -> dict[str, Any]:
        return {f"{resource}.{name}": {"href": f"{self.api_endpoint}/rest/{kind}/{{{resource}.{name}}}", "type": kind}
                for (owner, name), kind in INCLUDES.items() if owner == resource}


# Every fake document is a .pdf, and a real Twenty sniffs uploads: content whose magic bytes do
# not match its extension is refused ("File content does not match its extension"); a PDF
# header is enough for it to be taken as one.
PDF_HEADER = b"%PDF-1.7\n"


def document_bytes(reference: str, start: int, end: int) -> bytes:
    """Bytes start..end of the fake content of file `reference`: PDF_HEADER, then 32-byte blocks,
    block i being sha256("<reference>|<i>"), so any part can be made without making the whole file."""
    if end <= start:
        return b""
    first, last = start // 32, (end - 1) // 32
    blocks = b"".join(hashlib.sha256(f"{reference}|{i}".encode()).digest() for i in range(first, last + 1))
    part = blocks[start - first * 32 : end - first * 32]
    if start < len(PDF_HEADER):
        head = PDF_HEADER[start:end]
        part = head + part[len(head):]
    return part


def document_content(document: dict[str, Any]) -> bytes:
    """The whole file the fake serves for a document record (its `file` and `fileSize`)."""
    return document_bytes(str(document["file"]), 0, int(document["fileSize"]))


def _values(row: dict[str, Any], name: str) -> set[str]:
    """A field's or link's value(s) as strings (ids may be ints or strings; links may be lists)."""
    value = row[name] if name in row else (row.get("links") or {}).get(name)
    items = value if isinstance(value, list) else [value]
    return {str(item) for item in items if item is not None}


def _sort_key(value: Any) -> tuple[int, Any]:
    """Timestamps in any of the served formats compare as instants; other values as text."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return (1, str(value))
    return (0, (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


def _one_or_many(rows: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """The quirk: exactly one record is served as an object, not a one-element list."""
    return rows[0] if len(rows) == 1 else rows


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _Answer(400, "1301", "Bad Request", f"{name} must be a whole number, got {raw!r}") from None


@contextmanager
def serve_fake_actionstep(**options: Any) -> Iterator[FakeActionstep]:
    """Serve a FakeActionstep on 127.0.0.1 (free port) in a background thread; `options` go to it."""
    fake = FakeActionstep(**options)
    with serve_in_thread(fake.app, "fake-actionstep") as base_url:
        fake.base_url = base_url
        yield fake


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Actionstep API in the foreground.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3998)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    fake = FakeActionstep(dataset=generate_dataset(args.seed))
    fake.base_url = f"http://{args.host}:{args.port}"
    print(f"FakeActionstep: token URL {fake.token_url}, client id {fake.client_id}, client secret "
          f"{fake.client_secret}, refresh token {fake.refresh_token} (all fake)", flush=True)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
