"""What an Actionstep key may not read, and settings nobody stated, through Dagster against the
fake Actionstep and the fake Twenty on loopback.

- A resource declared `required: false` (it only feeds the rebuild package or an enrichment)
  that the API refuses (403/404) is read as empty: the run finishes, everything else migrates,
  and the extract's metadata, the run report and the rebuild package say what and why.
- A required resource refused stops the run, naming the resource and what to grant.
- A run whose time zone or currency nobody stated stops before it reads anything.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from migration_pipeline.sources.actionstep.client import ActionstepSource
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, serve_fake_actionstep
from migration_pipeline_tests.harness import MigrationRun, run_migration

OPTIONAL_DENIED = {"bills": 403, "steps": 403, "contactrelationships": 403, "users": 404}


@pytest.fixture
def fake_actionstep():
    with serve_fake_actionstep() as fake:
        yield fake


@pytest.fixture
def migrate(fake_twenty, fake_actionstep: FakeActionstep, tmp_path: Path):
    def _migrate(**kwargs: Any) -> MigrationRun:
        source = ActionstepSource(
            client_id=fake_actionstep.client_id, client_secret=fake_actionstep.client_secret,
            refresh_token=fake_actionstep.refresh_token, token_url=fake_actionstep.token_url,
            max_attempts=2, backoff_base_seconds=0.01, backoff_max_seconds=0.05, timeout_seconds=10.0)
        return run_migration(instance=dg.DagsterInstance.ephemeral(), fake=fake_twenty, export_dir=tmp_path,
                             slug="actionstep", ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
                             output_dir=tmp_path / "out", resources={"actionstep_source": source}, **kwargs)

    return _migrate


def _failure(run: MigrationRun) -> str:
    return " | ".join(e.step_failure_data.error.message for e in run.result.all_events
                      if e.is_step_failure and e.step_failure_data.error)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_optional_resources_the_key_may_not_read_are_reported_and_everything_else_migrates(
    migrate, fake_twenty, fake_actionstep: FakeActionstep
) -> None:
    for resource, status in OPTIONAL_DENIED.items():
        fake_actionstep.deny(resource, status)

    run = migrate(layers=("extract", "stage", "prepare", "load", "report"))

    assert run.success, _failure(run)
    migrated = [a for a in fake_actionstep.records("actions") if a["isDeleted"] == "F" and a["status"] != "Template"]
    assert len(fake_twenty.records("opportunities")) == len(migrated)  # the core objects arrived whole
    assert len(fake_twenty.records("people")) + len(fake_twenty.records("companies")) == len(
        fake_actionstep.records("participants"))
    extract = {e.asset_key.path[-1]: e.event_specific_data.materialization.metadata
               for e in run.result.get_asset_materialization_events() if e.asset_key.path[1] == "extract"}
    assert extract["bills"]["unreadable"].value["status"] == 403
    assert extract["bills"]["unreadable"].value["resource"] == "bills"
    assert "permission" in extract["bills"]["unreadable"].value["reason"]
    assert "unreadable" not in extract["actions"]
    reported = _rows(run.output / "report" / "unreadable_resources.csv")
    assert {(r["resource"], int(r["status"])) for r in reported} == set(OPTIONAL_DENIED.items())
    conditions = json.loads((run.output / "report" / "run_conditions.json").read_text())
    assert {r["source_object"] for r in conditions["unreadable_resources"]} == {
        "bills", "steps", "contact_relationships", "users"}
    readme = (run.output / "rebuild_package" / "README.txt").read_text()
    assert "`bills` (bills): HTTP 403" in readme and "`steps` (steps): HTTP 403" in readme


def test_a_required_resource_the_key_may_not_read_stops_the_run_naming_it(
    migrate, fake_twenty, fake_actionstep: FakeActionstep
) -> None:
    fake_actionstep.deny("actionparticipants", 403)

    run = migrate()

    assert not run.success
    message = _failure(run)
    assert "refused `actionparticipants` with HTTP 403" in message
    assert "grant the API user read access to it" in message and "required: false" in message
    assert "matter_participants" in message or "people" in message  # what it feeds
    assert not fake_twenty.records("people") and not fake_twenty.records("opportunities")


def test_without_a_stated_time_zone_and_currency_nothing_is_read(
    migrate, fake_twenty, fake_actionstep: FakeActionstep
) -> None:
    run = migrate(settings={"timezone": "", "currency": ""})  # the operator stated neither

    assert not run.success
    message = _failure(run)
    assert "timezone" in message and "currency" in message and "is not set" in message
    assert "--set timezone=" in message and "ACTIONSTEP__CURRENCY" in message
    assert fake_actionstep.api_requests() == [] and not fake_twenty.records("people")


def test_the_stated_settings_are_in_the_extract_metadata_and_the_report(
    migrate, fake_twenty, fake_actionstep: FakeActionstep
) -> None:
    run = migrate(settings={"timezone": "Pacific/Auckland", "currency": "NZD"},
                  layers=("extract", "stage", "prepare", "load", "report"))

    assert run.success, _failure(run)
    conditions = json.loads((run.output / "report" / "run_conditions.json").read_text())
    assert conditions["settings"] == {"timezone": {"value": "Pacific/Auckland", "from": "--set"},
                                      "currency": {"value": "NZD", "from": "--set"}}
    amounts = [o["amount"] for o in fake_twenty.records("opportunities") if (o.get("amount") or {}).get("amountMicros")]
    assert amounts and {a["currencyCode"] for a in amounts} == {"NZD"}
