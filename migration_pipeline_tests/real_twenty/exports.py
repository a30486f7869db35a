"""AllClients exports for the real-server suite, made from the bundled sample.

- `headers_only_export`: the export in the headers `../shared/sources/allclients.md` proposes
  (no TeamMemberID, Website or Custom4 column, Notes without names, no Users.csv): issue 8,
  point 8. Shared with other tests: it only drops columns and files, so what it holds is the
  bundled sample's own data.
- `delta_export`: the same export a little later: a few contacts renamed, a few added with a note.
"""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

from migration_pipeline.engine.run_settings import SETTINGS_FILE  # the account's stated time zone, beside the export
from migration_pipeline.resources import PROJECT_ROOT

BUNDLED_SAMPLE = PROJECT_ROOT / "sample_data" / "allclients"
FILES = ("Contacts.csv", "Notes.csv", "Users.csv")
# Columns allclients.md does not propose, and the file it does not mention.
NOT_PROPOSED = {"Contacts.csv": ("TeamMemberID", "Website", "Custom4"), "Notes.csv": ("FirstName", "LastName")}
NOT_PROPOSED_FILES = ("Users.csv",)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def headers_only_export(out: Path, source: Path = BUNDLED_SAMPLE) -> Path:
    """`source` without the columns and files the proposed headers lack."""
    for name in FILES:
        if name in NOT_PROPOSED_FILES or not (source / name).exists():
            continue
        header, rows = read_csv(source / name)
        write_csv(out / name, [c for c in header if c not in NOT_PROPOSED.get(name, ())], rows)
    _carry_settings(source, out)
    return out


def copy_export(source: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    _carry_settings(source, out)
    return out


def _carry_settings(source: Path, out: Path) -> None:
    if (source / SETTINGS_FILE).exists():
        shutil.copy(source / SETTINGS_FILE, out / SETTINGS_FILE)


def _account_time(moment: datetime) -> str:
    """How AllClients writes AddDate/EditDate: 9/12/2021 4:29:34 PM."""
    return f"{moment.month}/{moment.day}/{moment.year} {moment.strftime('%I:%M:%S %p').lstrip('0')}"


def delta_export(source: Path, out: Path, renamed: int = 3, added: int = 2) -> dict[str, list[str]]:
    """`source` a little later: the last names of `renamed` contacts (with a first name, no second
    person) changed, one contact's company (and website) and second email removed (a rerun must clear them in
    Twenty: issue 8, point 5), `added` new contacts each with one note. Returns the contact ids."""
    edited = _account_time(datetime(2026, 11, 22, 10, 30))
    header, contacts = read_csv(source / "Contacts.csv")
    candidates = [c for c in contacts if c.get("FirstName") and not c.get("OtherFirstName")]
    changed = [c["ContactID"] for c in candidates[-renamed:]]
    cleared = next(c["ContactID"] for c in candidates if c.get("Company") and c.get("OtherEmail"))
    for contact in contacts:
        if contact["ContactID"] in changed:
            contact.update(LastName=f"{contact['LastName']}-Delta")
        if contact["ContactID"] == cleared:
            contact.update({column: "" for column in ("Company", "Website", "OtherEmail") if column in contact})
        if contact["ContactID"] in (*changed, cleared) and "EditDate" in contact:
            contact["EditDate"] = edited
    first_new = max(int(c["ContactID"]) for c in contacts) + 1
    new = [{**dict.fromkeys(header, ""), "ContactID": str(first_new + n), "FirstName": "Nova",
            "LastName": f"Arrival{n}", "Company": f"Delta Works {n}", "Email": f"nova{n}@deltaworks{n}.example",
            "AddDate": edited, "EditDate": edited} for n in range(added)]
    write_csv(out / "Contacts.csv", header, contacts + new)
    note_header, notes = read_csv(source / "Notes.csv")
    new_notes = [{**dict.fromkeys(note_header, ""), "ContactID": c["ContactID"], "Email": c["Email"],
                  "FirstName": c["FirstName"], "LastName": c["LastName"], "NoteDate": "11/22/2026 10:30 AM",
                  "Note": f"Delta note for {c['FirstName']} {c['LastName']}"} for c in new]
    write_csv(out / "Notes.csv", note_header, notes + new_notes)
    if (source / "Users.csv").exists():
        shutil.copy(source / "Users.csv", out / "Users.csv")
    _carry_settings(source, out)
    return {"renamed": changed, "cleared": [cleared], "added": [c["ContactID"] for c in new]}
