"""The ledger on SQLite and, when a server answers on 127.0.0.1:5432, on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_pipeline.ledger import Ledger, WriteRow
from migration_pipeline.ledger.tables import metadata

@pytest.fixture(scope="session")
def postgres_url(postgres_database) -> str:
    return postgres_database().replace("postgresql://", "postgresql+psycopg2://")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger' / 'ledger.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with Ledger(url) as opened:
        yield opened
        metadata.drop_all(opened.engine)


def test_a_plain_path_means_a_sqlite_file_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ledger.sqlite"
    with Ledger(str(path)) as ledger:
        assert not path.exists()
        ledger.start_run("full-20260501T1000Z", "allclients", "full")
        assert path.exists()


def test_a_run_is_opened_reopened_and_finished(ledger: Ledger) -> None:
    ledger.start_run("full-20260501T1000Z", "allclients", "full", {"mapping_version": 3})
    ledger.finish_run("full-20260501T1000Z", "failed")
    ledger.start_run("full-20260501T1000Z", "allclients", "full", {"mapping_version": 3})

    reopened = ledger.get_run("full-20260501T1000Z")
    assert reopened is not None
    assert (reopened["status"], reopened["finished_at"]) == ("running", None)
    assert reopened["params"] == {"mapping_version": 3}

    ledger.finish_run("full-20260501T1000Z", "succeeded")
    finished = ledger.get_run("full-20260501T1000Z")
    assert finished is not None and finished["status"] == "succeeded"
    assert finished["finished_at"] is not None


def test_finishing_an_unknown_run_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(KeyError, match="start_run"):
        ledger.finish_run("never-started", "succeeded")


def test_an_intent_is_pending_until_its_outcome_completes_the_same_row(ledger: Ledger) -> None:
    ledger.record_intent("run-1", "people", [WriteRow("c:1", "create", payload_hash="h1"), "c:2"])

    assert {k: v.pending for k, v in ledger.known("people", ["c:1", "c:2"]).items()} == {
        "c:1": True,
        "c:2": True,
    }
    assert ledger.counts("run-1") == {"people": {"pending": 2}}

    ledger.record_outcomes(
        "run-1",
        "people",
        [WriteRow("c:1", "create", "id-1", "h1"), WriteRow("c:2", "rejected", message="bad email")],
    )

    rows = ledger.writes("run-1")
    assert [(r["source_key"], r["operation"], r["status"], r["twenty_id"]) for r in rows] == [
        ("c:1", "create", "done", "id-1"),
        ("c:2", "rejected", "done", None),
    ]
    assert rows[1]["message"] == "bad email"
    assert ledger.counts("run-1") == {"people": {"create": 1, "rejected": 1}}


def test_known_reports_the_last_successful_write_across_runs(ledger: Ledger) -> None:
    ledger.record_outcomes("run-1", "people", [WriteRow("c:1", "create", "id-1", "h1")])
    ledger.record_outcomes("run-2", "people", [WriteRow("c:1", "update", "id-1", "h2", {"jobTitle": "CTO"})])
    ledger.record_outcomes("run-3", "people", [WriteRow("c:1", "rejected", "id-1", "h3", message="no")])

    known = ledger.known("people", ["c:1", "c:unknown"])

    assert set(known) == {"c:1"}
    assert (known["c:1"].twenty_id, known["c:1"].payload_hash, known["c:1"].pending) == ("id-1", "h2", False)
    assert ledger.twenty_ids("people", ["c:1", "c:unknown"]) == {"c:1": "id-1"}
    assert ledger.twenty_ids("companies", ["c:1"]) == {}


def test_a_crashed_create_found_in_twenty_is_settled_in_the_run_that_made_it(ledger: Ledger) -> None:
    ledger.record_intent("run-1", "people", [WriteRow("c:1", "create", payload_hash="h1")])

    ledger.resolve_pending("people", {"c:1": "id-1"})

    (row,) = ledger.writes()
    assert (row["run_key"], row["operation"], row["status"]) == ("run-1", "create", "done")
    assert row["twenty_id"] == "id-1"
    assert ledger.known("people", ["c:1"])["c:1"].payload_hash == "h1"


def test_a_new_intent_supersedes_an_abandoned_one(ledger: Ledger) -> None:
    ledger.record_intent("run-1", "people", ["c:1"])

    ledger.record_intent("run-2", "people", ["c:1"])
    ledger.record_outcomes("run-2", "people", [WriteRow("c:1", "create", "id-1", "h1")])

    assert [(r["run_key"], r["status"]) for r in ledger.writes(object="people")] == [("run-2", "done")]


def test_a_pending_update_keeps_its_before_image_for_the_rerun(ledger: Ledger) -> None:
    before = {"id": "id-1", "name": {"firstName": "Zoë", "lastName": "Ü"}, "deletedAt": None, "tags": [1, 2]}
    ledger.record_outcomes("run-1", "people", [WriteRow("c:1", "create", "id-1", "h1")])
    ledger.record_intent("run-2", "people", [WriteRow("c:1", "update", "id-1", "h2", before)])

    known = ledger.known("people", ["c:1"])["c:1"]

    assert known.pending and known.pending_operation == "update"
    assert known.pending_before_image == before
    assert (known.twenty_id, known.payload_hash) == ("id-1", "h1")


def test_the_audit_log_filters_by_run_and_object(ledger: Ledger) -> None:
    ledger.record_outcomes("run-1", "people", [WriteRow("p:1", "create", "id-1", "h")])
    ledger.record_outcomes("run-1", "companies", [WriteRow("c:1", "create", "id-2", "h")])
    ledger.record_outcomes("run-2", "people", [WriteRow("p:1", "unchanged", "id-1", "h")])

    assert len(ledger.writes()) == 3
    assert [r["source_key"] for r in ledger.writes("run-1", "companies")] == ["c:1"]
    assert [r["operation"] for r in ledger.writes(object="people")] == ["create", "unchanged"]
    assert ledger.counts("run-2") == {"people": {"unchanged": 1}}


def test_unknown_operations_are_refused_by_the_database(ledger: Ledger) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        ledger.record_outcomes("run-1", "people", [WriteRow("p:1", "merge", "id-1")])  # type: ignore[arg-type]


def test_large_batches_cost_a_handful_of_statements_not_one_per_row(ledger: Ledger) -> None:
    rows = 20_000
    statements: list[Any] = []
    sa.event.listen(ledger.engine, "before_cursor_execute", lambda *args: statements.append(args))
    keys = [f"allclients:contact:{n}" for n in range(rows)]
    started = time.monotonic()

    ledger.record_intent("run-1", "people", [WriteRow(k, "create", payload_hash="h") for k in keys])
    ledger.record_outcomes(
        "run-1", "people", [WriteRow(k, "create", str(uuid.UUID(int=n)), "h") for n, k in enumerate(keys)]
    )
    known = ledger.known("people", keys)

    assert len(known) == rows and not any(k.pending for k in known.values())
    assert ledger.counts("run-1") == {"people": {"create": rows}}
    assert len(statements) < 200, f"{len(statements)} statements for {rows} rows"
    assert time.monotonic() - started < 30
