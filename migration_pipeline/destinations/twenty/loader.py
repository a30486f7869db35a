"""Ledgered, idempotent load of one Twenty object.

Cost model: Twenty allows ~100 requests/min and 200 records per batch, so a fresh load
into an empty workspace must cost one write request per 200 records, and a rerun of
unchanged data none at all. Lookups happen only where a record may already exist without
the ledger knowing its id: after a crash (pending intents) or when Twenty reports a
duplicate. They are always bulk (`field[in]:[...]`).

Exactly once: every create carries an id chosen before the request, derived from the
workspace, the source, the object and the record's source key (`record_id`), and written in the
ledger's intent row before the request is sent; the intent is completed after it. A lost
response within the load is settled by the client, which reads those ids back before sending
anything again (`TwentyClient.create_batch`); a crash leaves the intent pending, and the rerun
reads its ids back: what landed is ledgered as the create it was, never adopted as an update.
Intents of older versions (no id) are still found by the external key.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from migration_pipeline.destinations.twenty.client import MAX_BATCH, TwentyClient, TwentyRequestError, value_at
from migration_pipeline.engine.payloads import EMPTY_COMPOSITES, with_cleared
from migration_pipeline.ledger import KnownWrite, Ledger, Operation, WriteRow

T = TypeVar("T")

# Bisection isolates bad records at ~2 requests each. When Twenty refuses every record for
# the same reason (unknown object, a field missing from the schema), that would burn the
# whole rate budget; so stop once this many were refused before anything landed.
FAIL_FAST_AFTER = 20
LOGGED_REJECTIONS = 10  # the rest are in the outcome and the ledger


@dataclass(frozen=True)
class LoadRecord:
    source_key: str  # stable external key, e.g. "allclients:contact:123"
    # Twenty-shaped JSON (nested composites), relations already resolved to Twenty ids;
    # includes the external-key custom field.
    payload: dict[str, Any]
    # Fields the mapping leaves empty, with the value that clears them: sent when the record
    # is updated (an earlier run may have written a value), never on create.
    cleared: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadOutcome:
    created: int = 0
    updated: int = 0  # restored (un-deleted) records included
    unchanged: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (source_key, message)
    requests: int = 0  # HTTP requests this load made, retries included


class LoadAborted(Exception):
    """Twenty refuses every record: a mapping or schema problem, not bad data."""


# Namespace of the record ids this pipeline chooses (uuid5 of the record's identity in it).
RECORD_ID_NAMESPACE = uuid.UUID("5f0b7d52-8a51-4c2e-9a3e-6b1f2f0c7e11")


def record_id(workspace: str, source: str, plural: str, source_key: str) -> str:
    """The id a record gets in Twenty: the same for the same record of the same source in the
    same workspace on every attempt and every run, so a create sent twice cannot land twice.
    Junctions' source keys name the records they link (`note:1->contact:5`)."""
    return str(uuid.uuid5(RECORD_ID_NAMESPACE, "\x1f".join((workspace, source, plural, source_key))))


def payload_hash(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_object(
    client: TwentyClient,
    ledger: Ledger,
    run_key: str,
    plural: str,
    records: Sequence[LoadRecord],
    *,
    external_key_field: str | None,
    natural_keys: Sequence[str] = (),
    identity_fields: Sequence[str] = (),
    batch_size: int = MAX_BATCH,
    log: Callable[[str], None] | None = None,
    source: str | None = None,
) -> LoadOutcome:
    """Create or update `records` in Twenty object `plural`, recording every write.

    `external_key_field` is the (ideally unique) custom field carrying the source key;
    `natural_keys` are unique Twenty fields (e.g. `emails.primaryEmail`) used to adopt a
    record that already exists. `identity_fields` (e.g. `noteId` + `targetPersonId`) identify
    a record of an object that has no external key field (junctions), so an interrupted create
    is found rather than repeated when an intent of an older version holds no id. `source`
    (default: the run's source in the ledger) scopes the record ids. 4xx answers reject only
    the offending records; 429/5xx and timeouts are retried (creates through a read-back of
    their ids), and if retries run out the error propagates (rerun resumes).
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, got {batch_size}")
    _require_unique_source_keys(records)
    started = client.request_count
    if source is None:
        source = str((ledger.get_run(run_key) or {}).get("source", ""))
    load = _ObjectLoad(
        client,
        ledger,
        run_key,
        plural,
        external_key_field=external_key_field,
        natural_keys=tuple(natural_keys),
        identity_fields=tuple(identity_fields),
        batch_size=batch_size,
        log=log or (lambda _message: None),
        id_scope=(client.workspace, source),
    )
    load.run(records)
    load.outcome.requests = client.request_count - started
    return load.outcome


@dataclass(frozen=True)
class _Update:
    record: LoadRecord
    twenty_id: str
    before_image: dict[str, Any]  # the record as it was before this migration touched it
    # What the update clears: the mapping's empty fields that hold a value in Twenty, for a
    # record the ledger knows. One adopted from Twenty (a duplicate found) clears nothing.
    cleared: dict[str, Any] = field(default_factory=dict)

    @property
    def operation(self) -> Operation:
        return "restore" if self.before_image.get("deletedAt") else "update"

    @property
    def body(self) -> dict[str, Any]:
        return {**with_cleared(self.record.payload, self.cleared), "id": self.twenty_id}


class _ObjectLoad:
    def __init__(
        self,
        client: TwentyClient,
        ledger: Ledger,
        run_key: str,
        plural: str,
        *,
        external_key_field: str | None,
        natural_keys: tuple[str, ...],
        identity_fields: tuple[str, ...] = (),
        batch_size: int,
        log: Callable[[str], None],
        id_scope: tuple[str, str] = ("", ""),
    ) -> None:
        self.client = client
        self.id_scope = id_scope
        self.ledger = ledger
        self.run_key = run_key
        self.plural = plural
        self.external_key_field = external_key_field
        self.match_fields = [f for f in (external_key_field, *natural_keys) if f]
        self.identity_fields = identity_fields
        self.batch_size = batch_size
        self.log = log
        self.outcome = LoadOutcome()
        self.hashes: dict[str, str] = {}
        self.claimed: dict[str, str] = {}  # Twenty id -> source key this load wrote it for
        self.looked_up: set[str] = set()  # source keys already searched for in Twenty
        self.refusals: Counter[str] = Counter()  # Twenty's messages for rejected records
        self.ids: dict[str, str] = {}  # source key -> the id its create carries

    def run(self, records: Sequence[LoadRecord]) -> None:
        self.hashes = {r.source_key: payload_hash(r.payload) for r in records}
        records = self._reject_in_load_duplicates(records)
        known = self.ledger.known(self.plural, [r.source_key for r in records])
        self.ids = {
            r.source_key: (e.pending_twenty_id if (e := known.get(r.source_key)) and e.pending_operation == "create"
                           and e.pending_twenty_id else record_id(*self.id_scope, self.plural, r.source_key))
            for r in records
        }
        known, found_deleted = self._settle_interrupted_creates(records, known)

        unchanged: list[tuple[LoadRecord, str]] = []
        updates: list[tuple[LoadRecord, str, dict[str, Any] | None]] = []
        creates: list[LoadRecord] = []
        for record in records:
            entry = known.get(record.source_key)
            if entry is None or entry.twenty_id is None or entry.pending_operation == "create":
                creates.append(record)
            elif self._is_unchanged(record, entry) and record.source_key not in found_deleted:
                unchanged.append((record, entry.twenty_id))
            else:
                updates.append((record, entry.twenty_id, entry.pending_before_image))
        self.log(
            f"{self.plural}: {len(unchanged)} unchanged, {len(updates)} to update, "
            f"{len(creates)} to create"
        )
        self._record_unchanged(unchanged)
        vanished: list[LoadRecord] = []
        for batch in _chunks(updates, self.batch_size):
            vanished.extend(self._update_known(batch))
        for batch in _chunks(creates + vanished, self.batch_size):
            self._create(batch)
        self.log(
            f"{self.plural}: created {self.outcome.created}, updated {self.outcome.updated}, "
            f"unchanged {self.outcome.unchanged}, rejected {len(self.outcome.rejected)}"
        )

    # -- planning --------------------------------------------------------------------------

    def _is_unchanged(self, record: LoadRecord, entry: KnownWrite) -> bool:
        return not entry.pending and entry.payload_hash == self.hashes[record.source_key]

    def _reject_in_load_duplicates(self, records: Sequence[LoadRecord]) -> list[LoadRecord]:
        """Two source records claiming the same unique value can't both land; keep the first."""
        owners: dict[tuple[str, str], str] = {}
        kept: list[LoadRecord] = []
        clashes: dict[str, str] = {}
        for record in records:
            claims = [
                (path, value)
                for path in self.match_fields
                if (value := _lookup_value(value_at(record.payload, path))) is not None
            ]
            clash = next((claim for claim in claims if claim in owners), None)
            if clash:
                clashes[record.source_key] = (
                    f"A duplicate entry was detected: {clash[0]} {clash[1]!r} is also used by "
                    f"{owners[clash]} in this load"
                )
                continue
            owners.update({claim: record.source_key for claim in claims})
            kept.append(record)
        self._reject_with(clashes)
        return kept

    def _settle_interrupted_creates(
        self, records: Sequence[LoadRecord], known: dict[str, KnownWrite]
    ) -> tuple[dict[str, KnownWrite], set[str]]:
        """Creates whose outcome was never recorded may have landed: find them by external key."""
        interrupted = [
            r for r in records if (e := known.get(r.source_key)) and e.pending_operation == "create"
        ]
        if not interrupted:
            return known, set()
        with_ids = [r for r in interrupted if known[r.source_key].pending_twenty_id]
        landed, deleted_since = self._read_back(with_ids)
        interrupted = [r for r in interrupted if not known[r.source_key].pending_twenty_id]
        if not interrupted:
            return self._settled(with_ids, landed, known), deleted_since
        if not self.external_key_field and not self.identity_fields:
            self.log(
                f"{self.plural}: {len(interrupted)} creates were interrupted earlier; without an "
                "external key field only a unique natural key can stop them landing twice"
            )
            return self._settled(with_ids, landed, known), deleted_since
        self.looked_up.update(r.source_key for r in interrupted)
        if self.external_key_field:
            by_value = self._records_by_value(interrupted, self.external_key_field)
            found = self._find(self.external_key_field, by_value)
        else:
            by_value, found = self._find_by_identity(interrupted)
        landed.update({by_value[value].source_key: twenty["id"] for value, twenty in found.items()})
        deleted_since |= {
            by_value[value].source_key for value, twenty in found.items() if twenty.get("deletedAt")
        }
        return self._settled([*with_ids, *interrupted], landed, known), deleted_since

    def _read_back(self, records: Sequence[LoadRecord]) -> tuple[dict[str, str], set[str]]:
        """Which of these creates (with ids chosen before they were sent) landed: source key ->
        id, and the keys of those soft-deleted since."""
        if not records:
            return {}, set()
        by_id = {self.ids[r.source_key]: r.source_key for r in records}
        found = self.client.read_ids(self.plural, by_id).values()
        landed = {by_id[t["id"]]: t["id"] for t in found if t["id"] in by_id}
        return landed, {by_id[t["id"]] for t in found if t["id"] in by_id and t.get("deletedAt")}

    def _settled(
        self, interrupted: Sequence[LoadRecord], landed: dict[str, str], known: dict[str, KnownWrite]
    ) -> dict[str, KnownWrite]:
        """Mark the interrupted creates that landed done (in the run that sent them)."""
        self.ledger.resolve_pending(self.plural, landed)
        self.log(
            f"{self.plural}: {len(interrupted)} interrupted creates checked, "
            f"{len(landed)} had landed"
        )
        return {**known, **self.ledger.known(self.plural, list(landed))}

    # -- updates ---------------------------------------------------------------------------

    def _record_unchanged(self, unchanged: list[tuple[LoadRecord, str]]) -> None:
        rows = [
            WriteRow(r.source_key, "unchanged", twenty_id, self.hashes[r.source_key])
            for r, twenty_id in unchanged
        ]
        self.ledger.record_outcomes(self.run_key, self.plural, rows)
        self.claimed.update({twenty_id: r.source_key for r, twenty_id in unchanged})
        self.outcome.unchanged += len(rows)

    def _update_known(
        self, batch: list[tuple[LoadRecord, str, dict[str, Any] | None]]
    ) -> list[LoadRecord]:
        """Update records the ledger has ids for; returns those that no longer exist."""
        current = self._read_current([twenty_id for _, twenty_id, _ in batch])
        vanished = [record for record, twenty_id, _ in batch if twenty_id not in current]
        if vanished:
            self.log(f"{self.plural}: {len(vanished)} records were destroyed in Twenty; recreating")
        self._send_updates(
            [
                _Update(record, twenty_id, kept_before_image or current[twenty_id],
                        _holding_values(record.cleared, current[twenty_id]))
                for record, twenty_id, kept_before_image in batch
                if twenty_id in current
            ]
        )
        return vanished

    def _read_current(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self.client.read_ids(self.plural, ids)

    def _send_updates(self, updates: list[_Update]) -> None:
        if not updates:
            return
        self.ledger.record_intent(self.run_key, self.plural, [self._row(u) for u in updates])
        self._upsert(updates)

    def _upsert(self, updates: list[_Update]) -> None:
        try:
            written = self.client.upsert_batch(
                self.plural, [u.body for u in updates]
            )
        except TwentyRequestError as error:
            if not error.is_record_error:
                raise
            if len(updates) == 1:
                self._reject([updates[0].record], error, twenty_id=updates[0].twenty_id)
            else:
                middle = len(updates) // 2
                self._upsert(updates[:middle])
                self._upsert(updates[middle:])
            return
        if [w["id"] for w in written] != [u.twenty_id for u in updates]:
            raise RuntimeError(
                f"Twenty answered a batch upsert of {self.plural} with other records than sent"
            )
        still_deleted = [w["id"] for w in written if w.get("deletedAt")]
        if still_deleted:
            self.client.restore(self.plural, still_deleted)
        self.ledger.record_outcomes(self.run_key, self.plural, [self._row(u) for u in updates])
        self.claimed.update({u.twenty_id: u.record.source_key for u in updates})
        self.outcome.updated += len(updates)

    def _row(self, update: _Update) -> WriteRow:
        key = update.record.source_key
        return WriteRow(key, update.operation, update.twenty_id, self.hashes[key], update.before_image,
                        fields=tuple(f for f in update.body if f != "id"))

    # -- creates ---------------------------------------------------------------------------

    def _create(self, batch: list[LoadRecord]) -> None:
        self.ledger.record_intent(
            self.run_key,
            self.plural,
            [WriteRow(r.source_key, "create", self.ids[r.source_key], self.hashes[r.source_key]) for r in batch],
        )
        self._send_creates(batch)

    def _send_creates(self, records: list[LoadRecord]) -> None:
        try:
            created = self.client.create_batch(
                self.plural, [{**r.payload, "id": self.ids[r.source_key]} for r in records]
            )
        except TwentyRequestError as error:
            if not error.is_record_error:
                raise
            self._recover_failed_creates(records, error)
            return
        if [c["id"] for c in created] != [self.ids[r.source_key] for r in records]:
            raise RuntimeError(
                f"Twenty answered a batch create of {self.plural} with other records than sent"
            )
        rows = [
            WriteRow(r.source_key, "create", c["id"], self.hashes[r.source_key])
            for r, c in zip(records, created)
        ]
        self.ledger.record_outcomes(self.run_key, self.plural, rows)
        self.claimed.update({c["id"]: r.source_key for r, c in zip(records, created)})
        self.outcome.created += len(rows)

    def _recover_failed_creates(self, records: list[LoadRecord], error: TwentyRequestError) -> None:
        """Adopt records that already exist (duplicates); bisect to isolate the rest."""
        not_searched = [r for r in records if r.source_key not in self.looked_up]
        if error.is_duplicate and not_searched:
            adopted = self._match_existing(not_searched)
            if adopted:
                self._send_updates(adopted)
                adopted_keys = {u.record.source_key for u in adopted}
                rest = [r for r in records if r.source_key not in adopted_keys]
                if rest:
                    self._send_creates(rest)
                return
        if len(records) == 1:
            self._reject(records, error)
            return
        middle = len(records) // 2
        self._send_creates(records[:middle])
        self._send_creates(records[middle:])

    def _match_existing(self, records: list[LoadRecord]) -> list[_Update]:
        """Find records already in Twenty (soft-deleted included) by external then natural keys."""
        self.looked_up.update(r.source_key for r in records)
        matches: dict[str, dict[str, Any]] = {}
        if not self.external_key_field:
            # A record holding our id that no intent of ours sent (a ledger lost or replaced) was
            # not created by this load: adopted like any other match. (With an external key field
            # that record is found by its key.)
            by_id = {self.ids[r.source_key]: r for r in records}
            matches = {by_id[value].source_key: twenty for value, twenty in self._find("id", by_id).items()}
        for match_field in self.match_fields:
            remaining = [r for r in records if r.source_key not in matches]
            if not remaining:
                break
            by_value = self._records_by_value(remaining, match_field)
            for value, twenty in self._find(match_field, by_value).items():
                matches[by_value[value].source_key] = twenty
        adopted: list[_Update] = []
        for record in records:
            twenty = matches.get(record.source_key)
            if twenty is None:
                continue
            owner = self.claimed.get(twenty["id"])
            if owner is not None and owner != record.source_key:
                self.log(
                    f"{self.plural}: {record.source_key} matches record {twenty['id']}, which this "
                    f"load already wrote for {owner}; not merging them"
                )
                continue
            adopted.append(_Update(record, twenty["id"], twenty))
        self.log(f"{self.plural}: duplicate reported; adopted {len(adopted)} existing records")
        return adopted

    def _find_by_identity(
        self, records: Sequence[LoadRecord]
    ) -> tuple[dict[str, LoadRecord], dict[str, dict[str, Any]]]:
        """Find records by all `identity_fields` at once: bulk search on the first, then
        compare the rest (e.g. noteTargets by noteId, then targetPersonId)."""
        def identity(data: Mapping[str, Any]) -> str:
            return "\x1f".join(str(value_at(data, f)) for f in self.identity_fields)

        by_identity = {identity(r.payload): r for r in records}
        first = self._records_by_value(records, self.identity_fields[0])
        found: dict[str, dict[str, Any]] = {}
        for twenty in self.client.find_by_values(self.plural, self.identity_fields[0], list(first)):
            if identity(twenty) in by_identity:
                found.setdefault(identity(twenty), twenty)
        return by_identity, found

    # -- shared ----------------------------------------------------------------------------

    def _records_by_value(self, records: Iterable[LoadRecord], path: str) -> dict[str, LoadRecord]:
        by_value: dict[str, LoadRecord] = {}
        for record in records:
            value = _lookup_value(value_at(record.payload, path))
            if value is not None:
                by_value[value] = record
        return by_value

    def _find(self, path: str, values: Iterable[str]) -> dict[str, dict[str, Any]]:
        """value -> Twenty record, active records first, then soft-deleted ones for the rest."""
        wanted = list(values)
        exact = set(wanted)
        folded = {v.casefold(): v for v in wanted}
        found: dict[str, dict[str, Any]] = {}

        def collect(twenty_records: Iterable[dict[str, Any]]) -> None:
            for twenty in twenty_records:
                value = _lookup_value(value_at(twenty, path))
                if value is None:
                    continue
                # Twenty may normalise case (emails); map back to the value we asked for.
                asked = value if value in exact else folded.get(value.casefold())
                if asked is not None:
                    found.setdefault(asked, twenty)

        collect(self.client.find_by_values(self.plural, path, wanted))
        missing = [v for v in wanted if v not in found]
        if missing:
            collect(self.client.find_by_values(self.plural, path, missing, only_deleted=True))
        return found

    def _reject(
        self, records: list[LoadRecord], error: TwentyRequestError, twenty_id: str | None = None
    ) -> None:
        message = "; ".join(error.messages) or str(error)
        self._reject_with({r.source_key: message for r in records}, twenty_id)
        self.refusals[message] += len(records)
        landed = self.outcome.created + self.outcome.updated + self.outcome.unchanged
        if landed == 0 and sum(self.refusals.values()) >= FAIL_FAST_AFTER:
            reason, count = self.refusals.most_common(1)[0]
            raise LoadAborted(
                f"Twenty refused the first {sum(self.refusals.values())} {self.plural} records "
                f"and accepted none ({count} with: {reason}). This looks like a mapping or "
                "schema problem rather than bad data: fix it and rerun."
            )

    def _reject_with(self, messages: Mapping[str, str], twenty_id: str | None = None) -> None:
        """Record `source_key -> message` rejections."""
        rows = [
            WriteRow(key, "rejected", twenty_id, self.hashes[key], message=message)
            for key, message in messages.items()
        ]
        self.ledger.record_outcomes(self.run_key, self.plural, rows)
        for key, message in messages.items():
            if len(self.outcome.rejected) < LOGGED_REJECTIONS:
                self.log(f"{self.plural}: rejected {key}: {message}")
            self.outcome.rejected.append((key, message))


def _require_unique_source_keys(records: Sequence[LoadRecord]) -> None:
    repeated = [key for key, n in Counter(r.source_key for r in records).items() if n > 1]
    if repeated:
        raise ValueError(f"source keys must be unique within a load; repeated: {repeated[:5]}")


def _holding_values(cleared: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `cleared` that would change `current` (fields not empty in Twenty)."""
    def empty(value: Any) -> bool:
        if isinstance(value, Mapping):
            return all(empty(v) for v in value.values())
        return value is None or value == "" or value == []

    out: dict[str, Any] = {}
    for name, value in cleared.items():
        now = current.get(name)
        whole = EMPTY_COMPOSITES.get(name) == value  # a composite cleared as a whole
        if isinstance(value, dict) and not whole and isinstance(now, Mapping):
            subfields = {k: v for k, v in value.items() if not empty(now.get(k))}
            if subfields:
                out[name] = subfields
        elif not empty(now):
            out[name] = value
    return out


def _lookup_value(value: Any) -> str | None:
    """A scalar usable in an `[in]` lookup, as text; None for blanks and structures."""
    if value is None or isinstance(value, (bool, Mapping, list)) or value == "":
        return None
    return str(value)


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
