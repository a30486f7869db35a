"""The ledger's schema log: intents and outcomes of metadata changes, and ledgers of older versions."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.ledger.tables import rollbacks, schema_changes


def test_an_intent_stays_pending_until_its_outcome_and_a_failure_keeps_the_reason(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
        journal = ledger.schema_journal("full-1")
        made = journal.intent("create", "field", "person", "matterRole")
        refused = journal.intent("create", "field", "person", "matterRoles")
        journal.intent("create", "object", "matterRecord", "matterRecord")  # no outcome: Twenty went away
        journal.outcome(made, metadata_id="f-1")
        journal.outcome(refused, failure="HTTP 400: Options are required for enum fields")

        ours = {row["name"]: (row["status"], row["metadata_id"]) for row in journal.ours()}

    # Created, and maybe created (no outcome: Twenty may have done it): both are ours to drop.
    assert ours == {"matterRole": ("done", "f-1"), "matterRecord": ("pending", None)}


def test_a_ledger_of_an_older_version_is_upgraded_keeping_what_its_rollbacks_dropped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    schema_changes.metadata.create_all(engine, tables=[schema_changes, rollbacks])
    now = datetime.now(timezone.utc)
    field = {"kind": "field", "object": "person", "name": "tags", "metadata_id": "f-1", "field": None}
    with engine.begin() as conn:
        for run_key, name in (("full-1", "tags"), ("full-2", "source")):
            conn.execute(sa.insert(schema_changes).values(run_key=run_key, recorded_at=now, report={
                "created_objects": [], "created_fields": [{**field, "name": name, "metadata_id": f"id-{name}"}],
                "added_options": [], "already_present": []}))
        conn.execute(sa.insert(rollbacks).values(run_key="full-1", drop_schema=True, started_at=now,
                                                 status="done", schema_through_id=1))
    engine.dispose()

    with Ledger(url) as ledger:
        undropped = [(row["run_key"], row["name"], row["metadata_id"]) for row in ledger.schema_created()]
        with ledger.engine.connect() as conn:
            legacy_left = conn.execute(sa.select(sa.func.count()).select_from(schema_changes)).scalar()

    assert undropped == [("full-2", "source", "id-source")]  # full-1's field was dropped by its rollback
    assert legacy_left == 0
