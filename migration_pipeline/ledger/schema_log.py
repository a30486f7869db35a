"""The ledger's record of schema changes: what each run's schema pre-creation asked Twenty to
create, written as it happens (intent, then outcome), so a prepare that fails half-way still
leaves in the ledger everything it made, and a rollback removes exactly that."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import sqlalchemy as sa

from migration_pipeline.ledger.tables import rollbacks, schema_changes, schema_writes

SchemaOperation = Literal["create", "add_option", "use"]
SchemaKind = Literal["object", "field", "option"]
_LEGACY_GROUPS: dict[str, SchemaOperation] = {
    "created_objects": "create", "created_fields": "create", "added_options": "add_option",
}


class SchemaChangeLog:
    """Mixed into `Ledger`: needs its `_begin()` and `_connect()`."""

    def _begin(self) -> Any: ...  # pragma: no cover (provided by Ledger)
    def _connect(self) -> Any: ...  # pragma: no cover

    def schema_journal(self, run_key: str) -> SchemaJournal:
        """What a run's schema pre-creation writes its intents and outcomes to."""
        return SchemaJournal(self, run_key)

    def record_schema_intent(
        self, run_key: str, operation: SchemaOperation, kind: SchemaKind, object: str, name: str,
        field: str | None = None, metadata_id: str | None = None,
    ) -> int:
        """Before a metadata request (`use` rows: done at once). Returns the row's id."""
        with self._begin() as conn:
            inserted = conn.execute(sa.insert(schema_writes).values(
                run_key=run_key, operation=operation, kind=kind, object=object, name=name, field=field,
                metadata_id=metadata_id, status="done" if operation == "use" else "pending", recorded_at=_now(),
            ))
            return int(inserted.inserted_primary_key[0])

    def record_schema_outcome(self, intent_id: int, metadata_id: str | None = None, failure: str | None = None) -> None:
        values: dict[str, Any] = {"status": "failed" if failure else "done", "message": failure, "recorded_at": _now()}
        if metadata_id is not None:
            values["metadata_id"] = metadata_id
        with self._begin() as conn:
            conn.execute(sa.update(schema_writes).where(schema_writes.c.id == intent_id).values(**values))

    def schema_created(self, run_key: str | None = None) -> list[dict[str, Any]]:
        """What runs of ours created (or may have: intents without an outcome) and no rollback
        has removed yet, oldest first."""
        query = sa.select(schema_writes).where(
            schema_writes.c.operation.in_(("create", "add_option")),
            schema_writes.c.status.in_(("pending", "done")),
            schema_writes.c.dropped_by.is_(None),
        ).order_by(schema_writes.c.id)
        if run_key is not None:
            query = query.where(schema_writes.c.run_key == run_key)
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def schema_used(self, run_key: str) -> list[dict[str, Any]]:
        """What `run_key` relied on that an earlier run of ours had created."""
        query = sa.select(schema_writes).where(
            schema_writes.c.run_key == run_key, schema_writes.c.operation == "use").order_by(schema_writes.c.id)
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def mark_schema_dropped(self, rollback_id: int, schema_write_ids: list[int]) -> None:
        """The rollback removed what these schema_writes rows created."""
        with self._begin() as conn:
            if schema_write_ids:
                conn.execute(sa.update(schema_writes).where(schema_writes.c.id.in_(schema_write_ids))
                             .values(dropped_by=rollback_id))
            conn.execute(sa.update(rollbacks).where(rollbacks.c.id == rollback_id).values(schema_dropped_at=_now()))


@dataclass(frozen=True)
class SchemaJournal:
    """One run's view of the schema log, as `ensure_schema` uses it."""

    log: SchemaChangeLog
    run_key: str

    def intent(self, operation: SchemaOperation, kind: SchemaKind, object: str, name: str,
               field: str | None = None, metadata_id: str | None = None) -> int:
        return self.log.record_schema_intent(self.run_key, operation, kind, object, name, field, metadata_id)

    def outcome(self, intent_id: int, metadata_id: str | None = None, failure: str | None = None) -> None:
        self.log.record_schema_outcome(intent_id, metadata_id, failure)

    def ours(self) -> list[dict[str, Any]]:
        """Everything any run of ours created and no rollback removed (this run's earlier attempts too)."""
        return self.log.schema_created()


def upgrade_legacy_schema_changes(conn: sa.Connection) -> None:
    """Turn the per-run summaries older versions wrote (schema_changes) into schema_writes rows,
    keeping which rollback already dropped them, then remove them: one format from here on."""
    drops = conn.execute(sa.select(rollbacks.c.id, rollbacks.c.run_key, rollbacks.c.schema_through_id)
                         .where(rollbacks.c.schema_through_id.is_not(None)).order_by(rollbacks.c.id)).all()
    for row in conn.execute(sa.select(schema_changes).order_by(schema_changes.c.id)).all():
        dropped_by = next((d.id for d in drops if d.run_key == row.run_key and d.schema_through_id >= row.id), None)
        items = [(operation, item) for group, operation in (*_LEGACY_GROUPS.items(), ("already_present", "use"))
                 for item in row.report.get(group, ())]
        for operation, item in items:
            conn.execute(sa.insert(schema_writes).values(
                run_key=row.run_key, operation=operation, kind=item["kind"], object=item["object"],
                name=item["name"], field=item.get("field"), metadata_id=item["metadata_id"], status="done",
                recorded_at=row.recorded_at, dropped_by=dropped_by if operation != "use" else None,
            ))
        conn.execute(sa.delete(schema_changes).where(schema_changes.c.id == row.id))


def _now() -> datetime:
    return datetime.now(timezone.utc)
