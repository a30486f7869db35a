"""Rollback: undoing runs, newest first, leaves the Twenty workspace exactly as it was.

Migrations run through Dagster (the real assets) and the rollback runs as the `rollback` job (or
the CLI, which launches that job), over loopback HTTP against the fake Twenty. The workspace
holds records of its own before the migration, which the migration then updates (a person who
shares a contact's email) and restores (a soft-deleted company holding a domain one of ours
wants), so the before-images are put to work.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pandas as pd
import pytest
import yaml
import sqlalchemy as sa

from migration_pipeline.cli import main
from migration_pipeline.destinations.twenty.objects import STANDARD_OBJECTS
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.run_settings import SETTINGS_FILE
from migration_pipeline.engine.transforms import InvalidValue, TransformContext, get_transform
from migration_pipeline.ledger.ledger import Ledger, RollbackAction, RollbackUnfinished, WriteRow
from migration_pipeline.lifecycle.rollback_job import OP_NAME, rollback_job
from migration_pipeline.resources import LedgerStore
from migration_pipeline.sources.allclients.generate import ACCOUNT_SETTINGS, generate_export
from migration_pipeline_tests.harness import MigrationRun, run_migration
from migration_pipeline_tests.real_twenty.exports import read_csv, write_csv

ROWS = 60
SAMPLE_ROWS = 15  # the sample run reads the first contacts only, so the full run adds the rest
SAMPLE, FULL, DELTA = "sample-20261122T0900Z", "full-20261122T1000Z", "delta-20261122T1000Z-20261122T1100Z"
DELTA_TIME = datetime(2026, 11, 22, 10, 30, tzinfo=timezone.utc)  # inside the delta's window
CLEAN_EMAIL = r"^[a-z0-9.]+@[a-z0-9-]+\.example$"
UNDO = {"create": "destroy", "update": "revert", "restore": "redelete"}  # what a rollback owes a write


@dataclass(frozen=True)
class Exports:
    sample: Path
    full: Path
    delta: Path
    shared_email: str  # a contact's email that a person already in the workspace has
    wanted_domain: str  # a company domain that a soft-deleted company in the workspace holds


# -- arranging the exports and the workspace -----------------------------------------------------


def _account_time(moment: datetime) -> str:
    """`moment` as AllClients writes EditDate: in the account's time zone (the generated export's
    migration_settings.yaml)."""
    zone = yaml.safe_load(ACCOUNT_SETTINGS)["timezone"]
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local.month}/{local.day}/{local.year} {local.strftime('%I:%M:%S %p').lstrip('0')}"


def _sample_export(full: Path, out: Path) -> None:
    header, contacts = read_csv(full / "Contacts.csv")
    kept = contacts[:SAMPLE_ROWS]
    write_csv(out / "Contacts.csv", header, kept)
    note_header, notes = read_csv(full / "Notes.csv")
    ids = {c["ContactID"] for c in kept}
    write_csv(out / "Notes.csv", note_header, [n for n in notes if n["ContactID"] in ids])
    shutil.copy(full / "Users.csv", out / "Users.csv")
    shutil.copy(full / SETTINGS_FILE, out / SETTINGS_FILE)  # the account's time zone, as the engineer wrote it


def _delta_export(full: Path, out: Path, renamed: list[str], new_email_for: str) -> None:
    """The full export a few hours later: some names and one email changed, contacts and notes added."""
    edited = _account_time(DELTA_TIME)
    header, contacts = read_csv(full / "Contacts.csv")
    for contact in contacts:
        if contact["ContactID"] in renamed:
            contact.update(LastName=f"{contact['LastName']}-Delta", EditDate=edited)
        if contact["ContactID"] == new_email_for:
            contact.update(Email=f"moved.{new_email_for}@newhome.example", EditDate=edited)
    first_new = max(int(c["ContactID"]) for c in contacts) + 1
    added = [
        {**dict.fromkeys(header, ""), "ContactID": str(first_new + n), "TeamMemberID": "7305",
         "FirstName": "Nova", "LastName": f"Arrival{n}", "Company": f"Delta Works {n}",
         "Email": f"nova{n}@deltaworks{n}.example", "AddDate": edited, "EditDate": edited}
        for n in range(3)
    ]
    write_csv(out / "Contacts.csv", header, contacts + added)
    note_header, notes = read_csv(full / "Notes.csv")
    note_time = DELTA_TIME.astimezone(ZoneInfo("America/Chicago")).strftime("%m/%d/%Y %I:%M %p")
    new_notes = [
        {"ContactID": c["ContactID"], "Email": c["Email"], "FirstName": c["FirstName"],
         "LastName": c["LastName"], "NoteDate": note_time, "Note": f"Delta note for {c['FirstName']}"}
        for c in added
    ]
    write_csv(out / "Notes.csv", note_header, notes + new_notes)
    shutil.copy(full / "Users.csv", out / "Users.csv")
    shutil.copy(full / SETTINGS_FILE, out / SETTINGS_FILE)  # the account's time zone, as the engineer wrote it


def _pick_shared_email(contacts: list[dict[str, str]]) -> dict[str, str]:
    emails = Counter(c[column].strip().lower() for c in contacts for column in ("Email", "OtherEmail"))
    return next(
        c for c in contacts[:SAMPLE_ROWS]
        if re.fullmatch(CLEAN_EMAIL, c["Email"]) and emails[c["Email"]] == 1
        and c["FirstName"] and not c["OtherFirstName"] and c["Company"].strip()
    )


def _mapped(transform: str, *values: str) -> str | None:
    """What the mapping's named transform makes of these cells (None for an invalid value)."""
    try:
        return get_transform(transform)(values, TransformContext())
    except InvalidValue:
        return None


def _pick_wanted_domain(contacts: list[dict[str, str]]) -> str:
    """The domain of a company only one contact (outside the sample) names, and nobody else's."""
    def company(c: dict[str, str]) -> str | None:
        return _mapped("company_name_key", c["Company"])

    def domain(c: dict[str, str]) -> str | None:
        return _mapped("corporate_domain_url", c["Website"], c["Email"], c["OtherEmail"])

    companies, domains = Counter(map(company, contacts)), Counter(map(domain, contacts))
    for contact in contacts[SAMPLE_ROWS:]:
        key, url = company(contact), domain(contact)
        if key and companies[key] == 1 and contact["Website"] and url and domains[url] == 1:
            return url
    raise AssertionError("the generated export has no company with a domain of its own")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    root = tmp_path_factory.mktemp("rollback_exports")
    generate_export(root / "full", rows=ROWS, seed=23)
    _, contacts = read_csv(root / "full" / "Contacts.csv")
    shared = _pick_shared_email(contacts)
    others = [c["ContactID"] for c in contacts[SAMPLE_ROWS:] if c["FirstName"] and not c["OtherFirstName"]]
    _sample_export(root / "full", root / "sample")
    _delta_export(root / "full", root / "delta", renamed=[shared["ContactID"], *others[:3]],
                  new_email_for=others[3])
    return Exports(root / "sample", root / "full", root / "delta", shared["Email"],
                   _pick_wanted_domain(contacts))


def _http(fake: Any) -> httpx.Client:
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.api_key}"}, timeout=10)


def _arrange_workspace(fake: Any, exports: Exports) -> dict[str, str]:
    """Records a user made before the migration; returns their ids by role."""
    with _http(fake) as http:
        def create(plural: str, singular: str, body: dict[str, Any]) -> str:
            response = http.post(f"/rest/{plural}", json=body)
            response.raise_for_status()
            return response.json()["data"][f"create{singular}"]["id"]

        ids = {
            "shared_person": create("people", "Person", {
                "name": {"firstName": "Already", "lastName": "Here"}, "jobTitle": "Buyer",
                "emails": {"primaryEmail": exports.shared_email, "additionalEmails": ["old@elsewhere.example"]},
            }),
            "deleted_company": create("companies", "Company", {
                "name": "Former Client", "domainName": {"primaryLinkUrl": exports.wanted_domain},
            }),
            "untouched_company": create("companies", "Company", {"name": "Untouched Holdings"}),
        }
        ids["untouched_person"] = create("people", "Person", {
            "name": {"firstName": "Not", "lastName": "Migrated"}, "companyId": ids["untouched_company"],
        })
        http.delete(f"/rest/companies/{ids['deleted_company']}", params={"soft_delete": "true"}).raise_for_status()
    return ids


# -- running and rolling back --------------------------------------------------------------------


@pytest.fixture
def workspace(fake_twenty, tmp_path: Path):
    """Migrations and rollbacks sharing one Dagster instance and one ledger."""
    instance = dg.DagsterInstance.ephemeral()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"

    class Workspace:
        fake = fake_twenty
        ledger = ledger_url

        @staticmethod
        def migrate(run_key: str, export_dir: Path, must_succeed: bool = True) -> MigrationRun:
            run = run_migration(instance=instance, fake=fake_twenty, export_dir=export_dir, ledger_url=ledger_url,
                                output_dir=tmp_path / "out", run_key=run_key)
            assert run.success or not must_succeed, [e.message for e in run.result.all_events if e.is_failure]
            return run

        @staticmethod
        def roll_back(**config: Any) -> dg.ExecuteInProcessResult:
            return rollback_job.execute_in_process(
                run_config={"ops": {OP_NAME: {"config": config}}},
                instance=instance,
                resources={
                    "twenty": TwentyWriter(api_url=fake_twenty.base_url, api_key=fake_twenty.api_key,
                                           requests_per_minute=6000, max_attempts=2,
                                           backoff_base_seconds=0.01, backoff_max_seconds=0.05),
                    "ledger": LedgerStore(url=ledger_url),
                },
                raise_on_error=False,
            )

    return Workspace


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot without `updatedAt`: Twenty stamps it on every write; a revert sends the
    before-image's back, but a record deleted again gets the time of that delete. Everything else (ids, deletedAt, positions, createdBy, updatedBy, metadata)
    counts. (updatedBy matches because the records arranged here were made through the same API
    key; in a real workspace a reverted record's updatedBy names the key.)"""
    return {
        "records": {
            plural: {i: {k: v for k, v in row.items() if k != "updatedAt"} for i, row in rows.items()}
            for plural, rows in snapshot["records"].items()
        },
        "metadata": snapshot["metadata"],
    }


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs, readably (the test then also compares the whole snapshots)."""
    found: list[str] = []
    for plural in sorted(before["records"].keys() | after["records"].keys()):
        old, new = before["records"].get(plural, {}), after["records"].get(plural, {})
        found += [f"{plural} {i}: left behind" for i in sorted(new.keys() - old.keys())]
        found += [f"{plural} {i}: gone" for i in sorted(old.keys() - new.keys())]
        for i in sorted(old.keys() & new.keys()):
            fields = sorted(k for k in old[i].keys() | new[i].keys() if old[i].get(k, ...) != new[i].get(k, ...))
            found += [f"{plural} {i}: {field} {old[i].get(field, '<absent>')!r} -> {new[i].get(field, '<absent>')!r}"
                      for field in fields]
    old_meta = {o["nameSingular"]: o for o in before["metadata"]}
    new_meta = {o["nameSingular"]: o for o in after["metadata"]}
    for name in sorted(old_meta.keys() | new_meta.keys()):
        if old_meta.get(name) != new_meta.get(name):
            old_fields = {f["name"]: f for f in (old_meta.get(name) or {}).get("fields", [])}
            new_fields = {f["name"]: f for f in (new_meta.get(name) or {}).get("fields", [])}
            changed = sorted(f for f in old_fields.keys() | new_fields.keys() if old_fields.get(f) != new_fields.get(f))
            found.append(f"metadata of {name}: fields {changed or 'same, object attributes differ'}")
    return found


def _output_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (output,) = [e for e in result.all_events if e.is_successful_output and e.step_key == OP_NAME]
    return output.step_output_data.metadata


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step's error, with the exception that caused it."""
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    return error.message + (error.cause.message if error.cause else "")


def _writes(ledger_url: str, run_key: str) -> list[dict[str, Any]]:
    with Ledger(ledger_url) as ledger:
        return ledger.writes(run_key=run_key)


def _records_changed(ledger_url: str) -> Counter[str]:
    """What the ledger says the runs did to Twenty, per record: the undo the rollback owes."""
    first: dict[tuple[str, str, str], str] = {}
    for run_key in (DELTA, FULL, SAMPLE):
        for write in _writes(ledger_url, run_key):
            if write["operation"] in UNDO and write["status"] == "done":
                first.setdefault((run_key, write["object"], write["twenty_id"]), UNDO[write["operation"]])
    return Counter(first.values())


def _load_metadata_counts(run: MigrationRun) -> dict[str, dict[str, int]]:
    counts = {}
    for event in run.result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        layer, singular = materialization.asset_key.path[1:]
        if layer == "load":
            counts[STANDARD_OBJECTS[singular].plural] = {
                k: materialization.metadata[k].value for k in ("created", "updated", "unchanged")
            }
    return counts


def _ledger_counts(ledger_url: str, run_key: str) -> dict[str, dict[str, int]]:
    with Ledger(ledger_url) as ledger:
        by_object = ledger.counts(run_key)
    return {
        object: {"created": ops.get("create", 0), "updated": ops.get("update", 0) + ops.get("restore", 0),
                 "unchanged": ops.get("unchanged", 0)}
        for object, ops in by_object.items()
    }


# -- the promises --------------------------------------------------------------------------------


def test_rolling_back_sample_full_and_delta_leaves_the_workspace_exactly_as_before(workspace, exports) -> None:
    fake = workspace.fake
    arranged = _arrange_workspace(fake, exports)
    before = fake.snapshot()

    runs = {key: workspace.migrate(key, folder)
            for key, folder in ((SAMPLE, exports.sample), (FULL, exports.full), (DELTA, exports.delta))}

    # The premises: each run changed Twenty, and the records that were already there were used.
    operations = {key: Counter(w["operation"] for w in _writes(workspace.ledger, key)) for key in runs}
    assert operations[SAMPLE]["create"] and operations[FULL]["create"], operations
    assert operations[DELTA]["update"] and operations[DELTA]["create"], operations
    # Per run, the load assets' metadata (the Dagster UI) carries the counts the ledger holds.
    for key, run in runs.items():
        assert _load_metadata_counts(run) == _ledger_counts(workspace.ledger, key), key
    touched = {(w["run_key"], w["twenty_id"]): w["operation"] for key in (SAMPLE, FULL, DELTA)
               for w in _writes(workspace.ledger, key)}
    assert touched[(SAMPLE, arranged["shared_person"])] == "update"
    assert touched[(DELTA, arranged["shared_person"])] == "update"
    assert touched[(FULL, arranged["deleted_company"])] == "restore"
    assert _differences(_comparable(before), _comparable(fake.snapshot()))
    owed = _records_changed(workspace.ledger)

    result = workspace.roll_back(all_runs=True, drop_schema=True)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    after = fake.snapshot()
    assert _differences(_comparable(before), _comparable(after)) == []
    assert _comparable(after) == _comparable(before)
    # A reverted update gets its own updatedAt back (Twenty stores the one a client sends).
    shared = arranged["shared_person"]
    assert after["records"]["people"][shared]["updatedAt"] == before["records"]["people"][shared]["updatedAt"]
    # The job's metadata (what the Dagster UI shows) counts what the ledger said was owed.
    metadata = _output_metadata(result)
    assert {op: metadata[op].value for op in owed} == dict(owed)
    assert metadata["failed"].value == 0

    with Ledger(workspace.ledger) as ledger:
        assert {key: (ledger.get_run(key) or {}).get("status") for key in (SAMPLE, FULL, DELTA)} == dict.fromkeys(
            (SAMPLE, FULL, DELTA), "rolled_back")
        undone = [(a["run_key"], a["twenty_id"]) for a in ledger.audit(operations=["destroy", "revert", "redelete"])]
        changing = [(w["run_key"], w["twenty_id"]) for w in ledger.writes() if w["operation"] in UNDO]
    # Each write that changed Twenty is undone once, in the audit log.
    assert sorted(undone) == sorted(changing)
    assert owed["redelete"] == 1  # the soft-deleted company: restored by the full run, deleted again

    # Not undone twice: a second rollback finds nothing to do and sends no write.
    fake.clear_requests()
    again = workspace.roll_back(all_runs=True, drop_schema=True)
    assert again.success and again.output_for_node(OP_NAME) == {}
    assert [r for r in fake.requests if r.method != "GET"] == []

    # Destroyed, not soft-deleted: the sample migrated again creates the same records anew. (A
    # soft-deleted leftover would collide on its unique domain or email and be restored instead.)
    first_time = Counter(w["object"] for w in _writes(workspace.ledger, SAMPLE) if w["operation"] == "create")
    rerun = workspace.migrate(SAMPLE, exports.sample).summary()
    plural = {"company": "companies", "person": "people", "note": "notes", "noteTarget": "noteTargets"}
    assert {plural[o]: counts["created"] for o, counts in rerun.items()} == dict(first_time)
    assert sum(counts["updated"] + counts["rejected"] for counts in rerun.values()) == 1  # the shared person
    # ...and that second life of the sample run is undone as exactly, custom fields included.
    assert workspace.roll_back(run_id=SAMPLE, drop_schema=True).success
    assert _differences(_comparable(before), _comparable(fake.snapshot())) == []


def test_rolling_back_only_the_newest_run_from_the_cli_undoes_the_delta_alone(
    workspace, exports, monkeypatch, tmp_path, capsys
) -> None:
    fake = workspace.fake
    _arrange_workspace(fake, exports)
    workspace.migrate(FULL, exports.full)
    after_full = fake.snapshot()
    workspace.migrate(DELTA, exports.delta)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.setenv("MIGRATION__LEDGER_URL", workspace.ledger)

    # Without credentials nothing can be undone, and the CLI says what to set.
    assert main(["rollback", "--run-id", DELTA]) == 2
    assert "TWENTY__API_URL" in capsys.readouterr().err
    monkeypatch.setenv("TWENTY__API_URL", fake.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake.api_key)

    # The full run cannot go first: the delta wrote to its records after it.
    fake.clear_requests()
    assert main(["rollback", "--run-id", FULL]) == 1
    refused = capsys.readouterr().out
    assert f"later runs wrote to records {FULL} changed: {DELTA}" in refused and "Traceback" not in refused
    assert [r for r in fake.requests if r.method != "GET"] == []

    assert main(["rollback", "--run-id", DELTA, "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "destroy" in plan and "revert" in plan and "nothing was changed" in plan

    # A rejected key stops it at the first request, with the fix and without the key.
    unchanged = fake.snapshot()
    monkeypatch.setenv("TWENTY__API_KEY", "not-the-key")
    assert main(["rollback", "--run-id", DELTA]) == 1
    rejected = capsys.readouterr().out
    assert "TWENTY__API_KEY was rejected" in rejected and "not-the-key" not in rejected
    assert "Traceback" not in rejected and fake.snapshot() == unchanged
    monkeypatch.setenv("TWENTY__API_KEY", fake.api_key)

    assert main(["rollback", "--run-id", DELTA]) == 0
    printed = capsys.readouterr().out
    assert DELTA in printed and fake.api_key not in printed
    assert _differences(_comparable(after_full), _comparable(fake.snapshot())) == []
    assert _comparable(fake.snapshot()) == _comparable(after_full)

    # Every undo is in the audit log, with the run it undid; the filters narrow it down.
    audit_file = tmp_path / "undo.csv"
    assert main(["audit", "--run-id", DELTA, "--operation", "destroy,revert", "--out", str(audit_file)]) == 0
    audit = pd.read_csv(audit_file, dtype=str, keep_default_na=False)
    delta_writes = _writes(workspace.ledger, DELTA)
    assert set(audit["operation"]) == {"destroy", "revert"} and set(audit["run_key"]) == {DELTA}
    assert sorted(audit["twenty_id"]) == sorted(w["twenty_id"] for w in delta_writes if w["operation"] in ("create", "update"))
    assert (audit["outcome"] == "done").all()
    assert main(["audit", "--object", "people", "--outcome", "rejected", "--since", "2100-01-01",
                 "--out", str(tmp_path / "none.csv")]) == 0
    assert pd.read_csv(tmp_path / "none.csv").empty
    assert main(["audit", "--since", "yesterday"]) == 2
    assert "--since 'yesterday' is not a time" in capsys.readouterr().err


def test_an_interrupted_rollback_resumes_and_undoes_nothing_twice(workspace, exports) -> None:
    fake = workspace.fake
    _arrange_workspace(fake, exports)
    before = fake.snapshot()
    workspace.migrate(FULL, exports.full)

    # Twenty fails every bulk delete of people: note targets and notes are gone, people are not.
    fake.fail_next(status=503, times=10_000, path_contains="/rest/people?filter")
    failed = workspace.roll_back(run_id=FULL, drop_schema=True)
    assert not failed.success
    message = _failure(failed)
    assert "rerun the rollback to resume" in message and fake.api_key not in message
    assert fake.records("notes") == [] and fake.records("people")
    # Half undone, the ledger cannot tell which records exist: no migration may start now.
    refused = workspace.migrate(DELTA, exports.delta, must_succeed=False)
    assert not refused.success
    assert f"the rollback of {FULL} is unfinished" in _failure(refused.result)

    fake.clear_failures()
    resumed = workspace.roll_back(run_id=FULL, drop_schema=True)
    assert resumed.success
    assert _differences(_comparable(before), _comparable(fake.snapshot())) == []
    with Ledger(workspace.ledger) as ledger:
        done = Counter(a["twenty_id"] for a in ledger.audit(run_key=FULL, outcome="done",
                                                               operations=["destroy", "revert", "redelete"]))
        changing = [w for w in ledger.writes(FULL) if w["operation"] in ("create", "update", "restore")]
    assert sorted(done) == sorted(w["twenty_id"] for w in changing) and max(done.values()) == 1


def test_a_run_stopped_with_creates_of_unknown_outcome_is_rolled_back_exactly(workspace, exports) -> None:
    fake = workspace.fake
    before = fake.snapshot()
    # Every note batch is written and then answered 504, and so is every read-back of notes:
    # the run stops with notes in Twenty whose creates it never saw succeed.
    faults = fake.inject_faults(1.0, kinds=("504_after_write",), path_contains="notes")
    crashed = workspace.migrate(SAMPLE, exports.sample, must_succeed=False)
    assert not crashed.success and faults.injected["504_after_write"] > 0
    assert fake.records("notes")
    fake.clear_failures()

    result = workspace.roll_back(run_id=SAMPLE, drop_schema=True)

    assert result.success, _failure(result)
    # the intents named the ids the notes were sent with: each one is destroyed, landed or not
    assert _differences(_comparable(before), _comparable(fake.snapshot())) == []


# -- the ledger's side, on both databases -------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("postgres_database")().replace("postgresql://", "postgresql+psycopg2://")


def test_a_rollback_hides_the_runs_writes_from_the_id_map_and_joins_the_audit(ledger_url: str) -> None:
    with Ledger(ledger_url) as ledger:
        ledger.record_outcomes("run-1", "people", [
            WriteRow("p:1", "create", "id-1", "h1"),
            WriteRow("p:2", "update", "id-2", "h2", {"id": "id-2", "jobTitle": "old"}, fields=("jobTitle",)),
        ])
        ledger.record_outcomes("run-2", "people", [WriteRow("p:1", "unchanged", "id-1", "h1")])
        assert ledger.later_writes("run-1") == {"run-2": 1}
        assert ledger.runs_to_roll_back() == ["run-2", "run-1"]
        assert [w["fields"] for w in ledger.undoable_writes("run-1")] == [None, ["jobTitle"]]

        second = ledger.start_rollback("run-2", drop_schema=False)
        with pytest.raises(RollbackUnfinished, match="rollback of run-2 is unfinished"):
            ledger.start_run("run-3", "allclients", "delta")
        ledger.finish_rollback(second, complete=True)
        first = ledger.start_rollback("run-1", drop_schema=False)
        ledger.record_rollback_actions(first, "run-1", [
            RollbackAction("people", "destroy", "id-1", "p:1", write_id=w["id"])
            for w in ledger.undoable_writes("run-1") if w["operation"] == "create"
        ])
        ledger.finish_rollback(first, complete=False, message="1 failed")

        assert ledger.known("people", ["p:1", "p:2"]) == {}  # as if neither run had happened
        assert [w["source_key"] for w in ledger.undoable_writes("run-1")] == ["p:2"]  # destroy not redone
        assert ledger.runs_to_roll_back() == ["run-1"]  # its rollback is unfinished
        audit = ledger.audit(run_key="run-1")
        assert [(a["operation"], a["outcome"]) for a in audit] == [("create", "done"), ("update", "done"),
                                                                 ("destroy", "done")]
        assert ledger.audit(operations=["destroy"], outcome="failed") == []
        assert len(ledger.audit(since=datetime.now(timezone.utc) - timedelta(hours=1))) == 4


def test_an_older_ledger_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    with Ledger(url) as ledger:
        ledger.record_outcomes("run-1", "people", [WriteRow("p:1", "create", "id-1", "h1")])
        with ledger.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE writes DROP COLUMN fields"))  # as written before rollback

    with Ledger(url) as ledger:
        ledger.record_outcomes("run-1", "people", [WriteRow("p:2", "update", "id-2", "h", {}, fields=("name",))])
        assert [(w["source_key"], w["fields"]) for w in ledger.writes()] == [("p:1", None), ("p:2", ["name"])]
