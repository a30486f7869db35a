"""HTTP client for one Twenty workspace (REST record routes, metadata REST, file uploads).

Every request goes through the shared retry policy; record routes and uploads also take a
token from the client-side rate limiter (Twenty does not throttle metadata routes). Behaviour
follows the contract observed on Twenty 2.21 (`shared/twenty-contract/examples.md` and
`examples-2.md`), whose filter parser has sharp edges this module keeps away from callers:

- an apostrophe or an odd number of `"` in a value swallows every predicate after it, `[in]` lists
  are split on every comma, parentheses are counted even inside quotes, and there is no escape
  syntax. Values with any of those characters are therefore looked up with `[like]` patterns that
  replace them by `_` (then matched exactly here), and our own predicates go first in `and(...)`;
- filter values travel percent-encoded (httpx sends `+` as `%2B`; a raw `+` would be a space);
- a URL over ~16 KB is refused with HTTP 431, so id lists are chunked to `MAX_URL_BYTES`;
- a JSON body over 10 MB is answered with HTTP 500, so such a body is refused before sending.

Creates are exactly-once: every record carries an id chosen before the request (Twenty stores a
client's id as given and answers the same id again with 400 "A duplicate entry was detected",
examples-2.md section 13). `create_batch` is the one place that decides what to send again after
a failure that may have happened after Twenty wrote: it reads those ids back.
"""

from __future__ import annotations

import json as jsonlib
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.engine.retry import OutcomeUnknown, RetriesExhausted, RetryPolicy

MAX_BATCH = 200  # Twenty's QUERY_MAX_RECORDS: batch create/upsert, page size, update-many cap
# Node answers 431 past 16 KB of request line and headers (examples-2.md section 2); stay well under
# it and under common reverse proxies' 8 KB.
MAX_URL_BYTES = 6_000
_URL_RESERVE = 400  # path, limit, the deletedAt clause and a pagination cursor
# Twenty's body-parser limit: `settings.storage.maxFileSize: '10MB'` (twenty-server
# src/engine/constants/settings/index.ts, used in src/main.ts); over it Twenty answers HTTP 500.
MAX_JSON_BODY_BYTES = 10 * 1024 * 1024
# Characters Twenty's filter parser reads as syntax wherever they are (see the module docstring).
_FILTER_SYNTAX = re.compile(r"""[,"'()\[\]]""")
_DELETED = "deletedAt[is]:NOT_NULL"
_ACTIVE = "deletedAt[is]:NULL"
# Step 1 of an attachment (contract section 11): a GraphQL multipart upload to /metadata into a
# FILES field; step 2 creates the attachment record naming the returned file id.
UPLOAD_MUTATION = (
    "mutation($file: Upload!, $fieldMetadataId: String!) "
    "{ uploadFilesFieldFile(file: $file, fieldMetadataId: $fieldMetadataId) { id path size url } }"
)


class TwentyRequestError(Exception):
    """Twenty answered 4xx. Never carries the API key: only status, messages and the route."""

    def __init__(self, status: int, messages: Sequence[str], method: str, path: str, sent: str | None = None) -> None:
        self.status = status
        self.messages = list(messages)
        self.method = method
        self.path = path
        self.sent = sent  # what the request was about ("field person.role"), when the caller says
        super().__init__(self._describe())

    def about(self, sent: str) -> TwentyRequestError:
        """The same refusal, naming what was sent (a metadata route alone does not say which field)."""
        return TwentyRequestError(self.status, self.messages, self.method, self.path, sent)

    @property
    def is_duplicate(self) -> bool:
        return self.status == 400 and any("duplicate entry" in m.lower() for m in self.messages)

    @property
    def is_record_error(self) -> bool:
        """The payload was refused (validation, uniqueness, size); other records may be fine."""
        return self.status in (400, 409, 413, 422)

    def _describe(self) -> str:
        said = "; ".join(self.messages) or "no message"
        route = f"{self.method} {self.path}" + (f" ({self.sent})" if self.sent else "")
        if self.status == 401:
            return (
                f"TWENTY__API_KEY was rejected by Twenty ({route}: HTTP 401, {said}). "
                "Create a new API key in Twenty under Settings > APIs & Webhooks and set "
                "TWENTY__API_KEY to it."
            )
        if self.status == 403:
            return (
                f"Twenty refused {route} (HTTP 403, {said}). Check that TWENTY__API_KEY is set "
                "and that the key's role may access this object."
            )
        return f"Twenty rejected {route} with HTTP {self.status}: {said}"


class TwentyClient:
    """A thin, typed wrapper over Twenty's REST API. Use as a context manager."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("No Twenty API key: set TWENTY__API_KEY.")
        self._root = base_url.rstrip("/").removesuffix("/rest")
        self._api_key = api_key
        self._retry = retry or RetryPolicy()
        self._limiter = limiter
        self._http = httpx.Client(
            base_url=self._root,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._count_lock = threading.Lock()
        self.request_count = 0  # HTTP requests sent, retries included
        self.settled_count = 0  # created records found by a read-back after an unknown outcome

    def __repr__(self) -> str:
        return f"TwentyClient({self._root!r})"

    @property
    def workspace(self) -> str:
        """What names this workspace in record ids derived for it (the server root)."""
        return self._root

    def __enter__(self) -> TwentyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- records ---------------------------------------------------------------------------

    def list_records(
        self,
        plural: str,
        filter: str | None = None,
        include_deleted: bool = False,
        page_size: int = MAX_BATCH,
        *,
        only_deleted: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """All records matching `filter`, page by page (cursor pagination).

        Soft-deleted rows are hidden unless `include_deleted` (active, then deleted rows) or
        `only_deleted` is set.
        """
        filters: list[str | None] = [] if only_deleted else [filter]
        if include_deleted or only_deleted:
            filters.append(_and(filter, _DELETED))
        for one_filter in filters:
            yield from self._pages(plural, one_filter, page_size)

    def find_by_values(
        self,
        plural: str,
        field_path: str,
        values: Iterable[str],
        include_deleted: bool = False,
        *,
        only_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Records whose `field_path` (e.g. `emails.primaryEmail`) is one of `values`.

        Plain values go in `field[in]:[...]` lists, values holding filter syntax (`,"'()[]`) in
        `or(field[like]:...)` lists, each chunked to keep the URL short; never one request per value.
        """
        unique = list(dict.fromkeys(str(v) for v in values if v))
        plain = [v for v in unique if not _FILTER_SYNTAX.search(v)]
        awkward = set(unique) - set(plain)
        found: list[dict[str, Any]] = []
        for one_filter in _lookup_filters(plural, field_path, plain, list(awkward)):
            for record in self.list_records(plural, one_filter, include_deleted, only_deleted=only_deleted):
                # A like pattern can match more than asked for; an [in] list matches exactly.
                if "[like]" not in one_filter or value_at(record, field_path) in awkward:
                    found.append(record)
        return found

    def get_by_ids(
        self, plural: str, ids: Iterable[str], include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        return self.find_by_values(plural, "id", ids, include_deleted)

    def read_ids(self, plural: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """id -> record for those of `ids` that exist, soft-deleted ones included (those are only
        asked for when some ids were not found active)."""
        wanted = list(dict.fromkeys(ids))
        found = {r["id"]: r for r in self.get_by_ids(plural, wanted)}
        if missing := [i for i in wanted if i not in found]:
            found.update((r["id"], r) for r in self.find_by_values(plural, "id", missing, only_deleted=True))
        return found

    def create_batch(self, plural: str, records: Sequence[Mapping[str, Any]]) -> list[dict]:
        """Create up to 200 records in one request; returns them in request order.

        Twenty applies a batch atomically: one bad record fails the whole request. Each record
        carries an `id` (one is chosen here when the caller gave none), so after a failure whose
        outcome is unknown (a timeout, a dropped connection, a 5xx) the ids are read back,
        soft-deleted rows included, and only what did not land is sent again; a duplicate-entry
        answer to such a resend is settled the same way. Records found by the read-back are
        returned as Twenty holds them."""
        _check_batch(records)
        batch = [dict(r) if r.get("id") else {**r, "id": str(uuid.uuid4())} for r in records]
        path = f"/rest/batch/{plural}"
        landed: dict[str, dict[str, Any]] = {}
        uncertain = False  # an earlier attempt of this batch may have landed
        for attempt in range(1, self._retry.max_attempts + 1):
            todo = [r for r in batch if r["id"] not in landed]
            try:
                body = self._request("POST", path, json=todo, idempotent=False)
                landed.update((c["id"], c) for c in _only_value(body["data"]))
                return [landed[r["id"]] for r in batch]
            except OutcomeUnknown as error:
                failure: BaseException = error
            except TwentyRequestError as error:
                if not (uncertain and error.is_duplicate):
                    raise
                failure = error
            uncertain = True
            self._retry.pause(attempt, f"POST {path}", failure)
            found = self.read_ids(plural, [r["id"] for r in todo])
            if isinstance(failure, TwentyRequestError) and not found:
                raise failure  # a real conflict (a unique value), not our earlier attempt
            landed.update(found)
            self.settled_count += len(found)
            if len(landed) == len(batch):
                return [landed[r["id"]] for r in batch]
        cause = failure.as_retryable() if isinstance(failure, OutcomeUnknown) else failure
        raise RetriesExhausted(f"POST {path}", self._retry.max_attempts, cause)

    def upsert_batch(self, plural: str, records: Sequence[Mapping[str, Any]]) -> list[dict]:
        """Create-or-update up to 200 records; a record carrying `id` updates that record,
        otherwise Twenty matches on a unique field (and un-deletes a soft-deleted match)."""
        _check_batch(records)
        body = self._request(
            "POST", f"/rest/batch/{plural}", params={"upsert": "true"}, json=list(records)
        )
        return _only_value(body["data"])

    def update(self, plural: str, id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        body = self._request("PATCH", f"/rest/{plural}/{id}", json=dict(patch))
        return _only_value(body["data"])

    def destroy(self, plural: str, id: str) -> None:
        """Permanent delete (a plain DELETE is a destroy in Twenty)."""
        self._request("DELETE", f"/rest/{plural}/{id}")

    def soft_delete(self, plural: str, id: str) -> dict[str, Any]:
        body = self._request("DELETE", f"/rest/{plural}/{id}", params={"soft_delete": "true"})
        return _only_value(body["data"])

    def restore(self, plural: str, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Un-delete soft-deleted records, in bulk through the filter form of the route
        (`/rest/restore/{plural}/{id}` is broken in Twenty 2.21)."""
        restored: list[dict[str, Any]] = []
        for chunk in _chunks_for_url(plural, "id", list(dict.fromkeys(ids))):
            body = self._request(
                "PATCH",
                f"/rest/restore/{plural}",
                params={"filter": f"id[in]:[{','.join(chunk)}]"},
            )
            restored.extend(_only_value(body["data"]))
        return restored

    def destroy_many(self, plural: str, ids: Iterable[str]) -> list[str]:
        """Permanently delete records by id, in bulk (`DELETE /rest/{plural}?filter=...` without
        `soft_delete`); returns the ids Twenty destroyed. A destroy by filter reaches soft-deleted
        rows too (examples-2.md section 2)."""
        destroyed: list[str] = []
        for chunk in self._id_filters(plural, ids):
            body = self._request("DELETE", f"/rest/{plural}", params={"filter": chunk})
            destroyed.extend(r["id"] for r in _only_value(body["data"]))
        return destroyed

    def soft_delete_many(self, plural: str, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Soft-delete active records by id, in bulk; returns them as deleted. Records already
        soft-deleted are left alone (Twenty would stamp them with a new deletedAt)."""
        deleted: list[dict[str, Any]] = []
        for chunk in self._id_filters(plural, ids):
            body = self._request(
                "DELETE", f"/rest/{plural}", params={"filter": _and(chunk, _ACTIVE), "soft_delete": "true"}
            )
            deleted.extend(_only_value(body["data"]))
        return deleted

    def set_deleted_at(self, plural: str, ids: Iterable[str], deleted_at: str) -> list[dict[str, Any]]:
        """Give soft-deleted records this `deletedAt` (update-many on the deleted rows), so a
        record deleted again carries its original deletion time."""
        updated: list[dict[str, Any]] = []
        for chunk in self._id_filters(plural, ids, deleted=True):
            body = self._request(
                "PATCH", f"/rest/{plural}", params={"filter": chunk}, json={"deletedAt": deleted_at}
            )
            updated.extend(_only_value(body["data"]))
        return updated

    @staticmethod
    def _id_filters(plural: str, ids: Iterable[str], *, deleted: bool = False) -> Iterator[str]:
        """`id[in]:[...]` filters of at most MAX_BATCH ids (update-many's cap) and a safe URL length."""
        for url_chunk in _chunks_for_url(plural, "id", list(dict.fromkeys(ids))):
            for start in range(0, len(url_chunk), MAX_BATCH):
                in_ids = f"id[in]:[{','.join(url_chunk[start : start + MAX_BATCH])}]"
                yield _and(in_ids, _DELETED) if deleted else in_ids

    def workspace_members(self) -> list[dict[str, Any]]:
        return list(self.list_records("workspaceMembers"))

    def workspace_member_ids(self) -> dict[str, str]:
        """Workspace member id by lower-cased email: how owners are resolved."""
        return {m.get("userEmail", "").lower(): m["id"] for m in self.workspace_members()}

    # -- metadata (not throttled by Twenty, still retried) --------------------------------

    def metadata_objects(self) -> list[dict[str, Any]]:
        """Every object with its `fields`."""
        objects: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": MAX_BATCH}
        while True:
            body = self._request("GET", "/rest/metadata/objects", params=params, throttled=False)
            data = body["data"]
            objects.extend(data if isinstance(data, list) else data["objects"])
            page = body.get("pageInfo") or {}
            if not (page.get("hasNextPage") and page.get("endCursor")):
                return objects
            params = {"limit": MAX_BATCH, "starting_after": page["endCursor"]}

    def create_object(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._metadata("POST", "/rest/metadata/objects", payload)

    def update_object(self, id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._metadata("PATCH", f"/rest/metadata/objects/{id}", patch)

    def delete_object(self, id: str) -> None:
        self._metadata("DELETE", f"/rest/metadata/objects/{id}")

    def create_field(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._metadata("POST", "/rest/metadata/fields", payload)

    def update_field(self, id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return self._metadata("PATCH", f"/rest/metadata/fields/{id}", patch)

    def delete_field(self, id: str) -> None:
        self._metadata("DELETE", f"/rest/metadata/fields/{id}")

    # -- files (GraphQL multipart; throttled and retried like a write) ---------------------

    def upload_file(self, field_metadata_id: str, name: str, content: bytes) -> dict[str, Any]:
        """Upload one file into a FILES field (e.g. `attachment.file`); returns `{id, path, size,
        url}`. GraphQL answers errors with HTTP 200 and `errors[]`: they raise TwentyRequestError
        as a 400 (the file was refused), Twenty's own 413 for a file over its limit stays 413."""
        operations = {"query": UPLOAD_MUTATION, "variables": {"file": None, "fieldMetadataId": field_metadata_id}}
        body = self._request(
            "POST", "/metadata",
            data={"operations": jsonlib.dumps(operations), "map": jsonlib.dumps({"0": ["variables.file"]})},
            files={"0": (name, content, "application/octet-stream")},
        )
        body = body if isinstance(body, dict) else {}
        uploaded = (body.get("data") or {}).get("uploadFilesFieldFile")
        if body.get("errors") or not uploaded:
            messages = _graphql_messages(body.get("errors")) or ["no file in the answer"]
            raise TwentyRequestError(400, self._scrub(messages), "POST", "/metadata (uploadFilesFieldFile)")
        return uploaded

    # -- plumbing --------------------------------------------------------------------------

    def _pages(self, plural: str, filter: str | None, page_size: int) -> Iterator[dict]:
        params: dict[str, Any] = {"limit": max(1, min(page_size, MAX_BATCH))}
        if filter:
            params["filter"] = filter
        while True:
            body = self._request("GET", f"/rest/{plural}", params=params)
            yield from body["data"][plural]
            page = body.get("pageInfo") or {}
            if not (page.get("hasNextPage") and page.get("endCursor")):
                return
            params = {**params, "starting_after": page["endCursor"]}

    def _metadata(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        body = self._request(
            method, path, json=dict(payload) if payload is not None else None, throttled=False
        )
        return _unwrap_metadata(body)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        throttled: bool = True,
        idempotent: bool = True,
    ) -> Any:
        content, headers = None, None
        if json is not None:
            content = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json"}
            if len(content) > MAX_JSON_BODY_BYTES:
                raise TwentyRequestError(413, [
                    f"the request body is {len(content):,} bytes, over Twenty's {MAX_JSON_BODY_BYTES:,}-byte "
                    "JSON limit (settings.storage.maxFileSize); not sent"], method, path)

        def send() -> httpx.Response:
            if throttled and self._limiter is not None:
                self._limiter.acquire()
            with self._count_lock:
                self.request_count += 1
            return self._http.request(method, path, params=params, content=content, headers=headers,
                                      data=data, files=files)

        response = self._retry.send(send, f"{method} {path}", idempotent=idempotent)
        if response.is_success:
            return response.json() if response.content else None
        raise TwentyRequestError(
            response.status_code, self._scrub(_error_messages(response)), method, path
        )

    def _scrub(self, messages: list[str]) -> list[str]:
        return [m.replace(self._api_key, "***") for m in messages]


def _and(filter: str | None, clause: str) -> str:
    """`clause` and `filter`: ours first, since a predicate only ever swallows those after it."""
    return f"and({clause},{filter})" if filter else clause


def value_at(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`emails.primaryEmail`) of a record, None when absent."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _like_pattern(field_path: str, value: str) -> str:
    """A `[like]` predicate safe anywhere in a filter: each syntax character becomes the `_` wildcard
    (as do `%` and `_`, which match themselves too); the caller keeps only exact matches."""
    return f'{field_path}[like]:"{_FILTER_SYNTAX.sub("_", value)}"'


def _lookup_filters(plural: str, field_path: str, plain: Sequence[str], awkward: Sequence[str]) -> Iterator[str]:
    for chunk in _chunks_for_url(plural, field_path, plain):
        yield f"{field_path}[in]:[{','.join(chunk)}]"
    predicates = [_like_pattern(field_path, value) for value in awkward]
    for chunk in _chunks_for_url(plural, field_path, predicates):
        yield chunk[0] if len(chunk) == 1 else f"or({','.join(chunk)})"


def _chunks_for_url(plural: str, field_path: str, items: Sequence[str]) -> Iterator[list[str]]:
    """Split `[in]` values (or predicates) into lists whose encoded URL stays under MAX_URL_BYTES."""
    fixed = len(quote(f"/rest/{plural}?filter={field_path}[in]:[]", safe="/?=")) + _URL_RESERVE
    chunk: list[str] = []
    size = fixed
    for item in items:
        cost = len(quote(item, safe="")) + 3  # + an encoded comma
        if chunk and size + cost > MAX_URL_BYTES:
            yield chunk
            chunk, size = [], fixed
        chunk.append(item)
        size += cost
    if chunk:
        yield chunk


def _check_batch(records: Sequence[Mapping[str, Any]]) -> None:
    if len(records) > MAX_BATCH:
        raise ValueError(f"Twenty accepts at most {MAX_BATCH} records per batch, got {len(records)}")


def _only_value(data: Mapping[str, Any]) -> Any:
    """Record routes wrap results in one operation-named key (`createPeople`, `person`, ...)."""
    (value,) = data.values()
    return value


def _unwrap_metadata(body: Any) -> Any:
    # Observed: create answers are the bare object; the OpenAPI document wraps them in
    # {"data": {"createOneField": {...}}}. Accept both.
    if isinstance(body, dict) and set(body) == {"data"} and isinstance(body["data"], dict):
        inner = body["data"]
        if len(inner) == 1 and isinstance(next(iter(inner.values())), dict):
            return next(iter(inner.values()))
    return body


def _error_messages(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return [text[:300]] if text else []
    if not isinstance(body, dict):
        return [str(body)[:300]]
    top = body.get("messages") or body.get("message") or body.get("error") or []
    messages = [top] if isinstance(top, str) else [str(m) for m in top]
    # Metadata validation errors nest the useful text per entity:
    # {"errors": {"fieldMetadata": [{"errors": [{"message": ...}]}], ...}}
    errors = body.get("errors")
    groups = errors.values() if isinstance(errors, dict) else ()
    for entity in (e for group in groups if isinstance(group, list) for e in group):
        for detail in entity.get("errors", []) if isinstance(entity, dict) else ():
            message = detail.get("message") if isinstance(detail, dict) else None
            if message and message not in messages:
                messages.append(message)
    messages += [m for m in _graphql_messages(errors) if m not in messages]
    return messages


def _graphql_messages(errors: Any) -> list[str]:
    """GraphQL's `errors: [{"message": ..., "extensions": {...}}]` (e.g. an upload refused)."""
    found = [e.get("message") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    return [str(m) for m in found if m]
