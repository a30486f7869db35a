"""Sample runs and their field-level diff, and the approval that opens the gate for full runs.

A generated AllClients export is sampled and loaded through Dagster into the fake Twenty over
loopback HTTP; the loaded records are read back and compared field by field with what the mapping
intended."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pandas as pd
import pytest

from migration_pipeline.cli import main
from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.extract import read_mapped_object
from migration_pipeline.engine.mapping import Mapping, load_mapping
from migration_pipeline.engine.sampling import SampleError, principal_source, sample_extracts
from migration_pipeline.engine.transforms import InvalidValue, TransformContext, get_transform
from migration_pipeline.factories.assets import build_source_assets, files_resource_key
from migration_pipeline.factories.verification import CHECK_NAME, build_verification, field_diff_key
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.lifecycle.approval import approve_sample_job
from migration_pipeline.lifecycle.field_diff import compare_leaf, field_defaults
from migration_pipeline.partitions import migration_run
from migration_pipeline.resources import LedgerStore, MigrationSettings, SourceFiles
from migration_pipeline.schemas.registry import source_schema
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.harness import ADMIN_EMAIL, MigrationRun, run_migration

SLUG = "allclients"
SAMPLE = "sample-20261122T0900Z"
SAMPLE_SIZE = 300
LOADS = ("extract", "stage", "prepare", "load", "report")
MAPPING = load_mapping(MAPPINGS_DIR / f"{SLUG}__twenty.yaml")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("allclients_export")
    generate_export(folder, rows=150, seed=17)  # ~150 contacts + ~300 notes: more than one sample
    return folder


@pytest.fixture
def workspace(fake_twenty, export, tmp_path: Path):
    """One Dagster instance, ledger and output folder per test, the fake Twenty emptied."""
    return _Workspace(fake_twenty, export, tmp_path)


class _Workspace:
    def __init__(self, fake: Any, export: Path, tmp_path: Path) -> None:
        self.fake = fake
        self.export = export
        self.instance = dg.DagsterInstance.ephemeral()
        self.ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        self.output = tmp_path / "out"

    def resources(self, sample_size: int = SAMPLE_SIZE) -> dict[str, Any]:
        return {
            files_resource_key(SLUG): SourceFiles(slug=SLUG, input_dir=str(self.export)),
            "twenty": TwentyWriter(api_url=self.fake.base_url, api_key=self.fake.api_key, requests_per_minute=6000,
                                   backoff_base_seconds=0.05, backoff_max_seconds=0.5),
            "ledger": LedgerStore(url=self.ledger_url),
            "migration_settings": MigrationSettings(output_dir=str(self.output), fallback_owner_email=ADMIN_EMAIL,
                                                    sample_size=sample_size),
        }

    def sample(self, layers: tuple[str, ...] = (*LOADS, "verify"), sample_size: int = SAMPLE_SIZE) -> MigrationRun:
        """A sample run through Dagster: source assets, the field-diff asset and its checks."""
        source_assets = build_source_assets(MAPPING)
        selection = dg.AssetSelection.assets(*[a.key for a in source_assets if a.key.path[1] in layers])
        if "verify" in layers:  # the field_diff checks target the load assets: select them too
            checks = [dg.AssetCheckKey(a.key, CHECK_NAME) for a in source_assets if a.key.path[1] == "load"]
            selection = selection | dg.AssetSelection.assets(field_diff_key(SLUG)) | dg.AssetSelection.checks(*checks)
        self.instance.add_dynamic_partitions(migration_run.name, [SAMPLE])
        result = dg.materialize(
            [*source_assets, *build_verification(MAPPING)], instance=self.instance, partition_key=SAMPLE, selection=selection,
            resources=self.resources(sample_size), raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        return MigrationRun(result, self.output / SAMPLE)

    def full(self, run_key: str) -> MigrationRun:
        return run_migration(instance=self.instance, fake=self.fake, export_dir=self.export, ledger_url=self.ledger_url,
                             output_dir=self.output, run_key=run_key, skip_sample_gate=False)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.fake.base_url, headers={"Authorization": f"Bearer {self.fake.api_key}"},
                            timeout=10)


def _field_diff(run: MigrationRun, twenty_object: str) -> dg.AssetCheckEvaluation:
    return run.check(f"{SLUG}/load/{twenty_object}", CHECK_NAME)


def _verify_metadata(run: MigrationRun) -> dict[str, Any]:
    event = next(e for e in run.result.get_asset_materialization_events() if e.asset_key == field_diff_key(SLUG))
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _contact_id(person: dict[str, Any]) -> str:
    """people:10007 and people_other:10007-other both come from contact 10007."""
    return person["allclientsId"].split(":", 1)[1].removesuffix("-other")


def _is_second_person(person: dict[str, Any]) -> bool:
    return person["allclientsId"].endswith("-other")


def _extracts(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: read_mapped_object(folder, MAPPING, name, source_schema(SLUG, name)).frame
            for name in MAPPING.source.objects}


# --- the slice ---------------------------------------------------------------------------------


def test_a_sample_run_loads_a_related_slice_spanning_every_object_and_the_diff_all_matches(workspace) -> None:
    fake = workspace.fake
    fake.clear_requests()
    run = workspace.sample()
    assert run.success, run.result.all_events[-1]

    # Within the size, and a slice: not the whole export.
    contacts, notes = _csv(workspace.export / "Contacts.csv"), _csv(workspace.export / "Notes.csv")
    accounting = {name: acc for obj in run.summary().values() for name, acc in obj["accounting"].items()}
    sliced_contacts, sliced_notes = accounting["people"]["source_rows"], accounting["notes"]["source_rows"]
    assert sliced_contacts + sliced_notes <= SAMPLE_SIZE < len(contacts) + len(notes)
    assert sliced_contacts + sliced_notes >= 0.9 * SAMPLE_SIZE, "the slice leaves most of its budget unused"
    expected = sample_extracts(MAPPING, _extracts(workspace.export), MAPPING.settings(), SAMPLE_SIZE)
    people = fake.records("people")
    loaded_contacts = {_contact_id(p) for p in people if not _is_second_person(p)}
    held = run.report("quarantined.csv")
    held_contacts = set(held[held["object"] == "people"]["source_row"])
    assert loaded_contacts and loaded_contacts | held_contacts == set(expected.extracts["contacts"]["ContactID"])

    # Every Twenty object and every kind of contact is represented.
    companies, notes_loaded, targets = fake.records("companies"), fake.records("notes"), fake.records("noteTargets")
    assert companies and people and notes_loaded and targets
    assert any(_is_second_person(p) for p in people), "no second person in the sample"
    assert any(p["companyId"] for p in people) and any(not p["companyId"] for p in people)

    # Related records travel together: each person's company, each note's person, all of a person's notes.
    company_ids, person_ids, note_ids = {c["id"] for c in companies}, {p["id"] for p in people}, {n["id"] for n in notes_loaded}
    company_of = dict(zip(contacts["ContactID"], contacts["Company"], strict=True))
    names_company = get_transform("company_name_key")

    def named_company(value: str) -> str | None:  # "Inc." names none: the person loads unlinked
        try:
            return names_company((value,), TransformContext())
        except InvalidValue:
            return None

    for person in people:
        if named_company(company_of[_contact_id(person)]):
            assert person["companyId"] in company_ids, person["allclientsId"]
    assert all(t["noteId"] in note_ids and t["targetPersonId"] in person_ids for t in targets)
    assert {t["noteId"] for t in targets} == note_ids
    notes_per_person = Counter(t["targetPersonId"] for t in targets)
    notes_in_export = Counter(notes["ContactID"])
    for person in people:
        if not _is_second_person(person):
            assert notes_per_person[person["id"]] >= notes_in_export[_contact_id(person)]

    # The diff read every loaded record back, in bulk, and found nothing.
    in_twenty = {"company": len(companies), "person": len(people), "note": len(notes_loaded), "noteTarget": len(targets)}
    for twenty_object, count in in_twenty.items():
        check = _field_diff(run, twenty_object)
        assert check.passed, check.metadata
        assert check.metadata["records"].value == count
        assert check.metadata["fields_match"].value > count  # several fields per record compared
    verify = _verify_metadata(run)
    assert verify["differences"] == 0 and verify["records_compared"] == sum(in_twenty.values())
    read_backs = [r for r in fake.requests if r.method == "GET" and r.query.get("filter", "").startswith("id[in]")]
    assert len(read_backs) == verify["read_requests"] <= sum(in_twenty.values()) / 50
    assert _csv(run.output / "verify" / "field_diff.csv").empty
    assert "match what the mapping intended" in (run.output / "verify" / "field_diff.html").read_text()


def test_the_slice_is_deterministic_follows_the_mapping_and_refuses_a_useless_size(export) -> None:
    extracts = _extracts(export)
    assert principal_source(MAPPING, MAPPING.settings()) == "contacts"  # most objects and relations use it
    for size in (40, SAMPLE_SIZE):
        first = sample_extracts(MAPPING, extracts, MAPPING.settings(), size)
        again = sample_extracts(MAPPING, extracts, MAPPING.settings(), size)
        assert 0 < first.counted_rows <= size
        assert all(first.extracts[n].equals(again.extracts[n]) for n in extracts)
        assert first.extracts["users"].equals(extracts["users"])  # a `through:` lookup table stays whole
    assert len(first.strata) >= 4, first.strata  # company or not, second person or not, notes or not
    with pytest.raises(SampleError, match="sample_size must be at least 1"):
        sample_extracts(MAPPING, extracts, MAPPING.settings(), 0)


def test_a_bad_sample_size_stops_the_sample_run_with_a_clear_message_before_any_write(workspace) -> None:
    run = workspace.sample(layers=LOADS, sample_size=0)
    assert not run.success
    failures = [e.step_failure_data.error.message for e in run.result.all_events if e.is_step_failure]
    assert any("sample_size must be at least 1, got 0" in message for message in failures), failures
    assert not [r for r in workspace.fake.requests if r.method == "POST"]


# --- the diff finds what changed ----------------------------------------------------------------


def test_values_changed_in_twenty_after_the_load_are_reported_field_by_field_with_both_values(workspace) -> None:
    loaded = workspace.sample(layers=LOADS)
    assert loaded.success
    unverified = _field_diff(loaded, "person")  # loads without the diff: a warning, not a false pass
    assert not unverified.passed and unverified.severity == dg.AssetCheckSeverity.WARN
    assert "was not materialized" in unverified.metadata["not_verified"].value
    person = next(p for p in workspace.fake.records("people") if p["name"]["firstName"])
    company = workspace.fake.records("companies")[0]
    with workspace.http() as http:
        http.patch(f"/rest/people/{person['id']}", json={"name": {"firstName": "Tampered"}}).raise_for_status()
        http.delete(f"/rest/companies/{company['id']}", params={"soft_delete": "true"}).raise_for_status()

    run = workspace.sample(layers=("verify",))
    assert run.success

    person_check = _field_diff(run, "person")
    assert not person_check.passed
    assert person_check.metadata["fields_with_differences"].value == {"name.firstName": {"differs": 1, "missing": 0}}
    assert "Tampered" in person_check.metadata["difference_sample"].value
    company_check = _field_diff(run, "company")
    assert not company_check.passed and company_check.metadata["records_missing"].value == 1
    assert company_check.metadata["fields_differ"].value == 0
    assert _field_diff(run, "note").passed and _field_diff(run, "noteTarget").passed

    differences = _csv(run.output / "verify" / "field_diff.csv")
    changed = differences[differences["outcome"] == "differs"]
    assert changed[["object", "source_key", "field", "intended", "in_twenty"]].to_dict("records") == [{
        "object": "person", "source_key": person["allclientsId"], "field": "name.firstName",
        "intended": person["name"]["firstName"], "in_twenty": "Tampered",
    }]
    missing = differences[differences["outcome"] == "missing"]
    assert set(missing["source_key"]) == {company["allclientsId"]}
    assert {"name", "allclientsId"} <= set(missing["field"])
    html = (run.output / "verify" / "field_diff.html").read_text()
    assert all(text in html for text in ("Tampered", person["name"]["firstName"], person["allclientsId"], "missing"))


def test_a_value_twenty_holds_where_the_mapping_says_empty_is_a_difference(workspace) -> None:
    loaded = workspace.sample(layers=LOADS)
    assert loaded.success
    person = next(p for p in workspace.fake.records("people") if not p.get("referralPartner"))
    with workspace.http() as http:
        http.patch(f"/rest/people/{person['id']}", json={"referralPartner": "Planted"}).raise_for_status()

    run = workspace.sample(layers=("verify",))
    check = _field_diff(run, "person")
    assert not check.passed
    assert check.metadata["fields_with_differences"].value == {"referralPartner": {"differs": 1, "missing": 0}}
    differences = _csv(run.output / "verify" / "field_diff.csv")
    assert differences[["source_key", "field", "intended", "in_twenty"]].to_dict("records") == [
        {"source_key": person["allclientsId"], "field": "referralPartner", "intended": "", "in_twenty": "Planted"}]


def test_only_what_twenty_legitimately_rewrites_is_normalised() -> None:
    # Emails are lower-cased before they are sent, so a case difference is a real difference.
    assert compare_leaf("emails.primaryEmail", "Ada@Example.com", "ada@example.com") == "differs"
    assert compare_leaf("name.firstName", "Ada", "ada") == "differs"
    assert compare_leaf("policyValue", 1200, 1200.0) == "match"
    assert compare_leaf("policyValue", 1200, 1200.5) == "differs"
    assert compare_leaf("noteDate", "2021-02-03T07:42:00Z", "2021-02-03T07:42:00.000Z") == "match"
    assert compare_leaf("noteDate", "2021-02-03T07:42:00Z", "2021-02-03T08:42:00.000Z") == "differs"
    assert compare_leaf("address.addressStreet2", "", None) == "match"
    assert compare_leaf("tags", ["A", "B"], ["A"]) == "differs"
    assert compare_leaf("jobTitle", "Engineer", "") == "missing"
    # A field the mapping leaves empty may hold Twenty's default, nothing else.
    defaults = field_defaults([{"name": "stage", "defaultValue": "'NEW'"}, {"name": "done", "defaultValue": False},
                               {"name": "amount", "defaultValue": {"amountMicros": None, "currencyCode": "''"}}])
    assert defaults == {"stage": "NEW", "done": False}
    assert compare_leaf("stage", None, "NEW", defaults["stage"]) == "match"
    assert compare_leaf("stage", None, "MEETING", defaults["stage"]) == "differs"
    assert compare_leaf("referralPartner", None, "Planted") == "differs"


# --- approval ------------------------------------------------------------------------------------


def test_the_approve_sample_job_approves_only_a_verified_clean_sample_and_opens_the_gate(workspace) -> None:
    def approve(run_key: str, **config: Any) -> tuple[bool, str]:
        config = {"run_key": run_key, "approved_by": "Dana (QA)", "note": "checked the diff", **config}
        result = approve_sample_job.execute_in_process(
            run_config={"ops": {"approve_sample_run": {"config": config}}}, instance=workspace.instance,
            resources={"ledger": LedgerStore(url=workspace.ledger_url)}, raise_on_error=False,
        )
        failure = None if result.success else result.failure_data_for_node("approve_sample_run")
        return result.success, failure.user_failure_data.description if failure else ""

    assert workspace.sample(layers=LOADS).success
    approved, why = approve(SAMPLE)
    assert not approved and "has no field-level diff yet" in why and "verify/field_diff" in why

    refused = workspace.full("full-20261122T1000Z")
    assert not refused.success and f"{SLUG}/load/person" not in refused.materialized()
    failures = [e.step_failure_data.error.message for e in refused.result.all_events if e.is_step_failure]
    assert any("needs an approved sample run" in message for message in failures), failures

    person = workspace.fake.records("people")[0]
    with workspace.http() as http:
        http.patch(f"/rest/people/{person['id']}", json={"name": {"lastName": "Changed-In-Twenty"}}).raise_for_status()
    assert workspace.sample(layers=("verify",)).success
    approved, why = approve(SAMPLE)
    assert not approved and "found 1 differing or missing values" in why and "accept_differences" in why
    approved, why = approve("full-20261122T1000Z")
    assert not approved and "only sample runs can be approved" in why
    with Ledger(workspace.ledger_url) as ledger:
        assert ledger.approved_samples(SLUG) == []

    approved, _ = approve(SAMPLE, accept_differences=True)
    assert approved
    with Ledger(workspace.ledger_url) as ledger:
        assert [(a["run_key"], a["approved_by"]) for a in ledger.approved_samples(SLUG)] == [(SAMPLE, "Dana (QA)")]
    passed = workspace.full("full-20261122T1100Z")
    assert passed.success
    assert passed.summary()["person"]["created"] > 0  # the full export holds more than the sample


@pytest.fixture
def cli_environment(tmp_path: Path, fake_twenty, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MIGRATION__LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    export = tmp_path / "export"
    generate_export(export, rows=120, seed=2)  # more than one sample holds
    return export


def test_a_sample_run_and_its_approval_from_the_cli_let_the_full_run_load(
    cli_environment: Path, tmp_path: Path, fake_twenty, capsys
) -> None:
    """(Without an approval the CLI refuses the full run: test_cli.py.)"""
    def run(run_key: str) -> tuple[int, str]:
        code = main(["run", "--source", SLUG, "--input", str(cli_environment), "--output", str(tmp_path / "out"),
                     "--run-id", run_key, "--fallback-owner", ADMIN_EMAIL])
        return code, capsys.readouterr().out

    def approve(*args: str) -> tuple[int, str]:
        code = main(["approve", *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, printed = run(SAMPLE)
    assert code == 0, printed
    assert "allclients/verify/field_diff" in printed and f"approve --run-id {SAMPLE}" in printed
    assert "check field_diff" not in printed  # no check failed
    assert (tmp_path / "out" / SAMPLE / "verify" / "field_diff.html").is_file()

    code, printed = approve("--run-id", "full-20261122T1000Z")
    assert code == 2 and "only sample runs can be approved" in printed and "Traceback" not in printed
    code, printed = approve("--run-id", "sample-20261122T0800Z")
    assert code == 2 and "no run sample-20261122T0800Z in the ledger" in printed

    code, printed = approve("--run-id", SAMPLE, "--by", "qa", "--note", "diff clean")
    assert code == 0 and f"approved sample {SAMPLE} of {SLUG} by qa" in printed
    code, printed = run("full-20261122T1200Z")
    assert code == 0, printed
    created = re.search(r"allclients/load/person +created=(\d+)", printed)
    assert created and int(created.group(1)) > 0, printed  # the rest of the export, past the gate


def test_the_slice_keeps_related_rows_of_any_mapping_shape() -> None:
    """Companies, people and notes in three files, related by id columns (not AllClients)."""
    mapping = Mapping.model_validate({
        "version": 1,
        "source": {"slug": "crm", "label": "CRM", "kind": "files", "objects": {
            "accounts": {"file": "a.csv", "key": "AccountID"},
            "contacts": {"file": "c.csv", "key": "ContactID"},
            "activities": {"file": "n.csv"},
        }},
        "defaults": {"external_key_field": "crmId", "external_key_label": "CRM ID"},
        "objects": [
            {"name": "companies", "twenty_object": "company", "from": "accounts", "key": {"from": "AccountID"},
             "fields": {"name": {"from": "Name"}}},
            {"name": "people", "twenty_object": "person", "from": "contacts", "key": {"from": "ContactID"},
             "fields": {"name.firstName": {"from": "First"}},
             "relations": {"companyId": {"object": "companies", "match": [{"from": "AccountID", "to": "AccountID"}]}}},
            {"name": "notes", "twenty_object": "note", "from": "activities", "key": {"hash_of": ["ContactID", "Text"]},
             "fields": {"title": {"from": "Text"}},
             "targets": {"person": {"object": "people", "match": [{"from": "ContactID", "to": "ContactID"}]}}},
        ],
    })
    accounts = pd.DataFrame({"AccountID": [f"A{i}" for i in range(30)], "Name": [f"Acme {i}" for i in range(30)]})
    contacts = pd.DataFrame({"ContactID": [f"C{i}" for i in range(90)], "First": ["Ann"] * 90,
                             "AccountID": [f"A{i % 30}" if i % 4 else "" for i in range(90)]})
    activities = pd.DataFrame({"ContactID": [f"C{i % 60}" for i in range(150)], "Text": [f"call {i}" for i in range(150)]})
    extracts = {"accounts": accounts, "contacts": contacts, "activities": activities}

    sliced = sample_extracts(mapping, extracts, mapping.settings(), 100)
    kept = sliced.extracts
    assert sliced.principal == "contacts" and sliced.counted_rows == sum(len(f) for f in kept.values()) <= 100
    assert set(kept["contacts"]["AccountID"]) - {""} == set(kept["accounts"]["AccountID"])  # each person's company
    assert set(kept["activities"]["ContactID"]) <= set(kept["contacts"]["ContactID"])  # each note's person
    all_notes = Counter(activities["ContactID"])
    assert Counter(kept["activities"]["ContactID"]) == {c: all_notes[c] for c in kept["contacts"]["ContactID"] if all_notes[c]}
    assert {"companies", "notes"} <= {label for profile in sliced.strata for label in profile.split("+")}
    assert "none" in sliced.strata  # people without a company and without notes are in it too
