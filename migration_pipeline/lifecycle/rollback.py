"""Undo migration runs exactly, from what the ledger recorded.

Runs are undone newest first and, within a run, object by object in the reverse of the order
they were written (note targets, notes, people, companies):

- a record the run created is destroyed for good (REST DELETE without `soft_delete`): Twenty's
  unique index also covers soft-deleted rows, so a soft delete would make the next run collide;
- a record it updated gets back, from the before-image, the fields the run wrote;
- a record it restored from soft-delete gets its fields back and is deleted again, with its
  original `deletedAt`;
- with `drop_schema`, the custom objects, fields and select options it created are removed:
  every one the ledger's schema log holds for the run, failed attempts included, and nothing
  else (never a field Twenty added itself, such as a custom object's morph-relation targets).

Requests are bulk (up to 200 records each) and every step is idempotent, so a rollback that
stopped half-way (a crash, Twenty down) is simply run again. What it did is recorded per write
(`rollback_actions`, part of the audit log), so nothing is undone twice, and a finished rollback
marks its run. Knows nothing about any source: only the ledger and Twenty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from migration_pipeline.destinations.twenty.client import MAX_BATCH, TwentyClient, TwentyRequestError
from migration_pipeline.destinations.twenty.metadata import drop_created
from migration_pipeline.ledger.ledger import Ledger, RollbackAction

T = TypeVar("T")
Log = Callable[[str], None]

# Twenty sets these itself; a revert never sends them (deletedAt is handled on its own).
READ_ONLY_FIELDS = frozenset(
    {"id", "createdAt", "updatedAt", "deletedAt", "createdBy", "updatedBy", "position", "searchVector"}
)
# Records handled per step. Id filters fit ~140 ids in a URL and bodies 200 records, so steps
# larger than one batch let the client pack its requests full (8 per 1,000 records, not 10).
STEP = 5 * MAX_BATCH


class RollbackRefused(Exception):
    """The rollback could not be exact, so nothing was changed; the message says what to do."""


@dataclass
class PlannedRun:
    run_key: str
    writes: list[dict[str, Any]]  # undoable writes, oldest first
    schema_changes: list[dict[str, Any]]  # schema log rows of what it created, to drop, oldest first

    def counts(self) -> dict[str, dict[str, int]]:
        """object -> undo operation -> records."""
        counts: dict[str, Counter[str]] = {}
        for write in _first_write_per_record(self.writes).values():
            counts.setdefault(write["object"], Counter())[_UNDO[write["operation"]]] += 1
        for row in self.schema_changes:
            counts.setdefault("metadata", Counter())[f"drop_{row['kind']}"] += 1
        return {object: dict(ops) for object, ops in counts.items()}


@dataclass
class RunRollback:
    run_key: str
    done: Counter[str] = field(default_factory=Counter)  # undo operation -> records
    failures: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def complete(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        done = ", ".join(f"{op} {n}" for op, n in sorted(self.done.items())) or "nothing to undo"
        failed = f"; {len(self.failures)} failed: {self.failures[0]}" if self.failures else ""
        return f"{self.run_key}: {done}{failed} ({self.requests} requests)"


@dataclass
class RollbackResult:
    runs: list[RunRollback] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(run.complete for run in self.runs)

    def totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for run in self.runs:
            totals.update(run.done)
        return {**totals, "failed": sum(len(r.failures) for r in self.runs),
                "requests": sum(r.requests for r in self.runs)}


_UNDO = {"create": "destroy", "update": "revert", "restore": "redelete"}


def plan_rollback(
    ledger: Ledger, run_key: str | None = None, *, drop_schema: bool = False, source: str | None = None
) -> list[PlannedRun]:
    """What a rollback of `run_key` (None: every run; of `source` only, if given) would undo,
    newest run first. Raises RollbackRefused, before anything changes, when the result could not
    be exact."""
    candidates = ledger.runs_to_roll_back(with_schema=drop_schema, source=source)
    if run_key is None:
        keys = candidates
    else:
        _require_known(ledger, run_key, candidates, source)
        keys = [run_key] if run_key in candidates else []
        if keys:
            _refuse_if_newer_runs_depend_on(ledger, run_key, drop_schema)
    unsettled = {key: n for key in keys if (n := ledger.unsettled_creates(key))}
    if unsettled:
        raise RollbackRefused("; ".join(_unsettled_message(ledger, key, n) for key, n in unsettled.items()))
    return [PlannedRun(key, ledger.undoable_writes(key), _schema_to_drop(ledger, key, drop_schema)) for key in keys]


def roll_back(
    client: TwentyClient,
    ledger: Ledger,
    run_key: str | None = None,
    *,
    drop_schema: bool = False,
    source: str | None = None,
    batch_size: int = MAX_BATCH,
    log: Log = lambda _message: None,
) -> RollbackResult:
    """Undo `run_key`, or every run (None; of `source` only, if given), newest first. Stops at
    a run that could not be fully undone (older runs stay as they are); rerunning resumes where
    it stopped."""
    result = RollbackResult()
    planned = plan_rollback(ledger, run_key, drop_schema=drop_schema, source=source)
    if not planned:
        log(f"nothing to roll back{f' for {run_key}' if run_key else ''}: already rolled back")
    for run in planned:
        outcome = _roll_back_run(client, ledger, run, drop_schema, batch_size, log)
        result.runs.append(outcome)
        log(outcome.summary())
        if not outcome.complete:
            log(f"stopped: {run.run_key} is not fully undone, so older runs were left untouched")
            break
    return result


# -- preflight ---------------------------------------------------------------------------------


def _require_known(ledger: Ledger, run_key: str, candidates: Sequence[str], source: str | None) -> None:
    run = ledger.get_run(run_key)
    if source is not None and run is not None and run["source"] != source:
        raise RollbackRefused(
            f"{run_key} is a run of {run['source']}, not of {source}: nothing was changed "
            f"(roll it back with --source {run['source']}, or without --source)"
        )
    if run is None and not ledger.counts(run_key) and not ledger.rollbacks(run_key):
        listed = ", ".join(candidates[:10]) or "none"
        raise RollbackRefused(
            f"the ledger ({ledger.url}) has no run {run_key!r}; runs that can be rolled back: {listed}"
        )


def _refuse_if_newer_runs_depend_on(ledger: Ledger, run_key: str, drop_schema: bool) -> None:
    later = ledger.later_writes(run_key)
    if later:
        runs = ", ".join(f"{key} ({n} records)" for key, n in sorted(later.items()))
        raise RollbackRefused(
            f"later runs wrote to records {run_key} changed: {runs}. Roll those back first "
            f"(newest first), or every run with --all; nothing was changed."
        )
    if drop_schema:
        created = {row["metadata_id"] for row in ledger.schema_created(run_key) if row["kind"] != "option"}
        users = sorted(
            other
            for other in ledger.runs_to_roll_back()
            if other != run_key and any(row["metadata_id"] in created for row in ledger.schema_used(other))
        )
        if users:
            raise RollbackRefused(
                f"runs {', '.join(users)} also use the fields/objects {run_key} created: roll them "
                f"back first, or roll back {run_key} without --drop-schema; nothing was changed."
            )


def _unsettled_message(ledger: Ledger, run_key: str, count: int) -> str:
    source = (ledger.get_run(run_key) or {}).get("source", "<source>")
    return (
        f"run {run_key} has {count} creates whose outcome was never recorded (its load was "
        f"interrupted), so the ledger cannot say which of those records exist. Rerun it to settle "
        f"them (migration-pipeline run --source {source} --run-id {run_key} --input <same export>), "
        f"then roll back; nothing was changed"
    )


def _schema_to_drop(ledger: Ledger, run_key: str, drop_schema: bool) -> list[dict[str, Any]]:
    return ledger.schema_created(run_key) if drop_schema else []


# -- one run -----------------------------------------------------------------------------------


def _roll_back_run(
    client: TwentyClient, ledger: Ledger, run: PlannedRun, drop_schema: bool, batch_size: int, log: Log
) -> RunRollback:
    started = client.request_count
    rollback_id = ledger.start_rollback(run.run_key, drop_schema)
    outcome = RunRollback(run.run_key)
    for plural, writes in _newest_object_first(run.writes):
        before = Counter(outcome.done)
        _ObjectUndo(client, ledger, rollback_id, run.run_key, plural, outcome, batch_size).run(writes)
        done = outcome.done - before
        log(f"{run.run_key} {plural}: " + (", ".join(f"{op} {n}" for op, n in sorted(done.items())) or "nothing"))
    if outcome.complete and run.schema_changes:
        _drop_schema(client, ledger, rollback_id, run, outcome)
    outcome.requests = client.request_count - started
    ledger.finish_rollback(rollback_id, outcome.complete, outcome.summary())
    return outcome


def _newest_object_first(writes: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Writes grouped by object, the object the run started writing last first."""
    by_object: dict[str, list[dict[str, Any]]] = {}
    for write in writes:
        by_object.setdefault(write["object"], []).append(write)
    return sorted(by_object.items(), key=lambda item: item[1][0]["id"], reverse=True)


def _first_write_per_record(writes: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The earliest write of each record: its operation and before-image say what to undo."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for write in writes:
        first.setdefault((write["object"], write["twenty_id"]), write)
    return first


def _drop_schema(
    client: TwentyClient, ledger: Ledger, rollback_id: int, run: PlannedRun, outcome: RunRollback
) -> None:
    results = drop_created(client, run.schema_changes)
    ledger.record_rollback_actions(rollback_id, run.run_key, [
        RollbackAction(r.row["object"], f"drop_{r.row['kind']}", r.row["metadata_id"], _schema_label(r.row),
                       status="done" if r.dropped else "failed", message=r.failure)
        for r in results
    ])
    outcome.done.update(f"drop_{r.row['kind']}" for r in results if r.dropped)
    outcome.failures += [f"{_schema_label(r.row)}: {r.failure}" for r in results if not r.dropped]
    ledger.mark_schema_dropped(rollback_id, [r.row["id"] for r in results if r.dropped])


def _schema_label(item: Mapping[str, Any]) -> str:
    if item["kind"] == "option":
        return f"option {item['object']}.{item['field']}={item['name']}"
    return f"{item['kind']} {item['object']}" + (f".{item['name']}" if item["kind"] == "field" else "")


class _ObjectUndo:
    """Undo one run's writes to one Twenty object, in batches."""

    def __init__(
        self, client: TwentyClient, ledger: Ledger, rollback_id: int, run_key: str, plural: str,
        outcome: RunRollback, batch_size: int = MAX_BATCH,
    ) -> None:
        self.client, self.ledger, self.plural, self.batch_size = client, ledger, plural, batch_size
        self.rollback_id, self.run_key, self.outcome = rollback_id, run_key, outcome
        self.writes: dict[str, list[dict[str, Any]]] = {}  # Twenty id -> the run's writes to it

    def run(self, writes: list[dict[str, Any]]) -> None:
        for write in writes:
            self.writes.setdefault(write["twenty_id"], []).append(write)
        created = [i for i, ws in self.writes.items() if ws[0]["operation"] == "create"]
        changed = [i for i, ws in self.writes.items() if ws[0]["operation"] != "create"]
        # Destroys first: a record the run created may hold a unique value a revert gives back.
        for chunk in _chunks(created, STEP):
            self._destroy(chunk)
        for chunk in _chunks(changed, STEP):
            self._revert(chunk)

    # -- creates -----------------------------------------------------------------------------

    def _destroy(self, ids: list[str]) -> None:
        failed: dict[str, str] = {}
        destroyed: set[str] = set()

        def send(batch: list[str]) -> None:  # a destroy by filter reaches soft-deleted rows too
            destroyed.update(self.client.destroy_many(self.plural, batch))

        _isolating_refusals(ids, send, failed)
        notes = {i: None if i in destroyed else "was no longer in Twenty" for i in ids}
        self._record(ids, notes, failed)

    # -- updates and restores ------------------------------------------------------------------

    def _revert(self, ids: list[str]) -> None:
        current = self._current(ids)
        patches: dict[str, dict[str, Any]] = {}
        redelete: dict[str, str] = {}  # Twenty id -> the deletedAt it must end with
        notes: dict[str, str | None] = {}
        for twenty_id in ids:
            record = current.get(twenty_id)
            if record is None:
                notes[twenty_id] = "was no longer in Twenty: nothing to revert"
                continue
            first = self.writes[twenty_id][0]
            before = first["before_image"] or {}
            patch = {k: before[k] for k in self._fields(twenty_id, before) if before[k] != record.get(k)}
            target = before.get("deletedAt") if first["operation"] == "restore" else record.get("deletedAt")
            if patch:
                # Twenty stores an updatedAt sent by the client (examples-2 section 11): the
                # record gets back its own, not the time of the revert.
                stamp = {"updatedAt": before["updatedAt"]} if before.get("updatedAt") else {}
                patches[twenty_id] = {"id": twenty_id, **patch, **stamp}
            if target and (patch or record.get("deletedAt") != target):
                redelete[twenty_id] = target  # an upsert un-deletes, so delete again after it
            notes[twenty_id] = None if patch or twenty_id in redelete else "already as before"
        failed: dict[str, str] = {}
        for batch in _chunks(list(patches), self.batch_size):
            _isolating_refusals(
                batch, lambda ids: self.client.upsert_batch(self.plural, [patches[i] for i in ids]), failed
            )
        self._delete_again({i: t for i, t in redelete.items() if i not in failed}, notes, failed)
        self._record(ids, notes, failed)

    def _fields(self, twenty_id: str, before: dict[str, Any]) -> list[str]:
        """The top-level fields the run wrote (payload keys), else every field of the before-image;
        createdAt too when the run wrote it (the source's creation date)."""
        written = {f for write in self.writes[twenty_id] for f in write["fields"] or ()}
        restorable = READ_ONLY_FIELDS - ({"createdAt"} & written)
        return sorted(f for f in (written or before) if f in before and f not in restorable)

    def _delete_again(self, targets: dict[str, str], notes: dict[str, str | None], failed: dict[str, str]) -> None:
        if not targets:
            return
        _isolating_refusals(list(targets), lambda batch: self.client.soft_delete_many(self.plural, batch), failed)
        by_time: dict[str, list[str]] = {}
        for twenty_id, deleted_at in targets.items():
            if twenty_id not in failed:
                by_time.setdefault(deleted_at, []).append(twenty_id)
        for deleted_at, group in by_time.items():
            def send(batch: list[str], deleted_at: str = deleted_at) -> None:
                for row in self.client.set_deleted_at(self.plural, batch, deleted_at):
                    if row.get("deletedAt") != deleted_at:
                        notes[row["id"]] = f"deleted again, but Twenty kept deletedAt {row.get('deletedAt')}"
            _isolating_refusals(group, send, failed)

    def _current(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The records as they are now, soft-deleted ones included."""
        return self.client.read_ids(self.plural, ids)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _record(self, ids: list[str], notes: dict[str, str | None], failed: dict[str, str]) -> None:
        actions: list[RollbackAction] = []
        for twenty_id in ids:
            operation = _UNDO[self.writes[twenty_id][0]["operation"]]
            message = failed.get(twenty_id) or notes.get(twenty_id)
            status = "failed" if twenty_id in failed else "done"
            actions.extend(
                RollbackAction(self.plural, operation, twenty_id, w["source_key"], w["id"], status, message)
                for w in self.writes[twenty_id]
            )
            if status == "failed":
                self.outcome.failures.append(f"{operation} {self.plural} {twenty_id}: {message}")
            else:
                self.outcome.done[operation] += 1
        self.ledger.record_rollback_actions(self.rollback_id, self.run_key, actions)


def _isolating_refusals(ids: list[str], send: Callable[[list[str]], Any], failed: dict[str, str]) -> None:
    """`send(ids)`; when Twenty refuses a batch for its content, halve it until each refused
    record is alone, and note why in `failed`. Other errors (auth, Twenty down) propagate."""
    if not ids:
        return
    try:
        send(ids)
    except TwentyRequestError as error:
        if not error.is_record_error:
            raise
        if len(ids) == 1:
            failed[ids[0]] = "; ".join(error.messages) or str(error)
            return
        middle = len(ids) // 2
        _isolating_refusals(ids[:middle], send, failed)
        _isolating_refusals(ids[middle:], send, failed)


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
