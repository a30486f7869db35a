"""Delta pickup during cutover: the sensor notices a new export, adds a `delta-...` partition
and requests its run in one result; the delta run, through Dagster into the fake Twenty,
updates changed records (before-images in the ledger), creates new ones and reports the ones
deleted in the source without deleting them."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from migration_pipeline.definitions import MAPPINGS_DIR, build_definitions
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.mapping import Mapping, load_mapping
from migration_pipeline.factories.assets import build_source_assets, files_resource_key
from migration_pipeline.factories.sensors import (
    EXPORT_TAG,
    build_api_delta_sensor,
    build_delta_sensor,
    delta_asset_keys,
    files_run_config,
)
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.lifecycle.delta import delta_window, parse_stamp, previous_run_time, stamp
from migration_pipeline.lifecycle.delta_files import COMPLETE_MARKER, FilesCursor
from migration_pipeline.lifecycle.delta_poll import PollCursor, poll_modified_since
from migration_pipeline.partitions import migration_run, new_run_key
from migration_pipeline.resources import LedgerStore, MigrationSettings, SourceFiles
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.harness import ADMIN_EMAIL, run_migration

DELTA_KEY = re.compile(r"^delta-(\d{8}T\d{4}Z)-(\d{8}T\d{4}Z)$")


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return load_mapping(MAPPINGS_DIR / "allclients__twenty.yaml")


@pytest.fixture(scope="module")
def original_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("allclients_original")
    generate_export(folder, rows=60, seed=23)
    return folder


def _evaluate(
    sensor: dg.SensorDefinition, cursor: str | None, instance: dg.DagsterInstance, ledger_url: str
) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(
        cursor=cursor, instance=instance, resources={"ledger": LedgerStore(url=ledger_url)}
    ) as context:
        return sensor(context)


def _read_contacts(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (folder / "Contacts.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _write_contacts(folder: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with (folder / "Contacts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def _age(folder: Path, seconds: float) -> None:
    """Make an export look as if its files were last written `seconds` ago."""
    then = time.time() - seconds
    for path in folder.iterdir():
        os.utime(path, (then, then))


@dataclass
class DeltaEdits:
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # ContactID -> (old, new last name)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _make_delta_export(original: Path, target: Path, loaded_ids: list[str]) -> DeltaEdits:
    """A copy of the original export where three loaded contacts changed their last name, two
    loaded contacts are gone and two new contacts appeared."""
    shutil.copytree(original, target)
    header, rows = _read_contacts(target)
    by_id = {row["ContactID"]: row for row in rows}
    edits = DeltaEdits()
    for contact_id in loaded_ids[:3]:
        old = by_id[contact_id]["LastName"]
        by_id[contact_id]["LastName"] = f"{old}-Delta"
        edits.changed[contact_id] = (old, f"{old}-Delta")
    edits.removed = loaded_ids[3:5]
    rows = [row for row in rows if row["ContactID"] not in edits.removed]
    next_id = max(int(row["ContactID"]) for row in rows) + 1000
    template = by_id[loaded_ids[5]]
    for n in range(2):
        contact_id = str(next_id + n)
        rows.append({**template, "ContactID": contact_id, "FirstName": f"New{n}", "LastName": "Delta",
                     "Email": f"new{n}.delta@freshclient.example", "OtherFirstName": "", "OtherLastName": "",
                     "OtherEmail": ""})
        edits.added.append(contact_id)
    _write_contacts(target, header, rows)
    return edits


def _launch(
    mapping: Mapping, instance: dg.DagsterInstance, fake, ledger_url: str, output_dir: Path, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """Runs a request as the daemon would: its partition, selection, config and tags, with the
    resources of definitions.py pointed at the fake Twenty and the test's ledger."""
    slug = mapping.slug
    return dg.materialize(
        build_source_assets(mapping),
        instance=instance,
        partition_key=request.partition_key,
        selection=request.asset_selection,
        run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags=request.tags,
        resources={
            files_resource_key(slug): SourceFiles(slug=slug),
            "twenty": TwentyWriter(api_url=fake.base_url, api_key=fake.api_key, requests_per_minute=6000,
                                   backoff_base_seconds=0.05, backoff_max_seconds=0.5),
            "ledger": LedgerStore(url=ledger_url),
            "migration_settings": MigrationSettings(fallback_owner_email=ADMIN_EMAIL, output_dir=str(output_dir)),
        },
        raise_on_error=False,
    )


def test_delta_export_is_picked_up_once_and_its_run_updates_creates_and_reports_deletions(
    fake_twenty, mapping, original_export, tmp_path, monkeypatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    full_key = new_run_key("full", datetime.now(timezone.utc) - timedelta(hours=1))
    full = run_migration(instance=instance, fake=fake_twenty, export_dir=original_export, ledger_url=ledger_url,
                         output_dir=tmp_path / "out", run_key=full_key)
    assert full.success, full.result.all_events[-1]
    with Ledger(ledger_url) as ledger:
        full_writes = ledger.writes(run_key=full_key, object="people")
    loaded_ids = sorted(w["source_key"].split(":", 1)[1] for w in full_writes
                        if w["operation"] == "create" and w["source_key"].startswith("people:"))
    assert len(loaded_ids) >= 6

    # The delta folder holds the export already migrated (behind the high-water mark), a copy
    # still missing a file, and the new complete export.
    deltas = tmp_path / "deltas"
    shutil.copytree(original_export, deltas / "export-01")
    _age(deltas / "export-01", 3600)
    (deltas / "export-02-partial").mkdir()
    shutil.copy(original_export / "Contacts.csv", deltas / "export-02-partial")
    edits = _make_delta_export(original_export, deltas / "export-03", loaded_ids)
    (deltas / "export-03" / COMPLETE_MARKER).touch()
    monkeypatch.setenv("ALLCLIENTS__DELTA_DIR", str(deltas))

    sensor = build_delta_sensor(mapping)
    cursor = FilesCursor("export-01", (deltas / "export-01" / "Contacts.csv").stat().st_mtime,
                         parse_stamp(full_key.removeprefix("full-"))).to_json()
    before = stamp(datetime.now(timezone.utc))
    result = _evaluate(sensor, cursor, instance, ledger_url)

    assert isinstance(result, dg.SensorResult)
    [partitions] = result.dynamic_partitions_requests
    [delta_key] = partitions.partition_keys
    assert partitions.partitions_def_name == migration_run.name
    window = DELTA_KEY.match(delta_key)
    assert window and window.group(1) == full_key.removeprefix("full-") and window.group(2) >= before
    [request] = result.run_requests
    assert request.partition_key == delta_key
    assert request.tags[EXPORT_TAG] == str(deltas / "export-03")
    layers = {k.path[1] for k in request.asset_selection}
    assert layers == {"extract", "stage", "prepare", "load", "report"}
    assert json.loads(result.cursor)["export"] == "export-03"
    with Ledger(ledger_url) as ledger:
        assert ledger.get_run(delta_key)["params"]["input_dir"] == str(deltas / "export-03")

    # Nothing new since: the next evaluation requests nothing.
    again = _evaluate(sensor, result.cursor, instance, ledger_url)
    assert isinstance(again, dg.SkipReason)
    assert "export-02-partial: waiting for Notes.csv, Users.csv" in again.skip_message

    # Execute the requested run as the daemon would: add the partition, launch with the
    # request's selection, config and partition, on the same instance.
    instance.add_dynamic_partitions(partitions.partitions_def_name, list(partitions.partition_keys))
    fake_twenty.clear_requests()
    run = _launch(mapping, instance, fake_twenty, ledger_url, tmp_path / "out", request)
    assert run.success, run.all_events[-1]
    extracted = run.asset_materializations_for_node("allclients__extract__contacts")[0]
    assert extracted.metadata["file"].value == str(deltas / "export-03" / "Contacts.csv")

    people = {p["allclientsId"]: p for p in fake_twenty.records("people")}
    with Ledger(ledger_url) as ledger:
        delta_writes = {w["source_key"]: w for w in ledger.writes(run_key=delta_key, object="people")}
        assert ledger.get_run(delta_key)["status"] == "succeeded"

    # Changed contacts: updated in place, their before-image (the full run's value) in the ledger.
    for contact_id, (old, new) in edits.changed.items():
        key = f"people:{contact_id}"
        assert people[key]["name"]["lastName"] == new
        assert delta_writes[key]["operation"] == "update"
        assert delta_writes[key]["before_image"]["name"]["lastName"] == old
        assert delta_writes[key]["twenty_id"] == people[key]["id"]
    # New contacts: created.
    for contact_id in edits.added:
        key = f"people:{contact_id}"
        assert delta_writes[key]["operation"] == "create" and people[key]["id"] == delta_writes[key]["twenty_id"]
    # Nothing else was written: every other person the export still holds is unchanged.
    operations = {op: {k for k, w in delta_writes.items() if w["operation"] == op} for op in ("update", "create")}
    assert operations == {"update": {f"people:{c}" for c in edits.changed}, "create": {f"people:{c}" for c in edits.added}}
    assert any(w["operation"] == "unchanged" for w in delta_writes.values())

    # Removed contacts: listed as deleted in the source, still in Twenty.
    deleted = pd.read_csv(tmp_path / "out" / delta_key / "report" / "deleted_in_source.csv", dtype=str)
    loaded_earlier = {w["source_key"] for w in full_writes if w["operation"] == "create"}
    gone = {k for k in loaded_earlier if re.match(r"people(_other)?:(\d+)", k).group(2) in edits.removed}
    assert set(deleted.loc[deleted["object"] == "people", "source_key"]) == gone
    # Links of the removed contacts' notes went with them; nothing listed was deleted in Twenty.
    assert set(deleted["object"]) <= {"people", "noteTargets", "companies"}
    for obj, rows in deleted.groupby("object"):
        assert set(rows["twenty_id"]) <= {r["id"] for r in fake_twenty.records(str(obj))}
    assert all(deleted["last_loaded_by"] == full_key)
    report = run.asset_materializations_for_node("allclients__report__migration")[0]
    assert report.metadata["deleted_in_source"].value == len(deleted)
    assert not [r for r in fake_twenty.requests if r.method == "DELETE"]

    # The partition key and the ledger reproduce the run: relaunched from them alone, it reads
    # the same export, finds nothing left to write and reports the same deletions.
    with Ledger(ledger_url) as ledger:
        folder = Path(ledger.get_run(delta_key)["params"]["input_dir"])
    fake_twenty.clear_requests()
    replay = dg.RunRequest(partition_key=delta_key, asset_selection=delta_asset_keys(mapping),
                           run_config=files_run_config(mapping.slug, folder))
    assert _launch(mapping, instance, fake_twenty, ledger_url, tmp_path / "out", replay).success
    assert not [r for r in fake_twenty.requests if r.method in ("POST", "PATCH", "DELETE")
                and not r.path.startswith("/rest/metadata")]
    assert pd.read_csv(tmp_path / "out" / delta_key / "report" / "deleted_in_source.csv", dtype=str).equals(deleted)


def test_an_export_is_picked_up_only_once_complete_and_settled(mapping, original_export, tmp_path, monkeypatch) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    sensor = build_delta_sensor(mapping, settle_seconds=60)

    unset = _evaluate(sensor, None, instance, ledger_url)
    assert isinstance(unset, dg.SkipReason) and "ALLCLIENTS__DELTA_DIR" in unset.skip_message

    deltas = tmp_path / "deltas"
    shutil.copytree(original_export, deltas / "export-a")  # just copied: still settling
    monkeypatch.setenv("ALLCLIENTS__DELTA_DIR", str(deltas))
    settling = _evaluate(sensor, None, instance, ledger_url)
    assert isinstance(settling, dg.SkipReason) and "export-a: written" in settling.skip_message

    _age(deltas / "export-a", 120)
    picked = _evaluate(sensor, None, instance, ledger_url)
    assert isinstance(picked, dg.SensorResult)
    [key] = picked.dynamic_partitions_requests[0].partition_keys
    [request] = picked.run_requests
    assert request.partition_key == key and DELTA_KEY.match(key)
    # No run of this source yet: the window starts when the export was ready.
    assert json.loads(picked.cursor) == {
        "export": "export-a", "ready_at": (deltas / "export-a" / "Contacts.csv").stat().st_mtime,
        "run_at": DELTA_KEY.match(key).group(2),
    }
    assert request.run_config == {"resources": {"allclients_files": {"config": {
        "slug": "allclients", "input_dir": str(deltas / "export-a")}}}}
    assert isinstance(_evaluate(sensor, picked.cursor, instance, ledger_url), dg.SkipReason)


@dataclass
class ChangeLog:
    """A tiny API source: the modification times of its records."""

    modified: list[datetime]
    asked: list[datetime] = field(default_factory=list)

    def newest_modification(self, since: datetime) -> datetime | None:
        self.asked.append(since)
        return max((m for m in self.modified if m > since), default=None)


def test_modified_since_poll_keeps_the_high_water_mark_in_the_cursor() -> None:
    full_run = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)
    source = ChangeLog([full_run - timedelta(days=3), full_run + timedelta(minutes=7, seconds=30)])
    now = datetime(2026, 5, 1, 11, 0, 5, tzinfo=timezone.utc)

    first = poll_modified_since(source, None, now, first_since=full_run)
    assert first is not None and first.run_key == "delta-20260501T1000Z-20260501T1100Z"
    assert PollCursor.parse(first.cursor).high_water == full_run + timedelta(minutes=7, seconds=30)
    assert delta_window(first.run_key) == (full_run, datetime(2026, 5, 1, 11, 0, tzinfo=timezone.utc))

    assert poll_modified_since(source, first.cursor, now + timedelta(hours=1), first_since=full_run) is None
    assert source.asked[-1] == full_run + timedelta(minutes=7, seconds=30)

    source.modified.append(full_run + timedelta(hours=2))
    later = now + timedelta(hours=2)
    second = poll_modified_since(source, first.cursor, later, first_since=full_run)
    assert second is not None and second.run_key == "delta-20260501T1007Z-20260501T1300Z"
    assert PollCursor.parse(second.cursor).high_water == full_run + timedelta(hours=2)


def test_an_api_sensor_adds_the_partition_and_requests_its_run_from_the_poll(mapping, tmp_path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Ledger(ledger_url) as ledger:
        ledger.start_run("full-20260501T1000Z", mapping.slug, "full")
        started = previous_run_time(ledger, mapping.slug)
    assert started is not None
    source = ChangeLog([started + timedelta(seconds=1)])
    sensor = build_api_delta_sensor(mapping, lambda _context: source)

    result = _evaluate(sensor, None, instance, ledger_url)
    assert isinstance(result, dg.SensorResult)
    [key] = result.dynamic_partitions_requests[0].partition_keys
    [request] = result.run_requests
    assert request.partition_key == key and key.startswith(f"delta-{stamp(started)}-")
    assert source.asked == [started]
    assert isinstance(_evaluate(sensor, result.cursor, instance, ledger_url), dg.SkipReason)


def test_each_source_has_a_stopped_delta_sensor_targeting_extract_to_report(mapping) -> None:
    defs = build_definitions()
    sensor = defs.resolve_sensor_def(f"{mapping.slug}_delta")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # switched on for the cutover
    job = defs.resolve_job_def(sensor.job_name)
    assert job.partitions_def == migration_run
    layers = {key.path[1] for key in job.asset_layer.selected_asset_keys}
    assert layers == {"extract", "stage", "prepare", "load", "report"}
