"""Actionstep REST API client: OAuth refresh, paging, resumable extraction and the API's quirks.

Follows `shared/sources/actionstep.md` and the published OpenAPI files:

- **Auth**: a refresh token is exchanged for an access token at the token endpoint (form
  POST). The token response's `api_endpoint` (region host, often ending in `/api`) is the
  API base; `/rest` is appended. A 401 refreshes the token once and resends; a second 401
  stops with an actionable error. Credentials arrive as arguments (the Dagster resource
  below reads them from `ACTIONSTEP__*` environment variables) and never appear in logs,
  errors or reprs.
- **Paging**: `page` / `pageSize` = 200 (the maximum), `meta.paging.<resource>` decides when
  to stop (`engine.paginate.PageNumberPaginator`). Every request goes through the one retry
  policy (`engine.retry`): 429 and 5xx back off exponentially, honouring `Retry-After`.
- **Resume**: each completed page is saved to a `CheckpointStore` before its records are
  handed out; `extract(resource)` replays the saved pages without HTTP and fetches from the
  page after the last completed one. A crash or a give-up therefore costs at most one page.
- **Files** (`download_file`): a document's `file` reference is read through
  `files/{file}?part_number=n`, part by part, on the same token / retry / 401-refresh path.
  Assumption (Actionstep documents no response shape): each part is the raw bytes of up to
  5 MiB, the parts being as many as the declared `fileSize` needs, as Actionstep's sample app
  (actionstep/Actionstep.API.WebClient, `ActionstepApi.DownloadFileAsync`) reads them.
- **Quirks normalised** (`normalise_record`): a single record served as an object instead of
  a one-element list; HTTP 204 for an empty result; related records under `linked`;
  "T"/"F" booleans -> "true"/"false" (only fields the spec declares boolean: `gender` "F"
  stays "F"); ids as ints or strings -> strings; composite ids with "--" kept verbatim and
  also split into named parts; timestamps with local offsets in mixed formats -> UTC
  ISO-8601 ("2022-05-02T12:09:00.000Z"). Resource and field names are used exactly as in the
  spec: the API is case-sensitive, so nothing is lower-cased or renamed.

Output values are strings or None, as the engine's extract layer expects; `links` become
`links.<name>` columns (lists comma-joined).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pandas as pd
from pydantic import Field

from migration_pipeline.engine.files import FileUnavailable
from migration_pipeline.engine.paginate import PageInfo, PageNumberPaginator, Paginator
from migration_pipeline.engine.preflight import require_answer
from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.engine.retry import RetryPolicy
from migration_pipeline.engine.unreadable import SourceRequestError
from migration_pipeline.sources.actionstep.tokens import (
    MemoryTokenStore,
    TokenState,
    TokenStore,
    fingerprint,
    token_store,
)

DEFAULT_TOKEN_URL = "https://api.actionstep.com/api/oauth/token"
MAX_PAGE_SIZE = 200  # Actionstep caps pageSize at 200
# Bytes per part of `files/{id}?part_number=n`: 5 MiB in Actionstep's sample app
# (actionstep/Actionstep.API.WebClient, ActionstepApi.cs); not documented otherwise.
FILE_PART_BYTES = 5 * 1024 * 1024
MEDIA_TYPE = "application/vnd.api+json"
ENV_CLIENT_ID = "ACTIONSTEP__CLIENT_ID"
ENV_CLIENT_SECRET = "ACTIONSTEP__CLIENT_SECRET"
ENV_REFRESH_TOKEN = "ACTIONSTEP__REFRESH_TOKEN"
ENV_TOKEN_URL = "ACTIONSTEP__TOKEN_URL"  # optional: another token endpoint (staging, a fake server)
ENV_CHECKPOINT_DIR = "ACTIONSTEP__CHECKPOINT_DIR"  # optional: keep completed pages on disk, per run
ENV_TOKEN_STORE = "ACTIONSTEP__TOKEN_STORE"  # optional: the token file (default $DAGSTER_HOME/actionstep_tokens.json)

Record = dict[str, str | None]
RawRecord = dict[str, Any]

# ---- what the spec says about fields (names are case-sensitive) ---------------------------

# Fields the OpenAPI files declare as "T"/"F" flags, per resource. Other "T"/"F" values are
# left alone: `gender` "F" means female. `users` is not in the published spec (assumption).
BOOLEAN_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(fields)
    for name, fields in {
        "actions": ("isBillableOverride", "isDeleted", "isFavorite"),
        "actiontypeparticipanttypes": ("isPrimaryParticipantType", "required"),
        "actiontypes": (
            "allowCloseWithOpenInvoice", "allowInlineCustomizing", "canCreate", "enableActionImage",
            "isBillable", "isDisabled", "isForCrm", "isForDebtCollection", "isForEmployees",
            "isForMarketingCampaigns", "isForMarketingEvents", "showAmlReviewStatus",
            "trackActualTime", "trackBillableTime",
        ),
        "datacollectionfielddropdownchoices": ("isDefault",),
        "datacollectionfields": ("required",),
        "datacollectionrecords": ("canDelete", "canWrite"),
        "datacollections": ("alwaysShowDescriptions", "multipleRecords"),
        "disbursements": ("isAnticipated", "unitPriceIncludesTax"),
        "participantdatafielddropdownchoices": ("isDefault",),
        "participants": ("debtorStatementSendEmail", "debtorStatementUsePrimaryEmail", "isCompany", "isDeceased"),
        "participanttypedatafields": ("limitUseToMatterOnly", "required", "synchronizeValues"),
        "tasks": ("confirmedNonBillable", "hasTriggerDate", "isBillingHold", "isPartBilled", "triggerWeekdaysOnly"),
        "steps": ("isActive",),  # assumption: no published spec for steps
        "timeentries": ("isBillable",),
        "users": ("isActive",),
    }.items()
}  # fmt: skip

# Fields with `format: date` (a calendar date: no time, no zone, never shifted to UTC).
DATE_FIELDS: dict[str, frozenset[str]] = {
    "participants": frozenset({"birthTimestamp", "deathTimestamp"}),
    "bills": frozenset({"invoiceDate", "dueDate"}),
    "disbursements": frozenset({"date"}),
}
# Every other `format: timestamp` field is named `...Timestamp`, except these two.
_EXTRA_TIMESTAMP_FIELDS = frozenset({"last_modified_time_stamp", "timestampDate"})


@dataclass(frozen=True)
class CompositeKey:
    """A "--"-joined id; `free` is the index of the one part that is a name and may itself
    contain "--" (a field or choice name); the other parts are ids."""

    parts: tuple[str, ...]
    free: int | None = None

    def split(self, value: str) -> tuple[str | None, ...]:
        pieces = value.split("--")
        n = len(self.parts)
        if len(pieces) == n:
            return tuple(pieces)
        if len(pieces) < n or self.free is None:
            return (None,) * n  # malformed: the id itself is still kept verbatim
        tail = n - self.free - 1
        middle = "--".join(pieces[self.free : len(pieces) - tail])
        return (*pieces[: self.free], middle, *pieces[len(pieces) - tail :])


# (resource, column) -> parts; the parts become extra columns `<column>.<part>`.
COMPOSITE_KEYS: dict[tuple[str, str], CompositeKey] = {
    ("actionparticipants", "id"): CompositeKey(("action", "participantType", "participant")),
    ("actiontypeparticipanttypes", "id"): CompositeKey(("actionType", "participantType")),
    ("participantdefaulttypes", "id"): CompositeKey(("participant", "participantType")),
    ("datacollectionfields", "id"): CompositeKey(("dataCollection", "name"), free=1),
    ("datacollectionrecordvalues", "id"): CompositeKey(("dataCollection", "fieldName", "dataCollectionRecord"), free=1),
    ("datacollectionrecordvalues", "links.dataCollectionField"): CompositeKey(("dataCollection", "fieldName"), free=1),
    ("datacollectionfielddropdownchoices", "id"): CompositeKey(("dataCollection", "fieldName", "choice"), free=2),
    ("datacollectionfielddropdownchoices", "links.dataField"): CompositeKey(("dataCollection", "fieldName"), free=1),
    ("actions", "links.step"): CompositeKey(("actionType", "stepNumber")),
    ("steps", "id"): CompositeKey(("actionType", "stepNumber")),  # assumption: no published spec for steps
}  # fmt: skip


# ---- errors -------------------------------------------------------------------------------


class ActionstepAuthError(Exception):
    """The token endpoint refused the credentials, or the API refused a fresh token."""


class ActionstepRequestError(SourceRequestError):
    """Actionstep answered a request with a 4xx other than a recoverable 401."""

    def __init__(self, status: int, method: str, route: str, said: str) -> None:
        self.method, self.said = method, said
        hint = {
            403: " The authorising user lacks permission: give their Actionstep role access to this resource, or "
                 "authorise the app as a user who has it (Restricted-Access matters are invisible to other users).",
            404: " Check the resource name: the API is case-sensitive (e.g. `participants`, not `Participants`).",
        }.get(status, "")
        super().__init__(status, route, f"Actionstep rejected {method} {route} with HTTP {status}: {said}.{hint}")


class ActionstepResponseError(Exception):
    """A 2xx answer whose shape the connector does not understand."""


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _error_text(response: httpx.Response) -> str:
    """Actionstep's error body is undocumented: read `errors[]`, OAuth `error`, or plain text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or "no message"
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list):
            parts = [
                " ".join(str(e.get(k)) for k in ("code", "title", "detail") if isinstance(e, dict) and e.get(k))
                for e in body["errors"]
            ]
            return "; ".join(p for p in parts if p) or "no message"
        if "error" in body:
            return " ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
    return json.dumps(body)[:300]


# ---- credentials and tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class ActionstepCredentials:
    """OAuth client and refresh token. The repr shows none of them."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    redirect_uri: str = ""

    def __post_init__(self) -> None:
        missing = [env for env, value in ((ENV_CLIENT_ID, self.client_id), (ENV_CLIENT_SECRET, self.client_secret),
                                          (ENV_REFRESH_TOKEN, self.refresh_token)) if not value]
        if missing:
            raise ValueError(f"Actionstep credentials missing: set {', '.join(missing)}.")

    def secrets(self) -> tuple[str, ...]:
        return (self.client_id, self.client_secret, self.refresh_token)


def rest_base(api_endpoint: str) -> str:
    """`https://ap-southeast-2.actionstep.com/api` -> `.../api/rest` (unless already there)."""
    base = api_endpoint.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ActionstepAuthError(f"the token response's api_endpoint {base!r} is not a URL")
    return base if base.endswith("/rest") else f"{base}/rest"


class _TokenSession:
    """Holds the current access token and API base; refreshes when near expiry or asked.

    With a `TokenStore` shared by the steps of a run (see `tokens.py`), the first step to need
    a token asks the token endpoint and every other step, in any process, adopts it; the
    refresh token Actionstep rotates with every answer is kept there for the next run. A 401
    refreshes only if nobody has replaced the rejected token already."""

    def __init__(self, credentials: ActionstepCredentials, token_url: str, http: httpx.Client, retry: RetryPolicy,
                 *, clock: Callable[[], float], margin_seconds: float, log: Callable[[str], None],
                 on_refresh_token: Callable[[str], None] | None, store: TokenStore | None = None,
                 run_key: str = "") -> None:
        self._credentials, self._token_url, self._http, self._retry = credentials, token_url, http, retry
        self._clock, self._margin, self._log, self._on_refresh_token = clock, margin_seconds, log, on_refresh_token
        self._store: TokenStore = store if store is not None else MemoryTokenStore()
        self._run_key = run_key
        self._seed = fingerprint(credentials.refresh_token)
        self._chain = fingerprint(token_url, credentials.client_id)
        self._refresh_token = credentials.refresh_token
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._api_base: str | None = None
        self._lock = threading.Lock()
        self.refresh_count = 0

    def secrets(self) -> tuple[str, ...]:
        return (*self._credentials.secrets(), self._refresh_token, self._access_token or "")

    def access_token(self) -> str:
        with self._lock:
            if self._access_token is None or self._clock() >= self._expires_at - self._margin:
                self._adopt_or_refresh(None, "no access token yet" if self._access_token is None
                                       else "the access token expires")
            assert self._access_token is not None
            return self._access_token

    def api_base(self) -> str:
        self.access_token()
        assert self._api_base is not None
        return self._api_base

    def refresh_after_401(self, rejected: str) -> None:
        with self._lock:
            if self._access_token == rejected:  # another thread may have refreshed already
                self._adopt_or_refresh(rejected, "the API answered 401")

    def _adopt_or_refresh(self, rejected: str | None, reason: str) -> None:
        """Under the store's lock: take the run's shared token if it is still good (and not the
        one just rejected), else refresh with the chain's newest refresh token and share it."""
        with self._store.lock():
            state = self._store.load(self._chain)
            if state is not None and state.seed != self._seed:
                state = None  # ACTIONSTEP__REFRESH_TOKEN changed: the app was authorised again
            if state is not None:
                self._refresh_token = state.refresh_token
                left = state.expires_at - time.time()
                if (state.run_key == self._run_key and state.access_token and state.access_token != rejected
                        and left > self._margin):
                    self._access_token, self._api_base = state.access_token, rest_base(state.api_endpoint)
                    self._expires_at = self._clock() + left
                    return
            endpoint, expires_in = self._refresh(reason, from_store=state is not None)
            self._store.save(self._chain, TokenState(
                seed=self._seed, refresh_token=self._refresh_token, access_token=self._access_token or "",
                api_endpoint=endpoint, expires_at=time.time() + expires_in, run_key=self._run_key))

    def _refresh(self, reason: str, *, from_store: bool) -> tuple[str, float]:
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token,
                "client_id": self._credentials.client_id, "client_secret": self._credentials.client_secret}
        if self._credentials.redirect_uri:
            form["redirect_uri"] = self._credentials.redirect_uri
        response = self._retry.send(
            lambda: self._http.post(self._token_url, data=form, headers={"Accept": "application/json"}),
            "POST Actionstep OAuth token (refresh)",
        )
        if response.status_code != 200:
            said = _redact(_error_text(response), self.secrets())
            which = (f"the refresh token the last run kept ({self._store.describe()})" if from_store
                     else f"the refresh token in {ENV_REFRESH_TOKEN}")
            raise ActionstepAuthError(
                f"Actionstep's token endpoint refused {which} (HTTP {response.status_code}: {said}). "
                f"Check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}; if they are right, authorise the app again "
                f"and set {ENV_REFRESH_TOKEN} to the new refresh token (they expire after about 21 days; "
                f"a new value replaces the kept one)."
            )
        try:
            body = response.json()
            token, endpoint = body["access_token"], body["api_endpoint"]
            expires_in = float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise ActionstepAuthError(
                "Actionstep's token response lacks access_token or api_endpoint; check the token URL."
            ) from None
        self._access_token, self._api_base = str(token), rest_base(str(endpoint))
        self._expires_at = self._clock() + expires_in
        self.refresh_count += 1
        new_refresh = body.get("refresh_token")
        if new_refresh and new_refresh != self._refresh_token:
            self._refresh_token = str(new_refresh)
            if self._on_refresh_token is not None:
                self._on_refresh_token(self._refresh_token)
        self._log(f"Actionstep access token refreshed ({reason}); valid for {expires_in:.0f} s")
        return str(endpoint), expires_in


# ---- checkpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPage:
    """One completed page as the API sent it: its records and its `linked` side-loads."""

    position: str
    records: list[RawRecord]
    linked: dict[str, list[RawRecord]] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    position: str  # the paginator position of the last completed page
    pages: int  # completed pages saved for this stream
    finished: bool  # the last page was reached: nothing left to fetch


class CheckpointStore(Protocol):
    """Per stream (a resource plus its query), the completed pages and the last position.

    `save` must be durable before it returns: the page's records are handed out after it.
    """

    def load(self, stream: str) -> Checkpoint | None: ...

    def pages(self, stream: str) -> Iterator[StoredPage]: ...

    def save(self, stream: str, page: StoredPage, finished: bool) -> None: ...

    def reset(self, stream: str) -> None: ...


class MemoryCheckpointStore:
    """Resume within one process (e.g. calling `extract` again after a give-up)."""

    def __init__(self) -> None:
        self._streams: dict[str, tuple[Checkpoint, list[StoredPage]]] = {}

    def load(self, stream: str) -> Checkpoint | None:
        return self._streams[stream][0] if stream in self._streams else None

    def pages(self, stream: str) -> Iterator[StoredPage]:
        yield from list(self._streams.get(stream, (None, []))[1])

    def save(self, stream: str, page: StoredPage, finished: bool) -> None:
        pages = [*self._streams.get(stream, (None, []))[1], page]
        self._streams[stream] = (Checkpoint(page.position, len(pages), finished), pages)

    def reset(self, stream: str) -> None:
        self._streams.pop(stream, None)


class JsonFileCheckpointStore:
    """Resume across processes: `<directory>/<stream>/page-000001.json ...` and `checkpoint.json`.

    Each file is written to a temporary name and renamed, so a crash leaves either the old or
    the new checkpoint, never half of one. A page file written after the last checkpoint (a
    crash between the two writes) is ignored and overwritten.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def _folder(self, stream: str) -> Path:
        readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", stream)[:60]
        digest = hashlib.sha1(stream.encode("utf-8")).hexdigest()[:10]  # case-sensitive names stay apart
        return self.directory / f"{readable}-{digest}"

    def load(self, stream: str) -> Checkpoint | None:
        path = self._folder(stream) / "checkpoint.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return Checkpoint(str(data["position"]), int(data["pages"]), bool(data["finished"]))

    def pages(self, stream: str) -> Iterator[StoredPage]:
        checkpoint = self.load(stream)
        for number in range(1, (checkpoint.pages if checkpoint else 0) + 1):
            data = json.loads((self._folder(stream) / f"page-{number:06d}.json").read_text(encoding="utf-8"))
            yield StoredPage(str(data["position"]), data["records"], data["linked"])

    def save(self, stream: str, page: StoredPage, finished: bool) -> None:
        folder = self._folder(stream)
        folder.mkdir(parents=True, exist_ok=True)
        previous = self.load(stream)
        number = (previous.pages if previous else 0) + 1
        _write_atomically(folder / f"page-{number:06d}.json",
                          {"position": page.position, "records": page.records, "linked": page.linked})
        _write_atomically(folder / "checkpoint.json",
                          {"stream": stream, "position": page.position, "pages": number, "finished": finished})

    def reset(self, stream: str) -> None:
        folder = self._folder(stream)
        if folder.is_dir():
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()


def _write_atomically(path: Path, data: Any) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---- normalisation ------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


_DAY_MONTH_YEAR = ("%d-%b-%Y", "%d %b %Y", "%d-%B-%Y", "%d %B %Y")


def _parse_moment(value: str) -> datetime | date | None:
    """A datetime (aware if the value had an offset), a date for a bare date, or None."""
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DAY_MONTH_YEAR:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def normalise_timestamp(value: str, zone: tzinfo = timezone.utc) -> str:
    """UTC ISO-8601 with milliseconds and "Z". A bare date stays a date (it names a day, not
    an instant); a value without offset is read in `zone`; an unreadable value is returned
    unchanged, for the schema check to report."""
    moment = _parse_moment(value)
    if moment is None:
        return value
    if not isinstance(moment, datetime):
        return moment.isoformat()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise_date(value: str) -> str:
    """A calendar date ("23-May-1987", "1987-05-23", or a timestamp's own date) as YYYY-MM-DD."""
    moment = _parse_moment(value)
    if moment is None:
        return value
    return (moment.date() if isinstance(moment, datetime) else moment).isoformat()


def _is_timestamp_field(name: str) -> bool:
    return name.endswith("Timestamp") or name in _EXTRA_TIMESTAMP_FIELDS


def normalise_record(resource: str, raw: Mapping[str, Any], zone: tzinfo = timezone.utc) -> Record:
    """One API record as flat strings/None, names unchanged; `links` -> `links.<name>`."""
    booleans = BOOLEAN_FIELDS.get(resource, frozenset())
    dates = DATE_FIELDS.get(resource, frozenset())
    out: Record = {}
    for name, value in raw.items():
        if name == "links":
            continue
        if isinstance(value, str) and name in booleans and value in ("T", "F"):
            out[name] = "true" if value == "T" else "false"
        elif isinstance(value, str) and value.strip() and name in dates:
            out[name] = normalise_date(value)
        elif isinstance(value, str) and value.strip() and _is_timestamp_field(name):
            out[name] = normalise_timestamp(value, zone)
        else:
            out[name] = _text(value)
    links = raw.get("links")
    if isinstance(links, Mapping):
        for name, value in links.items():
            if isinstance(value, list):
                joined = ",".join(t for t in (_text(v) for v in value) if t is not None)
                out[f"links.{name}"] = joined or None
            else:
                out[f"links.{name}"] = _text(value)
    for (owner, column), key in COMPOSITE_KEYS.items():
        if owner == resource and out.get(column):
            for part, piece in zip(key.parts, key.split(str(out[column]))):
                out[f"{column}.{part}"] = piece
    return out


def _as_list(value: Any) -> list[RawRecord]:
    """The single-record quirk: one record arrives as an object, not a one-element list."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    raise ActionstepResponseError(f"expected a record or a list of records, got {type(value).__name__}")


def read_page(resource: str, body: Mapping[str, Any] | None) -> tuple[list[RawRecord], dict[str, list[RawRecord]], PageInfo]:
    """Records, `linked` side-loads and paging metadata of one response (None: HTTP 204)."""
    if body is None:
        return [], {}, PageInfo(record_count=0, has_next=False)
    if resource not in body:
        near = [key for key in body if key.lower() == resource.lower()]
        hint = f" (found {near[0]!r}: names are case-sensitive)" if near else ""
        raise ActionstepResponseError(
            f"Actionstep's answer for {resource!r} has no {resource!r} key{hint}; keys: {', '.join(map(str, body))}"
        )
    records = _as_list(body[resource])
    linked_raw = body.get("linked") or {}
    linked = {str(kind): _as_list(rows) for kind, rows in linked_raw.items()} if isinstance(linked_raw, dict) else {}
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    paging = (meta.get("paging") or {}).get(resource) if isinstance(meta.get("paging"), dict) else None
    if not isinstance(paging, dict):
        return records, linked, PageInfo(record_count=len(records), has_next=False)  # a single-record route
    return records, linked, PageInfo(
        record_count=len(records),
        total_pages=_int_or_none(paging.get("pageCount")),
        total_records=_int_or_none(paging.get("recordCount")),
        has_next=(paging.get("nextPage") is not None) if "nextPage" in paging else None,
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---- the client ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractedPage:
    """One page of normalised records; `replayed` when it came from the checkpoint store."""

    position: str
    records: list[Record]
    linked: dict[str, list[Record]]
    replayed: bool


@dataclass(frozen=True)
class ResourceFrames:
    """A resource as a frame of strings/None, plus one frame per `linked` type (deduplicated by id)."""

    records: pd.DataFrame
    linked: dict[str, pd.DataFrame]


def to_frame(records: Sequence[Record]) -> pd.DataFrame:
    """Columns in first-seen order; a key missing from a record is None (never NaN)."""
    columns = list(dict.fromkeys(name for record in records for name in record))
    return pd.DataFrame([[r.get(c) for c in columns] for r in records], columns=columns, dtype=object)


def stream_key(resource: str, params: Mapping[str, str] | None = None, include: Sequence[str] = ()) -> str:
    """The checkpoint name of one extraction: the resource plus its query, exactly as sent."""
    query = dict(sorted((params or {}).items()))
    if include:
        query["include"] = ",".join(include)
    return f"{resource}?{urlencode(query)}" if query else resource


class ActionstepClient:
    """Reads one Actionstep organisation. Use as a context manager.

        with ActionstepClient(credentials, timeout=httpx.Timeout(30.0)) as client:
            frames = client.extract_frames("actions", include=["actionType"])
    """

    def __init__(
        self,
        credentials: ActionstepCredentials,
        *,
        timeout: httpx.Timeout,
        token_url: str = DEFAULT_TOKEN_URL,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        checkpoints: CheckpointStore | None = None,
        page_size: int = MAX_PAGE_SIZE,
        account_timezone: str = "UTC",
        transport: httpx.BaseTransport | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_margin_seconds: float = 60.0,
        on_refresh_token: Callable[[str], None] | None = None,
        file_part_bytes: int = FILE_PART_BYTES,
        tokens: TokenStore | None = None,
        run_key: str = "",
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if file_part_bytes < 1:
            raise ValueError(f"file_part_bytes must be at least 1, got {file_part_bytes}")
        self._file_part_bytes = file_part_bytes
        self._log = log or (lambda message: None)
        self._retry = retry or RetryPolicy(log=log)
        self._limiter = limiter
        self._checkpoints: CheckpointStore = checkpoints if checkpoints is not None else MemoryCheckpointStore()
        self._page_size = page_size
        self._paginator: Paginator = PageNumberPaginator(page_size=page_size)
        self._zone = ZoneInfo(account_timezone)
        self._token_host = httpx.URL(token_url).host
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._tokens = _TokenSession(credentials, token_url, self._http, self._retry, clock=clock,
                                     margin_seconds=token_margin_seconds, log=self._log,
                                     on_refresh_token=on_refresh_token, store=tokens, run_key=run_key)
        self._count_lock = threading.Lock()
        self.request_count = 0  # API requests sent (token requests not included), retries included

    def __repr__(self) -> str:
        return f"ActionstepClient(token_host={self._token_host!r})"

    def __enter__(self) -> ActionstepClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def token_refreshes(self) -> int:
        return self._tokens.refresh_count

    # -- reading ------------------------------------------------------------------------------

    def get(self, resource: str, params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """One GET of `<api_endpoint>/rest/<resource>`; None for HTTP 204 (no records)."""
        route = f"{resource}?{urlencode(params)}" if params else resource
        response = self._send(resource, dict(params or {}), f"GET {route}")
        if response.status_code == 204 or not response.content:
            return None
        if response.status_code >= 400:
            said = _redact(_error_text(response), self._tokens.secrets())
            raise ActionstepRequestError(response.status_code, "GET", route, said)
        try:
            body = response.json()
        except ValueError:
            raise ActionstepResponseError(f"Actionstep answered GET {route} with non-JSON content") from None
        if not isinstance(body, dict):
            raise ActionstepResponseError(f"Actionstep answered GET {route} with a JSON {type(body).__name__}")
        return body

    def fetch(self, resource: str, record_id: str | int) -> Record | None:
        """One record by id (composite ids like "1024--31--11" included); None if absent."""
        body = self.get(f"{resource}/{record_id}")
        records, _, _ = read_page(resource, body)
        return normalise_record(resource, records[0], self._zone) if records else None

    def iter_pages(self, resource: str, params: Mapping[str, str] | None = None,
                   include: Sequence[str] = ()) -> Iterator[ExtractedPage]:
        """Every page of `resource`: first the pages a previous run completed (from the
        checkpoint store, no HTTP), then the rest from the API, each saved before it is yielded."""
        base = dict(params or {})
        if include:
            base["include"] = ",".join(include)
        stream = self._stream(resource, params, include)
        checkpoint = self._checkpoints.load(stream)
        for stored in self._checkpoints.pages(stream):
            yield self._normalise(resource, stored, replayed=True)
        if checkpoint is not None and checkpoint.finished:
            return
        if checkpoint is not None:
            self._log(f"{resource}: resuming after page {checkpoint.position} ({checkpoint.pages} saved)")
        sent: dict[str, str] | None = {**base, **self._paginator.first_params(checkpoint.position if checkpoint else None)}
        while sent is not None:
            records, linked, info = read_page(resource, self.get(resource, sent))
            following = self._paginator.next_params(sent, info)
            stored = StoredPage(self._paginator.position(sent, info), records, linked)
            self._checkpoints.save(stream, stored, finished=following is None)
            yield self._normalise(resource, stored, replayed=False)
            sent = following

    def extract(self, resource: str, params: Mapping[str, str] | None = None,
                include: Sequence[str] = ()) -> Iterator[Record]:
        """Every record of `resource`, normalised; resumes after the last completed page."""
        for page in self.iter_pages(resource, params, include):
            yield from page.records

    def extract_frames(self, resource: str, params: Mapping[str, str] | None = None,
                       include: Sequence[str] = ()) -> ResourceFrames:
        """`resource` as a frame of strings/None, and each `linked` type as its own frame."""
        records: list[Record] = []
        linked: dict[str, dict[str, Record]] = {}
        for page in self.iter_pages(resource, params, include):
            records.extend(page.records)
            for kind, rows in page.linked.items():
                seen = linked.setdefault(kind, {})
                for row in rows:
                    seen.setdefault(row.get("id") or json.dumps(row, sort_keys=True), row)
        return ResourceFrames(to_frame(records), {kind: to_frame(list(rows.values())) for kind, rows in linked.items()})

    def download_file(self, reference: str, size: int | None) -> bytes:
        """The bytes of a document (`FileDownloader`): `files/{reference}?part_number=n` for
        n = 1, 2, ... as many parts as the declared `size` needs (without one, until a part
        comes back short). Every part goes through the token, retry and 401-refresh path of
        every read. Assumption (undocumented): a part answers its raw bytes, `file_part_bytes`
        (5 MiB) of them except the last. A 4xx, or a total other than `size`, raises
        FileUnavailable: that one document stays unattached, the run goes on."""
        route = f"files/{quote(reference, safe=':')}"
        parts = max(1, math.ceil(size / self._file_part_bytes)) if size is not None else None
        chunks: list[bytes] = []
        number = 1
        while parts is None or number <= parts:
            description = f"GET files/{reference} part {number}" + (f" of {parts}" if parts else "")
            response = self._send(route, {"part_number": str(number)}, description)
            if response.status_code >= 400:
                said = _redact(_error_text(response), self._tokens.secrets())
                raise FileUnavailable(str(ActionstepRequestError(
                    response.status_code, "GET", f"{route}?part_number={number}", said)))
            chunks.append(response.content)
            if parts is None and len(response.content) < self._file_part_bytes:
                break
            number += 1
        content = b"".join(chunks)
        if size is not None and len(content) != size:
            raise FileUnavailable(f"Actionstep served {len(content)} bytes of {route} in {len(chunks)} parts; "
                                  f"its fileSize says {size}")
        return content

    def reset(self, resource: str, params: Mapping[str, str] | None = None, include: Sequence[str] = ()) -> None:
        """Forget the saved pages of one extraction, so the next one starts at page 1."""
        self._checkpoints.reset(self._stream(resource, params, include))

    # -- internals ----------------------------------------------------------------------------

    def _stream(self, resource: str, params: Mapping[str, str] | None, include: Sequence[str]) -> str:
        # The page size is part of the name: page 3 of 150 is not page 3 of 200.
        return stream_key(resource, {**(params or {}), "pageSize": str(self._page_size)}, include)

    def _normalise(self, resource: str, page: StoredPage, *, replayed: bool) -> ExtractedPage:
        return ExtractedPage(
            position=page.position,
            records=[normalise_record(resource, r, self._zone) for r in page.records],
            linked={kind: [normalise_record(kind, r, self._zone) for r in rows] for kind, rows in page.linked.items()},
            replayed=replayed,
        )

    def _send(self, path: str, params: dict[str, str], description: str) -> httpx.Response:
        """Through the retry policy; a 401 refreshes the token once and resends once."""
        used: list[str] = []

        def send() -> httpx.Response:
            token = self._tokens.access_token()
            used.append(token)
            if self._limiter is not None:
                self._limiter.acquire()
            with self._count_lock:
                self.request_count += 1
            return self._http.get(f"{self._tokens.api_base()}/{path}", params=params,
                                  headers={"Authorization": f"Bearer {token}", "Accept": MEDIA_TYPE})

        response = self._retry.send(send, description)
        if response.status_code != 401:
            return response
        self._log(f"{description}: HTTP 401, refreshing the access token once")
        self._tokens.refresh_after_401(used[-1])
        response = self._retry.send(send, description)
        if response.status_code == 401:
            said = _redact(_error_text(response), self._tokens.secrets())
            raise ActionstepAuthError(
                f"Actionstep rejected {description} with HTTP 401 ({said}) even after refreshing the access "
                f"token. The authorising user may have lost API access; authorise the app again and set "
                f"{ENV_REFRESH_TOKEN}."
            )
        return response


# ---- Dagster resource ---------------------------------------------------------------------


class ActionstepSource(dg.ConfigurableResource):
    """Opens `ActionstepClient`s. Pass the credentials as `dg.EnvVar("ACTIONSTEP__CLIENT_ID")`,
    `dg.EnvVar("ACTIONSTEP__CLIENT_SECRET")` and `dg.EnvVar("ACTIONSTEP__REFRESH_TOKEN")`;
    they are resolved when a run starts and never shown."""

    client_id: str = Field(repr=False, description=f'OAuth client id; pass dg.EnvVar("{ENV_CLIENT_ID}")')
    client_secret: str = Field(repr=False, description=f'OAuth client secret; pass dg.EnvVar("{ENV_CLIENT_SECRET}")')
    refresh_token: str = Field(repr=False, description=f'OAuth refresh token; pass dg.EnvVar("{ENV_REFRESH_TOKEN}")')
    token_url: str = Field(default="", description=f"OAuth token endpoint; empty: ${ENV_TOKEN_URL} when a run "
                           f"starts, else {DEFAULT_TOKEN_URL} (staging: actionstepstaging.com)")
    checkpoint_dir: str = Field(default="", description=f"Folder for resumable extraction; empty: ${ENV_CHECKPOINT_DIR} "
                                "when a run starts, else in memory only")
    token_store: str = Field(default="", description=f"File sharing the run's access token between steps and keeping "
                             f"the rotated refresh token for the next run (mode 0600); empty: ${ENV_TOKEN_STORE}, "
                             f"else $DAGSTER_HOME/actionstep_tokens.json, else this process's memory")
    account_timezone: str = Field(default="", description="Zone of timestamps that carry no offset; empty: the "
                                  "run's `timezone` setting (stated at its start, never guessed)")
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout")
    max_attempts: int = Field(default=8, description="Attempts per request before the run stops")
    backoff_base_seconds: float = Field(default=1.0, description="First retry waits up to this")
    backoff_max_seconds: float = Field(default=60.0, description="Longest wait between attempts")
    requests_per_minute: int = Field(default=0, description="Client-side cap; 0: none (Actionstep publishes no quota)")
    file_part_bytes: int = Field(default=FILE_PART_BYTES, description="Bytes per part when downloading a document "
                                 "(files/{id}?part_number=n); 5 MiB as in Actionstep's sample app")

    delta_resources: list[str] = Field(default=["actions", "participants"],
                                       description="Resources the delta sensor asks for their newest modifiedTimestamp")

    @contextmanager
    def open_client(self, log: Callable[[str], None] | None = None, run_key: str = "",
                    timezone: str = "") -> Iterator[ActionstepClient]:
        """A client; with `checkpoint_dir`, its completed pages are kept in a folder per
        `run_key` (a migration run), so a rerun of that run resumes and a new run starts afresh.
        Offsetless timestamps are read in `account_timezone`, else the run's `timezone`."""
        credentials = ActionstepCredentials(self.client_id, self.client_secret, self.refresh_token)
        retry = RetryPolicy(max_attempts=self.max_attempts, backoff_base_seconds=self.backoff_base_seconds,
                            backoff_max_seconds=self.backoff_max_seconds, log=log)
        checkpoint_dir = self.checkpoint_dir or os.environ.get(ENV_CHECKPOINT_DIR, "")
        folder = Path(checkpoint_dir) / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_key) if run_key else Path(checkpoint_dir)
        store: CheckpointStore = JsonFileCheckpointStore(folder) if checkpoint_dir else MemoryCheckpointStore()
        token_url = self.token_url or os.environ.get(ENV_TOKEN_URL, "") or DEFAULT_TOKEN_URL
        limiter = RateLimiter(self.requests_per_minute) if self.requests_per_minute > 0 else None
        tokens = token_store(self.token_store or os.environ.get(ENV_TOKEN_STORE, ""), os.environ.get("DAGSTER_HOME", ""))
        with ActionstepClient(credentials, timeout=httpx.Timeout(self.timeout_seconds), token_url=token_url,
                              retry=retry, limiter=limiter, checkpoints=store, file_part_bytes=self.file_part_bytes,
                              account_timezone=self.account_timezone or timezone or "UTC", log=log, tokens=tokens,
                              run_key=run_key) as client:
            yield client

    def check_reachable(self, timeout_seconds: float) -> None:
        """`engine.preflight.Reachable`: the token endpoint answers HTTP. No token is asked for:
        that would spend the refresh token before the run."""
        token_url = self.token_url or os.environ.get(ENV_TOKEN_URL, "") or DEFAULT_TOKEN_URL
        require_answer("Actionstep's token endpoint", token_url, timeout_seconds,
                       hint=f"check {ENV_TOKEN_URL} (unset for Actionstep itself) and the network")

    def newest_modification(self, since: datetime) -> datetime | None:
        """`ModifiedSince` for the delta sensor: the newest `modifiedTimestamp` of the
        `delta_resources` (one request each: sorted newest first, one record), if after `since`."""
        newest: datetime | None = None
        # Only instants are compared here; an offsetless one is read in the stated zone if the
        # environment states it (ACTIONSTEP__TIMEZONE), else UTC: at worst the poll runs a delta early.
        zone = ZoneInfo(self.account_timezone or os.environ.get("ACTIONSTEP__TIMEZONE", "") or "UTC")
        with self.open_client(run_key="delta-sensor", timezone=zone.key) as client:
            for resource in self.delta_resources:
                records, _, _ = read_page(resource, client.get(resource, {"sort": "-modifiedTimestamp", "pageSize": "1"}))
                if not records:
                    continue
                stamp = normalise_record(resource, records[0], zone).get("modifiedTimestamp")
                try:
                    moment = datetime.fromisoformat(stamp) if stamp else None
                except ValueError:
                    moment = None
                if moment is not None and moment.tzinfo is None:
                    moment = moment.replace(tzinfo=zone)
                if moment is not None and (newest is None or moment > newest):
                    newest = moment
        return newest if newest is not None and newest > since else None


def actionstep_source(**settings: Any) -> ActionstepSource:
    """The resource wired to `ACTIONSTEP__CLIENT_ID`, `ACTIONSTEP__CLIENT_SECRET` and
    `ACTIONSTEP__REFRESH_TOKEN` (resolved by Dagster when a run starts, not at import);
    `settings` are the other fields, e.g. `checkpoint_dir`."""
    return ActionstepSource(client_id=dg.EnvVar(ENV_CLIENT_ID), client_secret=dg.EnvVar(ENV_CLIENT_SECRET),
                            refresh_token=dg.EnvVar(ENV_REFRESH_TOKEN), **settings)
