"""Tests of the AllClients export generator.

The central test recounts every planted case from the written CSV files, independently of
the generator, and checks it against the returned ExportSummary: those numbers are what
migration runs get reconciled against.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from migration_pipeline.engine.transforms import InvalidValue, TransformContext, company_name_key, name_key
from migration_pipeline.sources.allclients import generate as gen
from migration_pipeline.sources.allclients.generate import ExportSummary, generate_export

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "sample_data" / "allclients"
EXPORT_FILES = ("Contacts.csv", "Notes.csv", "Users.csv", "migration_settings.yaml")

CONTACTS_HEADER = (
    "ContactID,TeamMemberID,FirstName,LastName,OtherFirstName,OtherLastName,Company,Website,"
    "Address,City,State,PostalCode,Phone1,Phone1Note,Phone2,Phone2Note,Phone3,Phone3Note,Phone4,"
    "Phone4Note,Email,OtherEmail,Birthday,OtherBirthday,Category,Category2,Source,Flags,Custom1,"
    "Custom2,Custom3,Custom4,AddDate,EditDate"
)
NOTES_HEADER = "ContactID,Email,FirstName,LastName,NoteDate,Note"
USERS_HEADER = "TeamMemberID,FirstName,LastName,Email"

CTX = TransformContext()
ADD_DATE_FORMAT = "%m/%d/%Y %I:%M:%S %p"
NOTE_DATE_FORMAT = "%m/%d/%Y %I:%M %p"
NO_LEADING_ZEROS = re.compile(r"^[1-9]\d?/[1-9]\d?/\d{4} [1-9]\d?:\d\d(:\d\d)? [AP]M$")


# --- helpers ------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def first_line(path: Path) -> str:
    with path.open(encoding="utf-8") as handle:
        return handle.readline().rstrip("\n")


def company_key(value: str) -> str | None:
    """None for blank; '' for a value that names no company."""
    try:
        return company_name_key((value or None,), CTX)
    except InvalidValue:
        return ""


def is_valid_email(value: str) -> bool:
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def email_key(value: str) -> str:
    return value.strip().lower()


def parses(value: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        return None


def is_valid_phone(value: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, "US"))
    except phonenumbers.NumberParseException:
        return False


def canonical_spellings(rows: int) -> set[str]:
    """The first (canonical) spelling of every company the generator can use for `rows`."""
    families = {spellings[0] for spellings, _domain in gen.COMPANY_FAMILIES}
    return families | {gen.pool_company(index)[0][0] for index in range(gen.pool_size(rows))}


def count_companies(contacts: list[dict[str, str]], counts: Counter[str]) -> None:
    spellings: dict[str, set[str]] = {}
    canonical = canonical_spellings(len(contacts))
    for contact in contacts:
        raw = contact["Company"]
        key = company_key(raw)
        if key is None:
            counts["blank_companies"] += 1
        elif key == "":
            counts["unresolvable_company_values"] += 1
        else:
            counts["contacts_with_company"] += 1
            counts["contacts_with_variant_spelling"] += raw not in canonical
            spellings.setdefault(key, set()).add(raw)
            counts["company_websites"] += bool(contact["Website"])
    counts["companies_distinct"] = len(spellings)
    counts["company_spelling_variants"] = sum(len(raws) for raws in spellings.values()) - len(spellings)


def count_emails(contacts: list[dict[str, str]], counts: Counter[str]) -> None:
    exact = Counter(contact["Email"] for contact in contacts if contact["Email"] and is_valid_email(contact["Email"]))
    counts["duplicate_emails"] = sum(n - 1 for n in exact.values())
    for contact in contacts:
        email, other = contact["Email"], contact["OtherEmail"]
        if not email:
            counts["missing_emails"] += 1
        elif not is_valid_email(email):
            counts["invalid_emails"] += 1
        elif email != email.strip().lower():
            counts["messy_emails"] += 1
        if other:
            assert is_valid_email(other), other
            counts["other_emails"] += 1
    # Apart from the planted exact duplicates, no two cells hold the same address.
    normalised = Counter(
        email_key(value)
        for contact in contacts
        for value in (contact["Email"], contact["OtherEmail"])
        if value and is_valid_email(value)
    )
    assert sum(n - 1 for n in normalised.values()) == counts["duplicate_emails"]


def count_dates(contacts: list[dict[str, str]], counts: Counter[str]) -> None:
    for contact in contacts:
        added, edited = (parses(contact[column], ADD_DATE_FORMAT) for column in ("AddDate", "EditDate"))
        for moment, column in ((added, "AddDate"), (edited, "EditDate")):
            if moment is None:
                counts["bad_dates"] += 1
            else:
                assert NO_LEADING_ZEROS.match(contact[column]), contact[column]
                assert moment <= gen.EXPORT_TIME
        if added and edited:
            assert edited >= added, contact["ContactID"]


def count_phones(contacts: list[dict[str, str]], counts: Counter[str]) -> None:
    for contact in contacts:
        for slot in range(1, 5):
            phone = contact[f"Phone{slot}"]
            if not phone:
                assert not contact[f"Phone{slot}Note"]
                continue
            counts["phones"] += 1
            if not is_valid_phone(phone):
                counts["invalid_phones"] += 1
                continue
            counts["international_phones"] += phone.startswith("+")
            counts["phones_with_extension"] += phonenumbers.parse(phone, "US").extension is not None


def count_other_fields(contacts: list[dict[str, str]], user_ids: set[str], counts: Counter[str]) -> None:
    for contact in contacts:
        counts["contacts"] += 1
        counts["second_persons"] += bool(contact["OtherFirstName"])
        tags = [tag.strip() for tag in contact["Flags"].split(",") if tag.strip()]
        counts["flag_case_duplicates"] += len({t.lower() for t in tags}) < len(tags)
        if contact["Custom2"]:
            try:
                float(contact["Custom2"].replace("$", "").replace(",", ""))
            except ValueError:
                counts["invalid_custom_numbers"] += 1
        owner = contact["TeamMemberID"]
        if owner != "0" and owner not in user_ids:
            counts["unknown_owner_contacts"] += 1
        counts["non_member_owner_contacts"] += owner == gen.NON_MEMBER_TEAM_MEMBER_ID


def count_notes(contacts: list[dict[str, str]], notes: list[dict[str, str]], counts: Counter[str]) -> None:
    """Classify notes the way the migration must: ContactID, else Email, else first + last name."""
    by_id = {contact["ContactID"]: contact for contact in contacts}
    emails = Counter(
        email_key(contact[column]) for contact in contacts for column in ("Email", "OtherEmail") if contact[column]
    )
    names = Counter(name_key((contact["FirstName"], contact["LastName"]), CTX) for contact in contacts)
    other_names = {
        name_key((contact["OtherFirstName"], contact["OtherLastName"]), CTX)
        for contact in contacts
        if contact["OtherFirstName"]
    }
    for note in notes:
        counts["notes"] += 1
        counts["notes_multiline"] += "\n" in note["Note"]
        counts["notes_with_prefix"] += note["Note"].startswith(("[[System]] ", "[[Icon:"))
        written = parses(note["NoteDate"], NOTE_DATE_FORMAT)
        assert written is not None and written <= gen.EXPORT_TIME, note["NoteDate"]
        name = name_key((note["FirstName"], note["LastName"]), CTX)
        if note["ContactID"]:
            if note["ContactID"] in by_id:
                counts["notes_by_contact_id"] += 1
                added = parses(by_id[note["ContactID"]]["AddDate"], ADD_DATE_FORMAT)
                assert added is None or written >= added.replace(second=0)
            else:
                counts["notes_dangling_contact_id"] += 1
                assert not note["Email"] and names[name] == 0
        elif note["Email"]:
            matches = emails[email_key(note["Email"])]
            assert matches <= 1, note  # fallbacks never hit an ambiguous address
            counts["notes_by_email_fallback" if matches else "notes_unmatched"] += 1
            if not matches:
                assert names[name] == 0 and name not in other_names
        elif name is not None and names[name] == 1:
            assert name not in other_names
            counts["notes_by_name_fallback"] += 1
        else:
            assert names[name] == 0 and name not in other_names
            counts["notes_unmatched"] += 1


def recount(export_dir: Path) -> dict[str, int]:
    contacts = read_rows(export_dir / "Contacts.csv")
    notes = read_rows(export_dir / "Notes.csv")
    users = read_rows(export_dir / "Users.csv")
    counts: Counter[str] = Counter(users=len(users))
    count_companies(contacts, counts)
    count_emails(contacts, counts)
    count_dates(contacts, counts)
    count_phones(contacts, counts)
    count_other_fields(contacts, {user["TeamMemberID"] for user in users}, counts)
    count_notes(contacts, notes, counts)
    return {f.name: counts[f.name] for f in fields(ExportSummary)}


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExportSummary]:
    out = tmp_path_factory.mktemp("allclients-default")
    return out, generate_export(out)


# --- tests --------------------------------------------------------------------------------


def test_headers_are_exactly_the_documented_ones(default_export: tuple[Path, ExportSummary]) -> None:
    out, _ = default_export
    assert first_line(out / "Contacts.csv") == CONTACTS_HEADER
    assert first_line(out / "Notes.csv") == NOTES_HEADER
    assert first_line(out / "Users.csv") == USERS_HEADER
    assert ",".join(gen.CONTACT_COLUMNS) == CONTACTS_HEADER


@pytest.mark.parametrize(("rows", "seed"), [(300, 7), (2_000, 11)])
def test_summary_matches_an_independent_recount(tmp_path: Path, rows: int, seed: int) -> None:
    summary = generate_export(tmp_path, rows=rows, seed=seed)
    assert recount(tmp_path) == summary.as_dict()


def test_default_export_plants_every_case(default_export: tuple[Path, ExportSummary]) -> None:
    _, summary = default_export
    assert summary.contacts == 300 and summary.users == 5
    assert 450 <= summary.notes <= 750  # about two notes per contact
    empty = [name for name, value in summary.as_dict().items() if value == 0]
    assert empty == [], f"cases not planted in the default sample: {empty}"
    assert summary.notes == (
        summary.notes_by_contact_id + summary.notes_by_email_fallback + summary.notes_by_name_fallback
        + summary.notes_unmatched + summary.notes_dangling_contact_id
    )  # fmt: skip


def test_default_export_contains_the_named_spellings_and_unicode(default_export: tuple[Path, ExportSummary]) -> None:
    out, _ = default_export
    contacts = read_rows(out / "Contacts.csv")
    companies = {contact["Company"] for contact in contacts}
    for spellings, _domain in gen.COMPANY_FAMILIES:
        assert set(spellings) <= companies, spellings  # every variant of every family
    text = (out / "Contacts.csv").read_text(encoding="utf-8")
    assert re.search(r"[^\x00-\x7f]", text)
    assert any(not contact["FirstName"].isascii() for contact in contacts)
    users = read_rows(out / "Users.csv")
    assert users[0]["Email"] == gen.ACCOUNT_OWNER.email
    assert gen.NON_MEMBER_USER_EMAIL in {user["Email"] for user in users}
    assert any(contact["TeamMemberID"] == "0" for contact in contacts)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_export(tmp_path / "a", rows=800, seed=3)
    second = generate_export(tmp_path / "b", rows=800, seed=3)
    other = generate_export(tmp_path / "c", rows=800, seed=4)
    assert first == second
    for name in EXPORT_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "Contacts.csv").read_bytes() != (tmp_path / "c" / "Contacts.csv").read_bytes()
    assert first != other


def test_output_does_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    serial = generate_export(tmp_path / "serial", rows=2_500, seed=5, workers=1, chunk_rows=1_000)
    parallel = generate_export(tmp_path / "parallel", rows=2_500, seed=5, workers=2, chunk_rows=1_000)
    assert serial == parallel
    for name in EXPORT_FILES:
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "parallel" / name).read_bytes()
    assert not list((tmp_path / "parallel").glob(".parts-*"))  # part files cleaned up
    assert recount(tmp_path / "parallel") == parallel.as_dict()  # ids, emails, names unique across chunks


def test_streams_20k_rows_quickly_in_flat_memory(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate_export(tmp_path / "timed", rows=20_000, seed=1, workers=1)
    elapsed = time.perf_counter() - started
    assert summary.contacts == 20_000
    assert elapsed < 20, f"20,000 rows took {elapsed:.1f}s"  # ~1s on a laptop; generous for CI

    tracemalloc.start()
    try:
        generate_export(tmp_path / "traced", rows=20_000, seed=1, workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB: rows are not being streamed"


def test_bundled_sample_is_the_default_export(default_export: tuple[Path, ExportSummary]) -> None:
    out, _ = default_export
    for name in EXPORT_FILES:
        assert (SAMPLE_DIR / name).read_bytes() == (out / name).read_bytes(), (
            f"sample_data/allclients/{name} is stale: regenerate with "
            "python -m migration_pipeline.sources.allclients.generate --out sample_data/allclients"
        )


def test_company_families_and_pool_normalise_as_planted() -> None:
    family_keys = []
    for spellings, _domain in gen.COMPANY_FAMILIES:
        keys = {company_key(spelling) for spelling in spellings}
        assert len(keys) == 1 and "" not in keys, spellings
        family_keys.append(keys.pop())
    assert len(set(family_keys)) == len(family_keys)
    pool_keys = set()
    for index in range(3_000):
        spellings, _domain = gen.pool_company(index)
        keys = {company_key(spelling) for spelling in spellings}
        assert len(keys) == 1, spellings
        assert len(set(spellings)) == len(spellings)
        pool_keys |= keys
    assert len(pool_keys) == 3_000 and not pool_keys & set(family_keys)
    assert all(company_key(value) == "" for value in gen.UNRESOLVABLE_COMPANY_VALUES)


def test_name_lists_stay_unique_after_folding() -> None:
    # The name-fallback guarantee (exactly one contact matches) relies on this.
    for names in (gen.FIRST_NAMES, gen.LAST_NAMES):
        folded = [name_key((name,), CTX) for name in names]
        assert len(set(folded)) == len(folded)
        assert not any("-" in name or " " in name for name in names)


def test_generated_phone_formats_are_valid_numbers() -> None:
    assert all(is_valid_phone(number) for number in gen._US_PHONES)
    for template, size in gen.INTERNATIONAL_PHONE_FORMATS:
        for number in (0, size // 2, size - 1):
            assert is_valid_phone(template.format(number)), template
    assert not any(is_valid_phone(garbage) for garbage in gen.GARBAGE_PHONES)


def test_cli_writes_files_and_prints_the_summary(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "migration_pipeline.sources.allclients.generate",
         "--out", str(tmp_path), "--rows", "50", "--seed", "2"],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    )  # fmt: skip
    printed = json.loads(result.stdout)
    assert printed["contacts"] == 50
    assert printed == generate_export(tmp_path / "again", rows=50, seed=2).as_dict()
    assert {path.name for path in tmp_path.iterdir()} >= set(EXPORT_FILES)
