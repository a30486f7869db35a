"""Reading export files: only keys are required; encodings and delimiters are detected.

The end-to-end test migrates, through Dagster, an AllClients export in the headers that
shared/sources/allclients.md proposes (no TeamMemberID, Website or Custom4, notes without
names, no Users.csv), written with a BOM and `;` delimiters."""

from __future__ import annotations

import csv
import shutil
import io
from pathlib import Path

import dagster as dg
import pytest

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.engine.extract import read_mapped_object
from migration_pipeline.engine.mapping import load_mapping
from migration_pipeline.schemas.registry import source_schema
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.harness import ADMIN_EMAIL, run_migration

MAPPING = load_mapping(MAPPINGS_DIR / "allclients__twenty.yaml")
# shared/sources/allclients.md, "Proposed fixture CSV headers" (Custom1.. up to Custom3 here).
PROPOSED_CONTACT_HEADERS = [
    "ContactID", "FirstName", "LastName", "OtherFirstName", "OtherLastName", "Company", "Address", "City",
    "State", "PostalCode", "Phone1", "Phone1Note", "Phone2", "Phone2Note", "Phone3", "Phone3Note", "Phone4",
    "Phone4Note", "Email", "OtherEmail", "Birthday", "OtherBirthday", "Category", "Category2", "Source", "Flags",
    "Custom1", "Custom2", "Custom3", "AddDate", "EditDate",
]  # fmt: skip
PROPOSED_NOTE_HEADERS = ["ContactID", "Email", "NoteDate", "Note"]


def _read(folder: Path, name: str = "contacts"):
    return read_mapped_object(folder, MAPPING, name, source_schema("allclients", name))


def _write(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> None:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))


@pytest.mark.parametrize(("encoding", "delimiter"), [
    ("utf-8", ","), ("utf-8-sig", ","), ("utf-8-sig", ";"), ("cp1252", ";"), ("latin-1", "\t"), ("cp1252", "|"),
])
def test_exports_in_common_encodings_and_delimiters_read_the_same(tmp_path: Path, encoding: str, delimiter: str) -> None:
    rows = [["ContactID", "FirstName", "LastName", "Company"],
            ["1", "Zoë", "Müller", "Café Crème; Söhne"], ["2", "José", "Ñúñez", "Façade, Ltd"]]
    _write(tmp_path / "Contacts.csv", rows, encoding=encoding, delimiter=delimiter)

    read = _read(tmp_path)

    assert read.delimiter == delimiter
    assert read.frame[["ContactID", "FirstName", "LastName", "Company"]].values.tolist() == [r for r in rows[1:]]
    assert list(read.frame.columns[:1]) == ["ContactID"]  # no BOM left in the first header


def test_a_declared_encoding_and_delimiter_win_over_detection(tmp_path: Path) -> None:
    _write(tmp_path / "Contacts.csv", [["ContactID", "LastName"], ["1", "Ångström"]], encoding="latin-1", delimiter=";")
    spec = MAPPING.source.objects["contacts"].model_copy(update={"encoding": "latin-1", "delimiter": ";"})
    mapping = MAPPING.model_copy(update={"source": MAPPING.source.model_copy(
        update={"objects": {**MAPPING.source.objects, "contacts": spec}})})

    read = read_mapped_object(tmp_path, mapping, "contacts", source_schema("allclients", "contacts"))

    assert (read.encoding, read.delimiter, read.frame.loc[0, "LastName"]) == ("latin-1", ";", "Ångström")


def test_missing_optional_columns_are_blank_with_a_warning(tmp_path: Path) -> None:
    _write(tmp_path / "Contacts.csv", [["ContactID", "FirstName"], ["1", "Ada"]])

    read = _read(tmp_path)

    assert read.frame.loc[0, "TeamMemberID"] == "" and read.frame.loc[0, "Email"] == ""
    (warning,) = read.warnings
    assert warning.startswith("Contacts.csv has no column(s) TeamMemberID, LastName")


def test_a_missing_key_column_or_required_file_stops_with_a_clear_message(tmp_path: Path) -> None:
    _write(tmp_path / "Contacts.csv", [["FirstName"], ["Ada"]])
    with pytest.raises(dg.Failure, match="lacks the column.s. ContactID, which the mapping needs as keys"):
        _read(tmp_path)
    with pytest.raises(dg.Failure, match="Notes.csv not found"):
        _read(tmp_path, "notes")


def test_a_missing_lookup_file_is_read_as_empty_with_a_warning(tmp_path: Path) -> None:
    read = _read(tmp_path, "users")

    assert read.frame.empty and {"TeamMemberID", "Email"} <= set(read.frame.columns)
    assert read.warnings == [f"Users.csv not found in {tmp_path}: read as empty (optional: only looked up)"]


def test_an_unreadable_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "Contacts.csv").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(dg.Failure, match="Save it as UTF-8, or declare its `encoding:` in the mapping"):
        _read(tmp_path)


@pytest.fixture
def proposed_export(tmp_path: Path) -> Path:
    """The generated export cut down to the proposed headers: BOM, `;`, no Users.csv."""
    full, folder = tmp_path / "full", tmp_path / "proposed"
    generate_export(full, rows=40, seed=3)
    folder.mkdir()
    for name, headers in (("Contacts.csv", PROPOSED_CONTACT_HEADERS), ("Notes.csv", PROPOSED_NOTE_HEADERS)):
        with (full / name).open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
        _write(folder / name, [headers] + [[row[h] for h in headers] for row in rows], encoding="utf-8-sig",
               delimiter=";")
    shutil.copy(full / "migration_settings.yaml", folder)  # the account's time zone, stated as for any export
    return folder


def test_an_export_in_the_proposed_headers_migrates_with_warnings(fake_twenty, proposed_export: Path,
                                                                  tmp_path: Path) -> None:
    run = run_migration(instance=dg.DagsterInstance.ephemeral(), fake=fake_twenty, export_dir=proposed_export,
                        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", output_dir=tmp_path / "out")

    assert run.success, [e.message for e in run.result.all_events if e.is_failure]
    contacts = run.check("allclients/extract/contacts", "schema")
    assert not contacts.passed and contacts.severity == dg.AssetCheckSeverity.WARN
    assert "TeamMemberID, Website, Custom4" in contacts.metadata["warnings"].value[0]
    users = run.check("allclients/extract/users", "schema")
    assert "Users.csv not found" in users.metadata["warnings"].value[0]
    # Every owner is the fallback member; every row accounted for.
    admin = next(m["id"] for m in fake_twenty.records("workspaceMembers") if m["userEmail"] == ADMIN_EMAIL)
    people = fake_twenty.records("people")
    assert people and {p["ownerId"] for p in people} == {admin}
    summary = run.summary()
    assert all(acc["balanced"] for obj in summary.values() for acc in obj["accounting"].values())
    assert summary["note"]["created"] > 0
    # The run report says what the export lacked.
    warnings = (run.output / "report" / "warnings.txt").read_text(encoding="utf-8").splitlines()
    assert len(warnings) == 3 and any("Users.csv not found" in w for w in warnings)
