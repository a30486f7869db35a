"""The migration ledger: which source record became which Twenty record, every write made
(with the before-image needed to undo it), and the intents that make a crashed load safe to
rerun.

SQLAlchemy Core. A SQLite file by default; PostgreSQL when given a URL such as
`postgresql+psycopg2://user@host/db`. Tables are created on first use. Every method works
on whole batches (`IN` lists, executemany), so a million rows never means a million
round trips.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa

from migration_pipeline.ledger.tables import approvals, metadata, runs, schema_changes, writes

DEFAULT_URL = "sqlite:///migration_ledger.sqlite"

Operation = Literal["create", "update", "restore", "unchanged", "rejected"]
SUCCESSFUL: tuple[str, ...] = ("create", "update", "restore", "unchanged")

T = TypeVar("T")


@dataclass(frozen=True)
class WriteRow:
    """One write to one Twenty record, as an intent (pending) or an outcome (done)."""

    source_key: str
    operation: Operation
    twenty_id: str | None = None
    payload_hash: str | None = None
    before_image: Mapping[str, Any] | None = None
    message: str | None = None


@dataclass(frozen=True)
class KnownWrite:
    """What the ledger knows about one source record, across all runs."""

    twenty_id: str | None  # from the last successful write
    payload_hash: str | None  # of that write
    pending: bool  # an intent was written but its outcome never recorded (a crash)
    pending_operation: str | None = None
    pending_before_image: dict[str, Any] | None = None  # kept so a rerun can't lose it


class Ledger:
    def __init__(self, url: str = DEFAULT_URL) -> None:
        self._engine = _create_engine(url)
        self._in_chunk = 900 if self._engine.dialect.name == "sqlite" else 10_000
        self._ready = False
        self._ready_lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> sa.Engine:
        """For ad-hoc reporting queries; writes go through the methods below."""
        self._ensure_tables()
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------------

    def start_run(
        self, run_key: str, source: str, kind: str, params: Mapping[str, Any] | None = None
    ) -> None:
        """Open a run, or reopen it when a run with this key is retried."""
        now = _now()
        with self._begin() as conn:
            exists = conn.execute(
                sa.select(runs.c.run_key).where(runs.c.run_key == run_key)
            ).first()
            if exists:
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.run_key == run_key)
                    .values(status="running", finished_at=None)
                )
            else:
                conn.execute(
                    sa.insert(runs).values(
                        run_key=run_key,
                        source=source,
                        kind=kind,
                        params=dict(params or {}),
                        started_at=now,
                        status="running",
                    )
                )

    def finish_run(self, run_key: str, status: str) -> None:
        with self._begin() as conn:
            updated = conn.execute(
                sa.update(runs)
                .where(runs.c.run_key == run_key)
                .values(status=status, finished_at=_now())
            )
            if updated.rowcount == 0:
                raise KeyError(f"no run {run_key!r} in the ledger; call start_run first")

    def get_run(self, run_key: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_key == run_key)).first()
        return dict(row._mapping) if row else None

    # -- schema changes and approvals -------------------------------------------------------

    def record_schema_changes(self, run_key: str, report: Mapping[str, Any]) -> None:
        """Keep what a run's schema pre-creation created (SchemaReport.to_dict())."""
        with self._begin() as conn:
            conn.execute(sa.insert(schema_changes).values(run_key=run_key, report=dict(report), recorded_at=_now()))

    def schema_changes(self, run_key: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(schema_changes.c.report).where(schema_changes.c.run_key == run_key).order_by(schema_changes.c.id)
            ).all()
        return [row.report for row in rows]

    def approve(self, run_key: str, approved_by: str, note: str = "") -> None:
        """Record that a person approved a sample run (idempotent: the latest approval wins)."""
        run = self.get_run(run_key)
        if run is None:
            raise KeyError(f"no run {run_key!r} in the ledger: run the sample first")
        with self._begin() as conn:
            conn.execute(sa.delete(approvals).where(approvals.c.run_key == run_key))
            conn.execute(sa.insert(approvals).values(
                run_key=run_key, source=run["source"], approved_by=approved_by, note=note, approved_at=_now()
            ))

    def approved_samples(self, source: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(approvals).where(approvals.c.source == source).order_by(approvals.c.approved_at)
            ).all()
        return [dict(row._mapping) for row in rows]

    # -- writes ----------------------------------------------------------------------------

    def record_intent(
        self, run_key: str, object: str, intents: Sequence[str | WriteRow]
    ) -> None:
        """Write pending rows before the request that may create or change these records.

        A plain source key means "about to create". Older pending rows for the same records
        (from a crashed attempt the caller has since settled) are superseded.
        """
        rows = [WriteRow(i, "create") if isinstance(i, str) else i for i in intents]
        if not rows:
            return
        now = _now()
        with self._begin() as conn:
            for chunk in _chunks([r.source_key for r in rows], self._in_chunk):
                conn.execute(
                    sa.delete(writes).where(
                        writes.c.object == object,
                        writes.c.status == "pending",
                        writes.c.source_key.in_(chunk),
                    )
                )
            conn.execute(
                sa.insert(writes), [_values(run_key, object, r, "pending", now) for r in rows]
            )

    def record_outcomes(self, run_key: str, object: str, rows: Sequence[WriteRow]) -> None:
        """Record what happened. A pending intent of this run for the same record is
        completed in place; anything else is appended."""
        if not rows:
            return
        now = _now()
        with self._begin() as conn:
            pending_ids: dict[str, int] = {}
            for chunk in _chunks([r.source_key for r in rows], self._in_chunk):
                # run_key is filtered here, not in SQL: with it in the WHERE clause SQLite
                # prefers the (run_key, object) index and scans the whole run per chunk.
                pending_ids.update(
                    (key, row_id)
                    for row_id, key, row_run_key in conn.execute(
                        sa.select(writes.c.id, writes.c.source_key, writes.c.run_key).where(
                            writes.c.object == object,
                            writes.c.source_key.in_(chunk),
                            writes.c.status == "pending",
                        )
                    )
                    if row_run_key == run_key
                )
            completed = [
                {"b_row_id": pending_ids[r.source_key], **_outcome_values(r, now)}
                for r in rows
                if r.source_key in pending_ids
            ]
            appended = [
                _values(run_key, object, r, "done", now)
                for r in rows
                if r.source_key not in pending_ids
            ]
            if completed:
                conn.execute(
                    sa.update(writes).where(writes.c.id == sa.bindparam("b_row_id")), completed
                )
            if appended:
                conn.execute(sa.insert(writes), appended)

    def resolve_pending(self, object: str, found: Mapping[str, str]) -> None:
        """Pending creates found in Twenty after a crash did land: mark them done with the
        id they got (in the run that created them)."""
        if not found:
            return
        with self._begin() as conn:
            conn.execute(
                sa.update(writes)
                .where(
                    writes.c.object == object,
                    writes.c.source_key == sa.bindparam("b_source_key"),
                    writes.c.status == "pending",
                    writes.c.operation == "create",
                )
                .values(status="done", twenty_id=sa.bindparam("b_twenty_id"), written_at=_now()),
                [{"b_source_key": k, "b_twenty_id": twenty_id} for k, twenty_id in found.items()],
            )

    def known(self, object: str, source_keys: Sequence[str]) -> dict[str, KnownWrite]:
        """For each source key with a Twenty id or an open intent, what the ledger knows."""
        success: dict[str, tuple[str, str | None]] = {}
        pending: dict[str, tuple[int, str]] = {}
        with self._connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(source_keys)), self._in_chunk):
                rows = conn.execute(
                    sa.select(
                        writes.c.id,
                        writes.c.source_key,
                        writes.c.twenty_id,
                        writes.c.payload_hash,
                        writes.c.operation,
                        writes.c.status,
                    )
                    .where(writes.c.object == object, writes.c.source_key.in_(chunk))
                    .order_by(writes.c.id)
                )
                for row_id, key, twenty_id, payload_hash, operation, status in rows:
                    if status == "pending":
                        pending[key] = (row_id, operation)
                    elif operation in SUCCESSFUL and twenty_id:
                        success[key] = (twenty_id, payload_hash)
            before_images = self._before_images(
                conn, [row_id for row_id, operation in pending.values() if operation != "create"]
            )
        known: dict[str, KnownWrite] = {}
        for key in success.keys() | pending.keys():
            twenty_id, payload_hash = success.get(key, (None, None))
            row_id, operation = pending.get(key, (None, None))
            known[key] = KnownWrite(
                twenty_id=twenty_id,
                payload_hash=payload_hash,
                pending=row_id is not None,
                pending_operation=operation,
                pending_before_image=before_images.get(row_id) if row_id is not None else None,
            )
        return known

    def twenty_ids(self, object: str, source_keys: Sequence[str]) -> dict[str, str]:
        """source key -> Twenty id, for the records that have one (relation resolution)."""
        return {
            key: entry.twenty_id
            for key, entry in self.known(object, source_keys).items()
            if entry.twenty_id
        }

    def writes(self, run_key: str | None = None, object: str | None = None) -> list[dict]:
        """The audit log, oldest first."""
        query = sa.select(writes).order_by(writes.c.id)
        if run_key is not None:
            query = query.where(writes.c.run_key == run_key)
        if object is not None:
            query = query.where(writes.c.object == object)
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def counts(self, run_key: str) -> dict[str, dict[str, int]]:
        """object -> operation -> rows for one run; open intents are counted as "pending"."""
        operation = sa.case((writes.c.status == "pending", "pending"), else_=writes.c.operation)
        query = (
            sa.select(writes.c.object, operation, sa.func.count())
            .where(writes.c.run_key == run_key)
            .group_by(writes.c.object, operation)
        )
        counts: dict[str, dict[str, int]] = {}
        with self._connect() as conn:
            for object, op, count in conn.execute(query):
                counts.setdefault(object, {})[op] = count
        return counts

    # -- plumbing --------------------------------------------------------------------------

    def _before_images(self, conn: sa.Connection, row_ids: list[int]) -> dict[int, Any]:
        images: dict[int, Any] = {}
        for chunk in _chunks(row_ids, self._in_chunk):
            images.update(
                conn.execute(
                    sa.select(writes.c.id, writes.c.before_image).where(writes.c.id.in_(chunk))
                ).all()
            )
        return images

    def _ensure_tables(self) -> None:
        with self._ready_lock:
            if not self._ready:
                metadata.create_all(self._engine)
                self._ready = True

    def _begin(self) -> Any:
        self._ensure_tables()
        return self._engine.begin()

    def _connect(self) -> Any:
        self._ensure_tables()
        return self._engine.connect()


def _values(
    run_key: str, object: str, row: WriteRow, status: str, now: datetime
) -> dict[str, Any]:
    return {
        "run_key": run_key,
        "object": object,
        "source_key": row.source_key,
        **_outcome_values(row, now),
        "status": status,
    }


def _outcome_values(row: WriteRow, now: datetime) -> dict[str, Any]:
    return {
        "twenty_id": row.twenty_id,
        "operation": row.operation,
        "status": "done",
        "payload_hash": row.payload_hash,
        "before_image": dict(row.before_image) if row.before_image is not None else None,
        "message": row.message,
        "written_at": now,
    }


def _create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url if "://" in url else f"sqlite:///{url}")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 60})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_driver_name() == "psycopg2":
        # page UPDATE executemany through execute_batch instead of one round trip per row
        return sa.create_engine(parsed, pool_pre_ping=True, executemany_mode="values_plus_batch")
    return sa.create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets parallel Dagster steps read while one writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(timezone.utc)
