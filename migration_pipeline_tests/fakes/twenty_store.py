"""In-memory workspace of the fake Twenty server: metadata, record tables, unique indexes, files.

Every record operation is atomic: changes go through a journal that is rolled back when any
record of the call fails (a REST batch behaves like one INSERT statement).
Callers hold the FakeTwenty lock; nothing here is thread-safe on its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from migration_pipeline_tests.fakes.twenty_errors import bad_request, duplicate_entry, not_found
from migration_pipeline_tests.fakes.twenty_filters import OrderTerm, SortedView, compile_filter
from migration_pipeline_tests.fakes.twenty_schema import (
    COMPOSITES,
    UNIQUE_SUBFIELD,
    FieldMeta,
    ObjectMeta,
    empty_value,
    now_iso,
    standard_objects,
)
from migration_pipeline_tests.fakes.twenty_values import is_uuid, normalise_value

Row = dict[str, Any]
Journal = list[Callable[[], None]]
SYSTEM_COLUMNS = ("id", "createdAt", "updatedAt", "deletedAt", "position", "createdBy", "updatedBy")
SYSTEM_ACTOR = {"source": "MANUAL", "workspaceMemberId": None, "name": "System", "context": None}
SEED_ACTOR = {**SYSTEM_ACTOR, "source": "SYSTEM"}  # the sample records of a new workspace
_CACHED_VIEWS = 32


def unique_key(field: FieldMeta, value: Any) -> Any:
    """The value a unique index stores for `value`; None for empty values, which never collide."""
    if field.type in UNIQUE_SUBFIELD:
        value = value.get(UNIQUE_SUBFIELD[field.type]) if isinstance(value, dict) else None
    elif field.type in COMPOSITES:
        value = json.dumps(value, sort_keys=True) if value != empty_value(field) else None
    elif isinstance(value, list):
        value = tuple(value)
    return None if value in (None, "") else value


def foreign_key_name(obj: ObjectMeta, column: str) -> str:
    return "FK_" + hashlib.sha1(f"{obj.table_name}.{column}".encode()).hexdigest()[:27]


class Workspace:
    def __init__(self, actor_name: str) -> None:
        self.actor_name = actor_name
        self.objects: dict[str, ObjectMeta] = standard_objects()
        self.tables: dict[str, dict[str, Row]] = {object_id: {} for object_id in self.objects}
        self.files: dict[str, bytes] = {}
        self.file_info: dict[str, dict[str, Any]] = {}
        self._unique: dict[str, dict[str, dict[Any, str]]] = {}
        self._position_floor: dict[str, float] = {}
        # Sorted list views are cached per (object, filter, order) until the object's rows change.
        self._versions: defaultdict[str, int] = defaultdict(int)
        self._views: OrderedDict[tuple[Any, ...], tuple[int, SortedView]] = OrderedDict()
        for obj in self.objects.values():
            self.rebuild_unique_index(obj)

    # ---- metadata lookups ----------------------------------------------------------------

    def object_by_plural(self, plural: str) -> ObjectMeta | None:
        return next((o for o in self.objects.values() if o.name_plural == plural and o.is_active), None)

    def object_by_singular(self, singular: str) -> ObjectMeta:
        return next(o for o in self.objects.values() if o.name_singular == singular)

    def find_field(self, field_id: str) -> tuple[ObjectMeta, FieldMeta] | None:
        for obj in self.objects.values():
            for field in obj.fields.values():
                if field.id == field_id:
                    return obj, field
        return None

    def references_to(self, target: ObjectMeta) -> list[tuple[ObjectMeta, FieldMeta]]:
        """MANY_TO_ONE fields (active or not) whose FK points at `target`."""
        return [
            (obj, field) for obj in self.objects.values() for field in obj.fields.values()
            if field.relation_type == "MANY_TO_ONE" and field.relation_target_object_id == target.id
        ]

    def rebuild_unique_index(self, obj: ObjectMeta) -> None:
        """Index every active unique field; ApiError(400) duplicate if existing rows collide."""
        index: dict[str, dict[Any, str]] = {}
        for column, field in obj.columns().items():
            if not field.is_unique:
                continue
            index[column] = {}
            for row in self.tables[obj.id].values():
                key = unique_key(field, row.get(column))
                if key is not None:
                    if key in index[column]:
                        raise duplicate_entry()
                    index[column][key] = row["id"]
        self._unique[obj.id] = index
        self._versions[obj.id] += 1

    # ---- reads ---------------------------------------------------------------------------

    def render(self, obj: ObjectMeta, row: Row) -> Row:
        return {column: copy.deepcopy(row.get(column)) for column in obj.columns()}

    def select(self, obj: ObjectMeta, filter_text: str | None, *, with_deleted: bool = False) -> list[Row]:
        """Rows matching `filter_text`; soft-deleted rows only when asked or when the filter mentions deletedAt."""
        # `filter=` (empty) is parsed, and refused, like any other filter.
        predicate, mentions_deleted = compile_filter(obj, filter_text) if filter_text is not None else (None, False)
        include_deleted = with_deleted or mentions_deleted
        return [
            row for row in self.tables[obj.id].values()
            if (include_deleted or row["deletedAt"] is None) and (predicate is None or predicate(row))
        ]

    def sorted_view(self, obj: ObjectMeta, filter_text: str | None, terms: list[OrderTerm]) -> SortedView:
        cache_key = (obj.id, filter_text or "", tuple(terms))
        cached = self._views.get(cache_key)
        if cached is not None and cached[0] == self._versions[obj.id]:
            self._views.move_to_end(cache_key)
            return cached[1]
        view = SortedView(terms, self.select(obj, filter_text))
        self._views[cache_key] = (self._versions[obj.id], view)
        if len(self._views) > _CACHED_VIEWS:
            self._views.popitem(last=False)
        return view

    def get_any(self, obj: ObjectMeta, record_id: str) -> Row:
        """The record, soft-deleted or not; 404 once destroyed."""
        row = self.tables[obj.id].get(record_id)
        if row is None:
            raise not_found()
        return row

    def get_active(self, obj: ObjectMeta, record_id: str) -> Row:
        row = self.tables[obj.id].get(record_id)
        if row is None or row["deletedAt"] is not None:
            raise not_found()
        return row

    # ---- writes --------------------------------------------------------------------------

    def create(self, obj: ObjectMeta, inputs: list[Row], *, upsert: bool) -> list[Row]:
        with self._transaction() as journal:
            rows = []
            for data in inputs:
                if not isinstance(data, dict):
                    raise bad_request(f"Invalid record {json.dumps(data)}: expected a JSON object")
                existing = self._upsert_match(obj, data) if upsert else None
                if existing is not None and any(existing["id"] == row["id"] for row in rows):
                    raise duplicate_entry()  # an upsert matches rows from before the batch, not within it
                if existing is None:
                    rows.append(self._insert(obj, data, journal))
                else:
                    rows.append(self._update(obj, existing, data, journal, undelete=True))
            return rows

    def update(self, obj: ObjectMeta, rows: list[Row], data: Row) -> list[Row]:
        with self._transaction() as journal:
            return [self._update(obj, row, data, journal) for row in rows]

    def soft_delete(self, obj: ObjectMeta, rows: list[Row]) -> list[Row]:
        with self._transaction() as journal:
            moment = now_iso()
            return [self._put(obj, {**row, "deletedAt": moment, "updatedAt": moment}, journal) for row in rows]

    def restore(self, obj: ObjectMeta, rows: list[Row]) -> list[Row]:
        with self._transaction() as journal:
            return [self._put(obj, {**row, "deletedAt": None, "updatedAt": now_iso()}, journal) for row in rows]

    def destroy(self, obj: ObjectMeta, record_ids: list[str]) -> None:
        with self._transaction() as journal:
            for record_id in record_ids:
                self._destroy(obj, record_id, journal)

    def insert_system_record(self, obj: ObjectMeta, data: Row, actor: Row = SYSTEM_ACTOR) -> Row:
        """A record created by the workspace itself (a workspace member, a sample record), not by the API key."""
        # Twenty's seed writes phones straight to the database, past the API's phone parsing: its
        # sample people carry national numbers with no country code, which the API would refuse.
        seeded = {name: data[name] for name in ("phones",) if name in data}
        with self._transaction() as journal:
            row = self._insert(obj, {k: v for k, v in data.items() if k not in seeded}, journal)
            row = self._put(obj, {**row, **seeded, "createdBy": dict(actor), "updatedBy": dict(actor)}, journal)
            return row

    # ---- internals -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Journal]:
        journal: Journal = []
        try:
            yield journal
        except BaseException:
            for undo in reversed(journal):
                undo()
            raise

    def _actor(self, obj: ObjectMeta, sent: Any) -> Row:
        actor = {"source": "API", "workspaceMemberId": None, "name": self.actor_name, "context": {}}
        if sent is None:
            return actor
        return normalise_value(obj.name_singular, obj.fields["createdBy"], sent, actor, self.file_info.get)

    def _check_known_columns(self, obj: ObjectMeta, data: Row, columns: dict[str, FieldMeta]) -> None:
        for key in data:
            if key not in columns:
                raise bad_request(f"Object {obj.name_singular} doesn't have any \"{key}\" field.")

    def _normalised(self, obj: ObjectMeta, field: FieldMeta, value: Any, current: Any) -> Any:
        return normalise_value(obj.name_singular, field, value, current, self.file_info.get)

    def _insert(self, obj: ObjectMeta, data: Row, journal: Journal) -> Row:
        columns = obj.columns()
        self._check_known_columns(obj, data, columns)
        record_id = data.get("id") or str(uuid.uuid4())
        if not is_uuid(record_id):
            raise bad_request(f"Invalid UUID value '{record_id}' for field \"id\"")
        moment = now_iso()
        row: Row = {}
        for column, field in columns.items():
            if column in SYSTEM_COLUMNS:
                continue
            row[column] = self._normalised(obj, field, data[column], None) if column in data else empty_value(field)
        row["id"] = record_id
        row["createdAt"] = self._normalised(obj, columns["createdAt"], data["createdAt"], None) \
            if data.get("createdAt") else moment
        row["updatedAt"] = self._normalised(obj, columns["updatedAt"], data["updatedAt"], None) \
            if data.get("updatedAt") else moment
        row["deletedAt"] = self._normalised(obj, columns["deletedAt"], data.get("deletedAt"), None)
        row["position"] = self._normalised(obj, columns["position"], data["position"], None) \
            if data.get("position") is not None else self._next_position(obj)
        row["createdBy"] = self._actor(obj, data.get("createdBy"))
        row["updatedBy"] = self._actor(obj, data.get("updatedBy")) if "updatedBy" in data else dict(row["createdBy"])
        self._check_not_null(obj, row, columns)
        if record_id in self.tables[obj.id]:
            raise duplicate_entry()
        self._check_foreign_keys(obj, row, columns)
        return self._put(obj, row, journal)

    def _update(self, obj: ObjectMeta, old: Row, data: Row, journal: Journal, *, undelete: bool = False) -> Row:
        columns = obj.columns()
        self._check_known_columns(obj, data, columns)
        row = dict(old)
        # Assumption: an `id` in an update body never changes the record id.
        for column, value in data.items():
            if column not in ("id", "createdBy", "updatedBy"):
                row[column] = self._normalised(obj, columns[column], value, old.get(column))
        if "updatedAt" not in data:
            row["updatedAt"] = now_iso()
        row["updatedBy"] = self._actor(obj, data.get("updatedBy"))
        if undelete:
            row["deletedAt"] = None
        self._check_foreign_keys(obj, row, {c: columns[c] for c in data if c in columns})
        return self._put(obj, row, journal)

    def _upsert_match(self, obj: ObjectMeta, data: Row) -> Row | None:
        """Existing row (soft-deleted included) sharing the sent id, else any sent unique value."""
        table = self.tables[obj.id]
        if data.get("id") is not None:
            # Assumption: with an explicit id only the id is matched; a clash on another unique field is a duplicate.
            return table.get(data["id"])
        columns = obj.columns()
        matches = set()
        for column, index in self._unique[obj.id].items():
            if column in data and data[column] is not None:
                field = columns[column]
                key = unique_key(field, self._normalised(obj, field, data[column], None))
                if key is not None and key in index:
                    matches.add(index[key])
        if len(matches) > 1:
            raise duplicate_entry()
        return table[matches.pop()] if matches else None

    def _check_not_null(self, obj: ObjectMeta, row: Row, columns: dict[str, FieldMeta]) -> None:
        for column, field in columns.items():
            if not field.is_nullable and row.get(column) is None:
                raise bad_request(
                    f"null value in column \"{column}\" of relation \"{obj.table_name}\" violates not-null constraint"
                )

    def _check_foreign_keys(self, obj: ObjectMeta, row: Row, columns: dict[str, FieldMeta]) -> None:
        for column, field in columns.items():
            value = row.get(column)
            if field.type != "RELATION" or value is None:
                continue
            if value not in self.tables[field.relation_target_object_id]:
                raise bad_request(f"insert or update on table \"{obj.table_name}\" violates foreign key "
                                  f"constraint \"{foreign_key_name(obj, column)}\"")

    def _next_position(self, obj: ObjectMeta) -> float:
        floor = self._position_floor.get(obj.id)
        return 0 if floor is None else floor - 1

    def _put(self, obj: ObjectMeta, row: Row, journal: Journal) -> Row:
        """Insert or replace `row` after checking unique indexes; journal the previous state."""
        columns = obj.columns()
        index = self._unique[obj.id]
        for column, owners in index.items():
            key = unique_key(columns[column], row.get(column))
            if key is not None and owners.get(key, row["id"]) != row["id"]:
                raise duplicate_entry()
        table = self.tables[obj.id]
        previous = table.get(row["id"])
        self._replace(obj, row["id"], previous, row)
        journal.append(lambda: self._replace(obj, row["id"], row, previous))
        position = row.get("position")
        if isinstance(position, int | float):
            self._position_floor[obj.id] = min(position, self._position_floor.get(obj.id, position))
        return row

    def _replace(self, obj: ObjectMeta, record_id: str, old: Row | None, new: Row | None) -> None:
        self._versions[obj.id] += 1
        columns = obj.columns()
        index = self._unique[obj.id]
        for column, owners in index.items():
            old_key = unique_key(columns[column], old.get(column)) if old is not None else None
            if old_key is not None and owners.get(old_key) == record_id:
                del owners[old_key]
            if new is not None and (key := unique_key(columns[column], new.get(column))) is not None:
                owners[key] = record_id
        if new is None:
            self.tables[obj.id].pop(record_id, None)
        else:
            self.tables[obj.id][record_id] = new

    def _delete_files(self, obj: ObjectMeta, row: Row, journal: Journal) -> None:
        """Destroying a record deletes the files its FILES fields name (the real server does it in a job)."""
        for column, field in obj.columns().items():
            if field.type != "FILES":
                continue
            for item in row.get(column) or []:
                file_id = item.get("fileId") if isinstance(item, dict) else None
                if file_id in self.files:
                    kept = (self.files.pop(file_id), self.file_info.pop(file_id))
                    journal.append(lambda f=file_id, k=kept: self._put_file(f, *k))

    def _put_file(self, file_id: str, content: bytes, info: dict[str, Any]) -> None:
        self.files[file_id], self.file_info[file_id] = content, info

    def _destroy(self, obj: ObjectMeta, record_id: str, journal: Journal) -> None:
        row = self.tables[obj.id].get(record_id)
        if row is None:
            raise not_found()
        self._replace(obj, record_id, row, None)
        journal.append(lambda: self._replace(obj, record_id, None, row))
        self._delete_files(obj, row, journal)
        for source, field in self.references_to(obj):
            table = self.tables[source.id]
            for referencing_id in [r["id"] for r in table.values() if r.get(field.column) == record_id]:
                if referencing_id not in table:
                    continue  # already removed by a cascade of an earlier reference
                if (field.settings or {}).get("onDelete") == "CASCADE":
                    self._destroy(source, referencing_id, journal)
                else:
                    self._put(source, {**table[referencing_id], field.column: None}, journal)
