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

from migration_pipeline.ledger.schema_log import SchemaChangeLog, upgrade_legacy_schema_changes
from migration_pipeline.ledger.tables import (
    approvals,
    metadata,
    rollback_actions,
    rollbacks,
    runs,
    writes,
)

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
    fields: Sequence[str] | None = None  # an update's payload keys: what a rollback restores


@dataclass(frozen=True)
class KnownWrite:
    """What the ledger knows about one source record, across all runs."""

    twenty_id: str | None  # from the last successful write
    payload_hash: str | None  # of that write
    pending: bool  # an intent was written but its outcome never recorded (a crash)
    pending_operation: str | None = None
    pending_before_image: dict[str, Any] | None = None  # kept so a rerun can't lose it
    # The id an open create intent chose for the record before sending it: read it back to
    # know whether the create landed.
    pending_twenty_id: str | None = None


class RunSourceConflict(ValueError):
    """A run id is already taken by a run of another source: a run belongs to one source."""


class RollbackUnfinished(RuntimeError):
    """A rollback stopped half-way; no run may start before it is finished."""


@dataclass(frozen=True)
class RollbackAction:
    """What a rollback did about one write (or one schema item it dropped)."""

    object: str
    operation: str  # destroy, revert, redelete, drop_object, drop_field, drop_option
    twenty_id: str | None
    source_key: str | None = None
    write_id: int | None = None  # the writes row undone; None for schema items
    status: Literal["done", "failed"] = "done"
    message: str | None = None


AUDIT_COLUMNS = (
    "run_key", "time", "object", "source_key", "twenty_id", "operation", "outcome", "message"
)  # fmt: skip
CHANGING: tuple[str, ...] = ("create", "update", "restore")


class Ledger(SchemaChangeLog):
    def __init__(self, url: str = DEFAULT_URL, source: str | None = None) -> None:
        """With `source`, the id map (known, twenty_ids) and the settling of intents see only
        that source's runs: records of another source are not this source's records, even when
        their source keys look alike (`people:1001`)."""
        self._source = source
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
        """Open a run, or reopen it when a run with this key is retried. Refused while a
        rollback is unfinished (the id map would be half undone) and when the key belongs to a
        run of another source."""
        now = _now()
        with self._begin() as conn:
            unfinished = conn.execute(
                sa.select(rollbacks.c.run_key).where(rollbacks.c.finished_at.is_(None))
            ).scalars().all()
            if unfinished:
                raise RollbackUnfinished(
                    f"the rollback of {', '.join(sorted(set(unfinished)))} is unfinished, so the ledger "
                    "cannot say which records exist: rerun it (migration-pipeline rollback --run-id "
                    f"{sorted(unfinished)[0]}) before migrating again"
                )
            if _claimed(conn, run_key, source):
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

    def check_run_source(self, run_key: str, source: str) -> None:
        """Raise RunSourceConflict when `run_key` is a run of another source (before launching)."""
        with self._connect() as conn:
            _claimed(conn, run_key, source)

    def finish_run(self, run_key: str, status: str) -> None:
        with self._begin() as conn:
            updated = conn.execute(
                sa.update(runs)
                .where(runs.c.run_key == run_key)
                .values(status=status, finished_at=_now())
            )
            if updated.rowcount == 0:
                raise KeyError(f"no run {run_key!r} in the ledger; call start_run first")

    def get_run(self, run_key: str, source: str | None = None) -> dict[str, Any] | None:
        """The run, or None; with `source`, only a run of that source."""
        query = sa.select(runs).where(runs.c.run_key == run_key)
        if source is not None:
            query = query.where(runs.c.source == source)
        with self._connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def run_keys(self, source: str) -> set[str]:
        with self._connect() as conn:
            return set(conn.execute(sa.select(runs.c.run_key).where(runs.c.source == source)).scalars())

    def latest_run_start(self, source: str) -> datetime | None:
        """When the latest run of `source` started (UTC)."""
        with self._connect() as conn:
            latest = conn.execute(sa.select(sa.func.max(runs.c.started_at)).where(runs.c.source == source)).scalar()
        if latest is None:
            return None
        return latest if latest.tzinfo else latest.replace(tzinfo=timezone.utc)  # SQLite drops the zone

    def request_run(
        self, run_key: str, source: str, kind: str, params: Mapping[str, Any]
    ) -> None:
        """Note a run a sensor requested with what reproduces it (e.g. the export folder of a
        delta); `start_run` later marks it running and keeps these params."""
        with self._begin() as conn:
            if _claimed(conn, run_key, source):
                row = conn.execute(sa.select(runs.c.params).where(runs.c.run_key == run_key)).one()
                conn.execute(
                    sa.update(runs).where(runs.c.run_key == run_key).values(params={**row.params, **params})
                )
            else:
                conn.execute(sa.insert(runs).values(
                    run_key=run_key, source=source, kind=kind, params=dict(params),
                    started_at=_now(), status="requested",
                ))

    # -- approvals (schema changes: SchemaChangeLog) --------------------------------------------

    def approve(self, run_key: str, approved_by: str, note: str = "", source: str | None = None) -> None:
        """Record that a person approved a sample run (idempotent: the latest approval wins)."""
        run = self.get_run(run_key, source)
        if run is None:
            of = f" of {source}" if source else ""
            raise KeyError(f"no run {run_key!r}{of} in the ledger: run the sample first")
        with self._begin() as conn:
            conn.execute(sa.delete(approvals).where(approvals.c.run_key == run_key))
            conn.execute(sa.insert(approvals).values(
                run_key=run_key, source=run["source"], approved_by=approved_by, note=note, approved_at=_now()
            ))

    def approved_samples(self, source: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(approvals)
                .where(approvals.c.source == source, _of_source(approvals.c.run_key, source))
                .order_by(approvals.c.approved_at)
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
            mine = self._source_runs(conn)
            for chunk in _chunks([r.source_key for r in rows], self._in_chunk):
                pending = sa.and_(writes.c.object == object, writes.c.status == "pending", writes.c.source_key.in_(chunk))
                if mine is None:
                    conn.execute(sa.delete(writes).where(pending))
                    continue
                ids = [i for i, key in conn.execute(sa.select(writes.c.id, writes.c.run_key).where(pending)) if key in mine]
                if ids:
                    conn.execute(sa.delete(writes).where(writes.c.id.in_(ids)))
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
            mine = self._source_runs(conn)
            if mine is not None:  # only this source's intents: settle them by row id
                found = {
                    row_id: found[key]
                    for chunk in _chunks(list(found), self._in_chunk)
                    for row_id, key, run_key in conn.execute(
                        sa.select(writes.c.id, writes.c.source_key, writes.c.run_key).where(
                            writes.c.object == object, writes.c.source_key.in_(chunk),
                            writes.c.status == "pending", writes.c.operation == "create",
                        )
                    )
                    if run_key in mine
                }
                if found:
                    conn.execute(
                        sa.update(writes).where(writes.c.id == sa.bindparam("b_row_id"))
                        .values(status="done", twenty_id=sa.bindparam("b_twenty_id"), written_at=_now()),
                        [{"b_row_id": row_id, "b_twenty_id": twenty_id} for row_id, twenty_id in found.items()],
                    )
                return
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
        pending: dict[str, tuple[int, str, str | None]] = {}
        with self._connect() as conn:
            rolled_back = self._rolled_back_through(conn)
            mine = self._source_runs(conn)
            for chunk in _chunks(list(dict.fromkeys(source_keys)), self._in_chunk):
                rows = conn.execute(
                    sa.select(
                        writes.c.id,
                        writes.c.source_key,
                        writes.c.twenty_id,
                        writes.c.payload_hash,
                        writes.c.operation,
                        writes.c.status,
                        writes.c.run_key,
                    )
                    .where(writes.c.object == object, writes.c.source_key.in_(chunk))
                    .order_by(writes.c.id)
                )
                for row_id, key, twenty_id, payload_hash, operation, status, run_key in rows:
                    if mine is not None and run_key not in mine:
                        continue  # another source's record
                    if row_id <= rolled_back.get(run_key, 0):
                        continue  # undone by a rollback: as if it never happened
                    if status == "pending":
                        pending[key] = (row_id, operation, twenty_id)
                    elif operation in SUCCESSFUL and twenty_id:
                        success[key] = (twenty_id, payload_hash)
            before_images = self._before_images(
                conn, [row_id for row_id, operation, _ in pending.values() if operation != "create"]
            )
        known: dict[str, KnownWrite] = {}
        for key in success.keys() | pending.keys():
            twenty_id, payload_hash = success.get(key, (None, None))
            row_id, operation, pending_id = pending.get(key, (None, None, None))
            known[key] = KnownWrite(
                twenty_id=twenty_id,
                payload_hash=payload_hash,
                pending=row_id is not None,
                pending_operation=operation,
                pending_before_image=before_images.get(row_id) if row_id is not None else None,
                pending_twenty_id=pending_id,
            )
        return known

    def twenty_ids(self, object: str, source_keys: Sequence[str]) -> dict[str, str]:
        """source key -> Twenty id, for the records that have one (relation resolution)."""
        return {
            key: entry.twenty_id
            for key, entry in self.known(object, source_keys).items()
            if entry.twenty_id
        }

    def writes(
        self, run_key: str | None = None, object: str | None = None, source: str | None = None
    ) -> list[dict]:
        """The audit log, oldest first; with `source`, only its runs' writes."""
        query = sa.select(writes).order_by(writes.c.id)
        if run_key is not None:
            query = query.where(writes.c.run_key == run_key)
        if object is not None:
            query = query.where(writes.c.object == object)
        if source is not None:
            query = query.where(_of_source(writes.c.run_key, source))
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def run_writes(self, run_key: str, object: str, source: str | None = None) -> list[tuple[str, str | None, str, str]]:
        """(source key, Twenty id, operation, status) of every write of one run to one object,
        oldest first."""
        query = (
            sa.select(writes.c.source_key, writes.c.twenty_id, writes.c.operation, writes.c.status)
            .where(writes.c.run_key == run_key, writes.c.object == object)
            .order_by(writes.c.id)
        )
        if source is not None:
            query = query.where(_of_source(writes.c.run_key, source))
        with self._connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def loaded_before(
        self, source: str, run_key: str, objects: Sequence[str]
    ) -> list[tuple[str, str, str | None, str]]:
        """(object, source key, Twenty id, run) of successful writes by other runs of `source`
        to records `run_key` did not write at all, oldest first."""
        this_run = writes.alias("this_run")
        written_now = sa.exists().where(
            this_run.c.run_key == run_key,
            this_run.c.object == writes.c.object,
            this_run.c.source_key == writes.c.source_key,
        )
        query = (
            sa.select(writes.c.object, writes.c.source_key, writes.c.twenty_id, writes.c.run_key)
            .where(
                _of_source(writes.c.run_key, source),
                writes.c.run_key != run_key,
                writes.c.status == "done",
                writes.c.operation.in_(SUCCESSFUL),
                writes.c.object.in_(list(objects)),
                ~written_now,
            )
            .order_by(writes.c.id)
        )
        with self._connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def counts(self, run_key: str, source: str | None = None) -> dict[str, dict[str, int]]:
        """object -> operation -> rows for one run; open intents are counted as "pending"."""
        operation = sa.case((writes.c.status == "pending", "pending"), else_=writes.c.operation)
        query = (
            sa.select(writes.c.object, operation, sa.func.count())
            .where(writes.c.run_key == run_key)
            .group_by(writes.c.object, operation)
        )
        if source is not None:
            query = query.where(_of_source(writes.c.run_key, source))
        counts: dict[str, dict[str, int]] = {}
        with self._connect() as conn:
            for object, op, count in conn.execute(query):
                counts.setdefault(object, {})[op] = count
        return counts

    # -- rollbacks and the audit log --------------------------------------------------------

    def start_rollback(self, run_key: str, drop_schema: bool) -> int:
        """Open a rollback of `run_key`, or resume its unfinished one, covering every write the
        run has made so far: from now on `known` ignores them. Returns the rollback's id."""
        with self._begin() as conn:
            through = conn.execute(
                sa.select(sa.func.max(writes.c.id)).where(writes.c.run_key == run_key)
            ).scalar()
            unfinished = conn.execute(
                sa.select(rollbacks.c.id, rollbacks.c.drop_schema).where(
                    rollbacks.c.run_key == run_key, rollbacks.c.finished_at.is_(None)
                )
            ).first()
            if unfinished:
                conn.execute(
                    sa.update(rollbacks)
                    .where(rollbacks.c.id == unfinished.id)
                    .values(
                        through_write_id=through,
                        drop_schema=drop_schema or unfinished.drop_schema,
                        status="running",
                    )
                )
                return int(unfinished.id)
            inserted = conn.execute(
                sa.insert(rollbacks).values(
                    run_key=run_key,
                    through_write_id=through,
                    drop_schema=drop_schema,
                    started_at=_now(),
                    status="running",
                )
            )
            return int(inserted.inserted_primary_key[0])

    def finish_rollback(self, rollback_id: int, complete: bool, message: str | None = None) -> None:
        """Close a rollback; an incomplete one stays open and is resumed by the next attempt.
        A complete one marks its run `rolled_back`."""
        with self._begin() as conn:
            conn.execute(
                sa.update(rollbacks)
                .where(rollbacks.c.id == rollback_id)
                .values(
                    status="done" if complete else "incomplete",
                    finished_at=_now() if complete else None,
                    message=message,
                )
            )
            if complete:
                run_key = sa.select(rollbacks.c.run_key).where(rollbacks.c.id == rollback_id)
                conn.execute(
                    sa.update(runs).where(runs.c.run_key == run_key.scalar_subquery()).values(status="rolled_back")
                )

    def rollbacks(self, run_key: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(rollbacks).order_by(rollbacks.c.id)
        if run_key is not None:
            query = query.where(rollbacks.c.run_key == run_key)
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def record_rollback_actions(
        self, rollback_id: int, run_key: str, actions: Sequence[RollbackAction]
    ) -> None:
        if not actions:
            return
        now = _now()
        with self._begin() as conn:
            conn.execute(
                sa.insert(rollback_actions),
                [
                    {"rollback_id": rollback_id, "run_key": run_key, "acted_at": now, **vars(a)}
                    for a in actions
                ],
            )

    def undoable_writes(self, run_key: str) -> list[dict[str, Any]]:
        """The run's writes that changed Twenty and are not undone yet, oldest first: creates,
        updates and restores, including updates whose outcome was never recorded (a crash)."""
        undone = sa.exists().where(
            rollback_actions.c.write_id == writes.c.id, rollback_actions.c.status == "done"
        )
        query = (
            sa.select(
                writes.c.id,
                writes.c.object,
                writes.c.source_key,
                writes.c.twenty_id,
                writes.c.operation,
                writes.c.before_image,
                writes.c.fields,
            )
            .where(
                writes.c.run_key == run_key,
                writes.c.operation.in_(CHANGING),
                writes.c.twenty_id.is_not(None),
                ~undone,
            )
            .order_by(writes.c.id)
        )
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def unsettled_creates(self, run_key: str) -> int:
        """Creates of the run whose outcome was never recorded and whose id is not known (intents
        of older versions, which did not choose ids): they may or may not exist. A create intent
        with its id is undone by that id whether it landed or not."""
        query = sa.select(sa.func.count()).where(
            writes.c.run_key == run_key, writes.c.status == "pending", writes.c.operation == "create",
            writes.c.twenty_id.is_(None),
        )
        with self._connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def later_writes(self, run_key: str) -> dict[str, int]:
        """Other runs, not rolled back, that wrote after `run_key` to records it changed:
        run key -> how many such records."""
        mine, later = writes.alias("mine"), writes.alias("later")
        query = (
            sa.select(later.c.id, later.c.run_key, later.c.object, later.c.source_key)
            .join(
                mine,
                sa.and_(
                    later.c.object == mine.c.object,
                    later.c.source_key == mine.c.source_key,
                    later.c.id > mine.c.id,
                ),
            )
            .where(
                mine.c.run_key == run_key,
                mine.c.operation.in_(CHANGING),
                later.c.run_key != run_key,
                sa.or_(later.c.operation.in_(SUCCESSFUL), later.c.status == "pending"),
            )
        )
        records: dict[str, set[tuple[str, str]]] = {}
        with self._connect() as conn:
            rolled_back = self._rolled_back_through(conn)
            for row_id, other_run, object, source_key in conn.execute(query):
                if row_id > rolled_back.get(other_run, 0):
                    records.setdefault(other_run, set()).add((object, source_key))
        return {other_run: len(keys) for other_run, keys in records.items()}

    def runs_to_roll_back(self, with_schema: bool = False, source: str | None = None) -> list[str]:
        """Runs (of `source`, if given) with writes no finished rollback covers, or an unfinished
        rollback (and, with `with_schema`, schema changes not dropped yet), newest first."""
        with self._connect() as conn:
            last_write = dict(
                conn.execute(sa.select(writes.c.run_key, sa.func.max(writes.c.id)).group_by(writes.c.run_key)).all()
            )
            done_through: dict[str, int] = {}
            unfinished: set[str] = set()
            for row in conn.execute(sa.select(rollbacks)):
                if row.finished_at is None:
                    unfinished.add(row.run_key)
                else:
                    done_through[row.run_key] = max(done_through.get(row.run_key, 0), row.through_write_id or 0)
        candidates = {key for key, last in last_write.items() if last > done_through.get(key, 0)}
        candidates |= unfinished
        if with_schema:
            candidates |= {row["run_key"] for row in self.schema_created()}
        if source is not None:
            candidates &= self.run_keys(source)
        return sorted(candidates, key=lambda key: (last_write.get(key, 0), key), reverse=True)

    def audit(
        self,
        run_key: str | None = None,
        object: str | None = None,
        operations: Sequence[str] = (),
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every write and every rollback action (of `source`'s runs, if given), oldest first, as
        AUDIT_COLUMNS rows.
        A write's outcome is done, pending (never confirmed) or rejected; an action's is done
        or failed."""
        write_outcome = sa.case(
            (writes.c.status == "pending", "pending"),
            (writes.c.operation == "rejected", "rejected"),
            else_="done",
        )
        sources = (
            (writes, writes.c.written_at, write_outcome, 0),
            (rollback_actions, rollback_actions.c.acted_at, rollback_actions.c.status, 1),
        )
        selects = []
        for table, time, outcome_column, order in sources:
            query = sa.select(
                table.c.run_key,
                time.label("time"),
                table.c.object,
                table.c.source_key,
                table.c.twenty_id,
                table.c.operation,
                outcome_column.label("outcome"),
                table.c.message,
                sa.literal(order).label("kind"),
                table.c.id.label("row_id"),
            )
            if run_key is not None:
                query = query.where(table.c.run_key == run_key)
            if source is not None:
                query = query.where(_of_source(table.c.run_key, source))
            if object is not None:
                query = query.where(table.c.object == object)
            if operations:
                query = query.where(table.c.operation.in_(list(operations)))
            if outcome is not None:
                query = query.where(outcome_column == outcome)
            if since is not None:
                query = query.where(time >= since)
            if until is not None:
                query = query.where(time < until)
            selects.append(query)
        union = sa.union_all(*selects).subquery()
        query = sa.select(*[union.c[name] for name in AUDIT_COLUMNS]).order_by(
            union.c.time, union.c.kind, union.c.row_id
        )
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # -- plumbing --------------------------------------------------------------------------

    def _source_runs(self, conn: sa.Connection) -> set[str] | None:
        """The run keys of this ledger's source; None when it is not scoped to one. Filtered in
        Python, not SQL: a run_key condition makes SQLite scan by the (run_key, object) index."""
        if self._source is None:
            return None
        return set(conn.execute(sa.select(runs.c.run_key).where(runs.c.source == self._source)).scalars())

    @staticmethod
    def _rolled_back_through(conn: sa.Connection) -> dict[str, int]:
        """run key -> the last write id a (started) rollback of that run covers."""
        query = sa.select(rollbacks.c.run_key, sa.func.max(rollbacks.c.through_write_id)).group_by(
            rollbacks.c.run_key
        )
        return {run_key: through or 0 for run_key, through in conn.execute(query)}

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
                _add_missing_columns(self._engine)
                with self._engine.begin() as conn:
                    upgrade_legacy_schema_changes(conn)
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
        "fields": list(row.fields) if row.fields is not None else None,
        "written_at": now,
    }


def _claimed(conn: sa.Connection, run_key: str, source: str) -> bool:
    """Whether `run_key` is already a run of `source`; raises when another source has it."""
    owner = conn.execute(sa.select(runs.c.source, runs.c.started_at).where(runs.c.run_key == run_key)).first()
    if owner is None:
        return False
    if owner.source != source:
        raise RunSourceConflict(
            f"run id {run_key} is already a run of {owner.source} (started {owner.started_at:%Y-%m-%d %H:%M} UTC); "
            f"a run belongs to one source, so this {source} run needs its own id: leave out --run-id for a new "
            f"one, or add a suffix such as {run_key}-{source}"
        )
    return True


def _of_source(run_key: sa.ColumnElement[str], source: str) -> sa.ColumnElement[bool]:
    """`run_key` names a run of `source` (a run id belongs to one source: see `_claimed`)."""
    return run_key.in_(sa.select(runs.c.run_key).where(runs.c.source == source))


def _add_missing_columns(engine: sa.Engine) -> None:
    """A ledger made by an older version lacks newer nullable columns: add them (additive only;
    a concurrent process adding the same column first is fine)."""
    inspector = sa.inspect(engine)
    quote = engine.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            ddl = (
                f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} "
                f"{column.type.compile(engine.dialect)}"
            )
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text(ddl))
            except sa.exc.DBAPIError:
                inspector = sa.inspect(engine)
                if column.name not in {c["name"] for c in inspector.get_columns(table.name)}:
                    raise


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
