"""The prepare step through Dagster against the fake Twenty (which answers like Twenty 2.21):
select fields take their options from the whole export, a select no row fills is skipped and
reported, and a prepare that fails half-way leaves in the ledger everything it created, so
`rollback --all --drop-schema` brings the workspace's metadata back to what it was."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.engine.extract import read_mapped_object
from migration_pipeline.engine.mapping import load_mapping
from migration_pipeline.engine.sampling import sample_extracts
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.resources import MigrationSettings
from migration_pipeline.schemas.registry import source_schema
from migration_pipeline_tests.harness import ADMIN_EMAIL, MigrationRun, run_migration
from migration_pipeline_tests.test_actionstep_custom_objects import _roll_back
from migration_pipeline_tests.test_actionstep_e2e import (  # noqa: F401  (fixtures)
    _actionstep_server,
    fake_actionstep,
    migrate,
)

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data" / "allclients"
SAMPLE_SIZE = 40


def _export(tmp_path: Path, change) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE_DATA, folder)
    contacts = pd.read_csv(folder / "Contacts.csv", dtype=str, keep_default_na=False)
    change(contacts)
    contacts.to_csv(folder / "Contacts.csv", index=False)
    return folder


def _run(fake_twenty, tmp_path: Path, export: Path, run_key: str, instance: dg.DagsterInstance) -> MigrationRun:
    settings = MigrationSettings(fallback_owner_email=ADMIN_EMAIL, output_dir=str(tmp_path / "out"),
                                 skip_sample_gate=True, sample_size=SAMPLE_SIZE)
    return run_migration(instance=instance, fake=fake_twenty, export_dir=export, run_key=run_key,
                         ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", output_dir=tmp_path / "out",
                         layers=("extract", "stage", "prepare"), resources={"migration_settings": settings})


def _prepared(run: MigrationRun) -> dict[str, Any]:
    event = next(e for e in run.result.get_asset_materialization_events()
                 if e.asset_key and e.asset_key.path[-1] == "twenty_schema")
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _person_fields(fake_twenty) -> dict[str, dict[str, Any]]:
    person = next(o for o in fake_twenty.snapshot()["metadata"] if o["nameSingular"] == "person")
    return {f["name"]: f for f in person["fields"]}


def _sampled_contact_ids(export: Path) -> set[str]:
    mapping = load_mapping(MAPPINGS_DIR / "allclients__twenty.yaml")
    extracts = {name: read_mapped_object(export, mapping, name, source_schema("allclients", name)).frame
                for name in mapping.source.objects}
    sliced = sample_extracts(mapping, extracts, mapping.settings(), SAMPLE_SIZE).extracts
    return set(sliced["contacts"]["ContactID"])


def test_a_select_blank_everywhere_is_skipped_and_reported_and_the_run_goes_on(fake_twenty, tmp_path: Path) -> None:
    def blank_category2(contacts: pd.DataFrame) -> None:
        contacts["Category2"] = ""

    run = _run(fake_twenty, tmp_path, _export(tmp_path, blank_category2), "full-20261122T1000Z",
               dg.DagsterInstance.ephemeral())

    assert run.success  # Twenty would answer 400 "Options are required for enum fields"
    fields = _person_fields(fake_twenty)
    assert "category2" not in fields and fields["category"]["options"]
    assert [s.split(":")[0] for s in _prepared(run)["skipped_fields"]] == ["person.category2"]
    assert "Twenty refuses a select without options" in _prepared(run)["skipped_fields"][0]


def test_a_select_blank_in_the_sample_slice_gets_its_options_from_the_whole_export(fake_twenty, tmp_path: Path) -> None:
    export = _export(tmp_path, lambda contacts: None)
    sampled = _sampled_contact_ids(export)

    def source_only_outside_the_slice(contacts: pd.DataFrame) -> None:
        contacts["Source"] = ["Trade Show" if cid not in sampled else "" for cid in contacts["ContactID"]]

    export = _export(tmp_path / "again", source_only_outside_the_slice)
    assert _sampled_contact_ids(export) == sampled  # the slice does not depend on the Source column
    instance = dg.DagsterInstance.ephemeral()

    sample = _run(fake_twenty, tmp_path, export, "sample-20261122T0900Z", instance)
    after_sample = fake_twenty.snapshot()["metadata"]
    full = _run(fake_twenty, tmp_path, export, "full-20261122T1000Z", instance)

    assert sample.success and full.success
    options = _person_fields(fake_twenty)["leadSource"]["options"]
    assert [(o["value"], o["label"]) for o in options] == [("TRADE_SHOW", "Trade Show")]
    # The full run finds the schema the sample made: nothing created, nothing added.
    prepared = _prepared(full)
    assert (prepared["created_fields"], prepared["added_options"], prepared["created_objects"]) == (0, 0, 0)
    assert fake_twenty.snapshot()["metadata"] == after_sample


def _schema_rows(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
        with ledger.engine.connect() as conn:
            from migration_pipeline.ledger.tables import schema_writes
            rows = conn.execute(schema_writes.select().order_by(schema_writes.c.id)).all()
    return [(r.operation, r.kind, f"{r.object}.{r.name}", r.status) for r in rows]


def _fail_the_sixth_field_creation(fake_twenty) -> None:
    # An injected answer below 400 lets its requests through: 5 fields are created, the 6th refused.
    fake_twenty.fail_next(status=200, times=5, path_contains="/rest/metadata/fields")
    fake_twenty.fail_next(status=400, times=1, path_contains="/rest/metadata/fields")


def test_what_a_failed_prepare_created_is_ledgered_and_rolled_back(migrate, fake_twenty, tmp_path: Path) -> None:
    before = fake_twenty.snapshot()["metadata"]
    _fail_the_sixth_field_creation(fake_twenty)

    failed = migrate(run_key="full-20261122T1000Z", layers=("extract", "stage", "prepare"))

    assert not failed.success
    rows = _schema_rows(tmp_path)
    created = [(kind, name) for op, kind, name, status in rows if op == "create" and status == "done"]
    assert [kind for kind, _ in created] == ["object", "object", "field", "field", "field", "field", "field"]
    assert [status for *_, status in rows][-1] == "failed"  # the refused one, with Twenty's reason
    assert fake_twenty.snapshot()["metadata"] != before

    assert _roll_back(fake_twenty, tmp_path, all_runs=True, drop_schema=True).success
    assert fake_twenty.snapshot()["metadata"] == before


def test_a_retry_reports_what_the_failed_attempt_made_as_ours_and_rollback_removes_it(
        migrate, fake_twenty, tmp_path: Path) -> None:
    before = fake_twenty.snapshot()["metadata"]
    _fail_the_sixth_field_creation(fake_twenty)
    assert not migrate(run_key="full-20261122T1000Z", layers=("extract", "stage", "prepare")).success

    retried = migrate(run_key="full-20261123T1000Z", layers=("extract", "stage", "prepare"))

    assert retried.success
    prepared = _prepared(retried)
    assert prepared["ours_from_earlier_runs"] == 7 and prepared["created_objects"] == 0
    present = {(i["object"], i["name"]) for i in prepared["report"]["already_present"]}
    earlier = {(i["object"], i["name"]) for i in prepared["report"]["ours_from_earlier"]}
    assert {("matterRecord", "matterRecord"), ("matterParticipant", "matterParticipant")} <= earlier
    assert not present & earlier
    assert _roll_back(fake_twenty, tmp_path, all_runs=True, drop_schema=True).success
    assert fake_twenty.snapshot()["metadata"] == before


def test_a_refused_metadata_write_names_the_object_and_field_it_sent(migrate, fake_twenty, tmp_path: Path) -> None:
    _fail_the_sixth_field_creation(fake_twenty)
    failed = migrate(run_key="full-20261122T1000Z", layers=("extract", "stage", "prepare"))
    assert not failed.success
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
        with ledger.engine.connect() as conn:
            from migration_pipeline.ledger.tables import schema_writes
            refused = conn.execute(schema_writes.select().where(schema_writes.c.status == "failed")).one()
    said = f"POST /rest/metadata/fields (field {refused.object}.{refused.name}) with HTTP 400"
    assert said in refused.message
    failure = next(e for e in failed.result.all_events if e.event_type_value == "STEP_FAILURE")
    assert said in str(failure.event_specific_data.error)
