"""AllClients end to end: a generated export, materialized through Dagster, over HTTP into the
fake Twenty. Each test states one promise a migration engineer relies on."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import dagster as dg
import httpx
import pytest

from migration_pipeline.engine.transforms import TransformContext, get_transform
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.sources.allclients.generate import ExportSummary, generate_export
from migration_pipeline_tests.harness import ADMIN_EMAIL, MigrationRun, run_migration

ROWS = 160


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExportSummary]:
    folder = tmp_path_factory.mktemp("allclients_export")
    return folder, generate_export(folder, rows=ROWS, seed=11)


@pytest.fixture
def migrate(fake_twenty, export, tmp_path: Path):
    """Runs the migration; the same instance and ledger across calls within one test."""
    instance = dg.DagsterInstance.ephemeral()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"

    def _migrate(**kwargs) -> MigrationRun:
        kwargs.setdefault("export_dir", export[0])
        return run_migration(instance=instance, fake=fake_twenty, ledger_url=ledger_url,
                             output_dir=tmp_path / "out", **kwargs)

    _migrate.ledger_url = ledger_url
    return _migrate


def _twenty(fake) -> httpx.Client:
    """A plain HTTP client on the fake, to arrange and inspect the workspace as a user would."""
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.api_key}"}, timeout=10)


def _company_key(name: str) -> str:
    return get_transform("company_name_key")((name,), TransformContext())


def _accounting(run: MigrationRun) -> dict[str, dict]:
    return {name: acc for obj in run.summary().values() for name, acc in obj["accounting"].items()}


def test_full_migration_lands_every_object_and_accounts_for_every_row(migrate, fake_twenty, export) -> None:
    _, planted = export
    run = migrate()
    assert run.success, run.result.all_events[-1]

    companies = fake_twenty.records("companies")
    people = fake_twenty.records("people")
    notes = fake_twenty.records("notes")
    targets = fake_twenty.records("noteTargets")

    # Companies deduplicated by normalised name: one per distinct company, spellings merged.
    keys = Counter(_company_key(c["name"]) for c in companies)
    assert all(n == 1 for n in keys.values()), keys
    assert len(companies) == planted.companies_distinct

    # Every source row ended loaded, quarantined or excluded, and the counts add up.
    accounting = _accounting(run)
    assert all(a["balanced"] for a in accounting.values()), accounting
    assert accounting["people"]["source_rows"] == planted.contacts
    assert accounting["people"]["loaded"] + accounting["people_other"]["loaded"] == len(people)
    assert accounting["people_other"]["loaded"] + accounting["people_other"]["quarantined"] == planted.second_persons
    assert accounting["notes"]["source_rows"] == planted.notes

    # Relations arrive as real Twenty ids.
    company_ids = {c["id"] for c in companies}
    linked = [p for p in people if p["companyId"]]
    assert linked and all(p["companyId"] in company_ids for p in linked)
    person_ids = {p["id"] for p in people}
    assert len(targets) == len(notes) == accounting["notes"]["loaded"]
    assert {t["noteId"] for t in targets} == {n["id"] for n in notes}
    assert all(t["targetPersonId"] in person_ids for t in targets)

    # Stage and load checks pass; the extract check warns about the planted bad values, with samples,
    # and prepare warns of the new workspace's active "Create company when adding a new person".
    for evaluation in run.result.get_asset_check_evaluations():
        assert evaluation.passed or evaluation.asset_key.path[1] in ("extract", "prepare"), evaluation
    workflows = run.check("allclients/prepare/twenty_schema", "no_active_workflows")
    assert not workflows.passed and workflows.severity == dg.AssetCheckSeverity.WARN
    extract = run.check("allclients/extract/contacts", "schema")
    assert not extract.passed and extract.severity == dg.AssetCheckSeverity.WARN
    assert "Email" in extract.metadata["failure_sample"].value


def test_unmatched_notes_and_held_contacts_are_listed_with_reasons(migrate, fake_twenty, export) -> None:
    _, planted = export
    run = migrate()
    quarantined = run.report("quarantined.csv")
    assert (quarantined["reason"] != "").all()

    notes_held = quarantined[quarantined["object"] == "notes"]
    assert notes_held["reason"].str.startswith("no person to attach to").all()
    unmatched = notes_held[notes_held["reason"].str.contains("matches no contacts rows")]
    assert len(unmatched) == planted.notes_unmatched + planted.notes_dangling_contact_id
    # The other held notes belong to a contact that is itself held, and say why.
    behind_contact = notes_held.drop(unmatched.index)
    assert behind_contact["reason"].str.contains(r"is not migrated: (?!None)").all()

    # A company value that names nothing ("Inc.", "-") costs the person only the link (issue 8, point 6).
    assert not quarantined["reason"].str.contains("does not name a company").any()
    issues = run.report("field_issues.csv")
    unlinked = issues[issues["reason"].str.contains("does not name a company: loaded without the link")]
    assert len(unlinked[unlinked["object"] == "people"]) == planted.unresolvable_company_values
    people = {p["allclientsId"]: p for p in fake_twenty.records("people")}
    assert all(people[k]["companyId"] is None for k in unlinked[unlinked["object"] == "people"]["source_key"])
    emails_in_twenty = {p["emails"]["primaryEmail"] for p in fake_twenty.records("people")}
    assert not any(re.search(r"@$|@@|^n/a$", e or "") for e in emails_in_twenty)
    assert not quarantined["reason"].str.contains("probable duplicate|email").any()


def test_a_bad_or_shared_email_never_costs_a_person(migrate, fake_twenty, export) -> None:
    _, planted = export
    run = migrate()
    issues = run.report("field_issues.csv")
    people = {p["allclientsId"]: p for p in fake_twenty.records("people")}

    shared = issues[issues["reason"].str.contains("already used by")]
    shared_people = shared[shared["object"] == "people"]
    assert len(shared_people) == planted.duplicate_emails
    for key, reason in zip(shared_people["source_key"], shared_people["reason"]):
        address = reason.split(" is already used")[0].split()[-1]
        assert people[key]["emails"]["additionalEmails"][0] == address
        assert people[key]["emails"]["primaryEmail"] == ""
    invalid = issues[(issues["field"] == "emails") & issues["reason"].str.contains("is not valid")]
    invalid_people = invalid[invalid["object"] == "people"]
    assert len(invalid_people) == planted.invalid_emails
    assert all(people[key]["invalidEmail"] for key in invalid_people["source_key"])


def test_notes_become_twenty_notes_targeted_at_their_person(migrate, fake_twenty) -> None:
    migrate()
    notes = {n["id"]: n for n in fake_twenty.records("notes")}
    people = {p["id"]: p for p in fake_twenty.records("people")}
    for target in fake_twenty.records("noteTargets"):
        note = notes[target["noteId"]]
        assert "[[System]]" not in note["bodyV2"]["markdown"]
        assert people[target["targetPersonId"]]["allclientsId"].startswith("people:")


def test_custom_fields_are_created_before_records_and_carry_source_values(migrate, fake_twenty) -> None:
    fake_twenty.clear_requests()
    migrate()
    paths = [r.path for r in fake_twenty.requests if r.method == "POST"]
    first_record_write = next(i for i, p in enumerate(paths) if not p.startswith("/rest/metadata"))
    assert all(p.startswith("/rest/metadata") for p in paths[:first_record_write])

    with _twenty(fake_twenty) as http:
        objects = {o["nameSingular"]: o for o in http.get("/rest/metadata/objects").json()["data"]}
    person_fields = {f["name"]: f for f in objects["person"]["fields"]}
    assert person_fields["allclientsId"]["isUnique"] is True
    assert person_fields["tags"]["type"] == "MULTI_SELECT" and person_fields["tags"]["options"]
    assert person_fields["invalidEmail"]["type"] == person_fields["phoneExtensions"]["type"] == "TEXT"
    assert person_fields["owner"]["type"] == "RELATION"
    people = fake_twenty.records("people")
    assert any(p["tags"] for p in people)
    # Twenty's own createdAt holds the AllClients AddDate (account time zone -> UTC).
    assert any(p["createdAt"] < "2020" for p in people)
    assert any(p["phoneExtensions"] for p in people)


def test_unknown_owners_get_the_fallback_member_and_keep_the_original(migrate, fake_twenty, export) -> None:
    member_id = fake_twenty.add_workspace_member("dana@brightpath.example", "Dana", "Reyes")
    run = migrate()
    admin = next(m["id"] for m in fake_twenty.records("workspaceMembers") if m["userEmail"] == ADMIN_EMAIL)
    people = fake_twenty.records("people")
    assert any(p["ownerId"] == member_id for p in people)
    unresolved = run.report("unresolved_owners.csv")
    assert len(unresolved) > 0
    by_key = {p["allclientsId"]: p for p in people}
    for row in unresolved.to_dict("records"):
        if row["source_key"] in by_key:
            assert by_key[row["source_key"]]["ownerId"] == admin
            assert by_key[row["source_key"]]["sourceOwner"] == row["owner"]


def test_rerunning_a_partition_writes_nothing_twice(migrate, fake_twenty) -> None:
    first = migrate()
    before = {o: len(fake_twenty.records(o)) for o in ("companies", "people", "notes", "noteTargets")}
    fake_twenty.clear_requests()
    second = migrate()
    assert first.success and second.success
    assert {o: len(fake_twenty.records(o)) for o in before} == before
    writes = [r for r in fake_twenty.requests if r.method in ("POST", "PATCH") and not r.path.startswith("/rest/metadata")]
    assert writes == []
    assert second.summary()["person"]["unchanged"] == before["people"]


def test_a_run_killed_during_load_finishes_on_rerun_with_nothing_missing_or_twice(migrate, fake_twenty) -> None:
    fake_twenty.fail_next(status=500, times=10_000, path_contains="/rest/batch/people")
    crashed = migrate()
    assert not crashed.success
    assert "allclients/load/company" in crashed.materialized()
    assert fake_twenty.records("notes") == []

    fake_twenty.clear_failures()
    resumed = migrate()
    assert resumed.success
    people = fake_twenty.records("people")
    keys = Counter(p["allclientsId"] for p in people)
    assert keys and max(keys.values()) == 1
    assert resumed.summary()["person"]["created"] == len(people)


def test_a_429_storm_is_survived(migrate, fake_twenty) -> None:
    # Twenty's own token bucket, tight, plus a burst of 429s on the writes whatever the pace.
    fake_twenty.set_rate_limit(per_minute=None, short_per_second=4)
    fake_twenty.fail_next(status=429, times=6, path_contains="/rest/batch/")
    run = migrate()
    fake_twenty.set_rate_limit(per_minute=None)
    assert run.success
    throttled = [r for r in fake_twenty.requests if r.status == 429]
    assert len(throttled) >= 6
    assert len(fake_twenty.records("noteTargets")) == len(fake_twenty.records("notes")) > 0


def test_a_bad_batch_record_is_rejected_alone_and_reported(migrate, fake_twenty, export) -> None:
    # A company already in the workspace, soft-deleted, holds a domain one of ours wants:
    # Twenty's unique index still covers it. Our record must not vanish silently.
    with _twenty(fake_twenty) as http:
        created = http.post("/rest/companies", json={"name": "Someone Else", "domainName": {"primaryLinkUrl": "https://acme.example"}})
        http.delete(f"/rest/companies/{created.json()['data']['createCompany']['id']}", params={"soft_delete": "true"})
    run = migrate()
    assert run.success
    accounting = _accounting(run)["companies"]
    assert accounting["balanced"]
    with Ledger(migrate.ledger_url) as ledger:
        operations = Counter(w["operation"] for w in ledger.writes(object="companies"))
    assert operations["restore"] + operations["rejected"] >= 1


def test_the_blocking_stage_check_stops_a_broken_export_before_any_write(migrate, fake_twenty, tmp_path) -> None:
    broken = tmp_path / "broken_export"
    generate_export(broken, rows=40, seed=5)
    contacts = (broken / "Contacts.csv").read_text(encoding="utf-8").splitlines()
    header = contacts[0].split(",")
    contact_id = header.index("ContactID")
    rows = [line.split(",") for line in contacts[1:]]
    # Blank every key: no row can become a record, far past max_quarantine_ratio.
    import csv
    import io

    parsed = list(csv.reader(io.StringIO("\n".join(contacts))))
    for row in parsed[1:]:
        row[contact_id] = ""
    out = io.StringIO()
    csv.writer(out).writerows(parsed)
    (broken / "Contacts.csv").write_text(out.getvalue(), encoding="utf-8")
    assert rows

    fake_twenty.clear_requests()
    run = migrate(export_dir=broken)
    assert not run.success
    assert not run.check("allclients/stage/person", "schema").passed
    assert not any(r.path.startswith("/rest/batch/people") for r in fake_twenty.requests)


def test_second_person_can_be_kept_on_the_first_instead_of_split(migrate, fake_twenty, export) -> None:
    _, planted = export
    run = migrate(settings={"second_person": "keep_on_first"})
    assert run.success
    people = fake_twenty.records("people")
    assert not any(p["allclientsId"].endswith("-other") for p in people)
    kept = [p for p in people if p.get("secondPersonName")]
    assert 0 < len(kept) <= planted.second_persons
    assert "people_other" not in _accounting(run)


def test_second_persons_are_split_into_their_own_people_by_default(migrate, fake_twenty, export) -> None:
    run = migrate()
    others = [p for p in fake_twenty.records("people") if p["allclientsId"].endswith("-other")]
    assert len(others) == _accounting(run)["people_other"]["loaded"] > 0
    primary = {p["allclientsId"]: p for p in fake_twenty.records("people")}
    for other in others:
        first = primary.get(other["allclientsId"].removesuffix("-other").replace("people_other", "people"))
        if first is not None:
            assert other["companyId"] == first["companyId"]
