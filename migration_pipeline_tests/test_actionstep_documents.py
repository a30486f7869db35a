"""Actionstep documents through Dagster into the fake Twenty, over real HTTP on loopback: each
document becomes a Note on its opportunity (tags header, file, summary) and its file an
Attachment on that note, downloaded part by part from the fake Actionstep and uploaded with
Twenty's two steps. Checked against the generated data and the bytes the fake Actionstep
serves, not against the pipeline's own output."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.mapping import TWENTY_MAX_UPLOAD_BYTES
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.lifecycle.rollback import roll_back
from migration_pipeline_tests.fakes import actionstep as actionstep_fake
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, document_content
from migration_pipeline_tests.test_actionstep_e2e import (  # noqa: F401  (fixtures)
    _actionstep_server,
    _source,
    fake_actionstep,
    migrate,
)

PART_BYTES = 200_000  # smaller than most files, so downloads take several parts
LAYERS = ("extract", "stage", "prepare", "load", "report", "verify")


@pytest.fixture
def documents(fake_actionstep: FakeActionstep) -> dict[str, Any]:
    """The generated documents, split by what must become of them."""
    fake_actionstep.file_part_bytes = PART_BYTES
    migrated = _source(fake_actionstep)["migrated"]
    every = fake_actionstep.records("actiondocuments")
    live = [d for d in every if d["isDeleted"] == "F"]
    kept = [d for d in live if str(d["links"]["action"]) in migrated]
    return {
        "every": every,
        "deleted": [d for d in every if d["isDeleted"] == "T"],
        "held": [d for d in live if str(d["links"]["action"]) not in migrated],
        "attachable": [d for d in kept if d["fileSize"] <= TWENTY_MAX_UPLOAD_BYTES],
        "too_large": [d for d in kept if d["fileSize"] > TWENTY_MAX_UPLOAD_BYTES],
    }


def _notes(fake_twenty: Any) -> dict[str, dict[str, Any]]:
    return {n["actionstepId"]: n for n in fake_twenty.records("notes") if n["actionstepId"].startswith("documents:")}


def _attachments_by_note(fake_twenty: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for attachment in fake_twenty.records("attachments"):
        found.setdefault(attachment["targetNoteId"], []).append(attachment)
    return found


def test_every_document_is_a_note_on_its_opportunity_with_its_file_attached(
    migrate, fake_twenty, fake_actionstep: FakeActionstep, documents: dict[str, Any]
) -> None:
    assert all(documents[case] for case in ("attachable", "too_large", "held", "deleted"))  # every case occurs
    run = migrate(layers=LAYERS, source={"file_part_bytes": PART_BYTES})
    assert run.success, run.result.all_events[-1]
    assert (run.output / "verify" / "field_diff.csv").read_text(encoding="utf-8").splitlines()[1:] == []
    for check in ("counts_match", "field_totals_match"):
        assert run.check("actionstep/verify/reconciliation", check).passed, check

    notes = _notes(fake_twenty)
    opportunities = {o["actionstepId"].split(":", 1)[1]: o["id"] for o in fake_twenty.records("opportunities")}
    targets: dict[str, set[str]] = {}
    for junction in fake_twenty.records("noteTargets"):
        targets.setdefault(junction["noteId"], set()).add(junction["targetOpportunityId"])
    attachments = _attachments_by_note(fake_twenty)
    stored = fake_twenty.files

    for document in documents["attachable"] + documents["too_large"]:
        note = notes[f"documents:{document['id']}"]
        body = note["bodyV2"]["markdown"]
        tags = document["keywords"] or "none"
        assert note["title"] == document["name"]
        assert body.startswith(f"- **Tags:** {tags}\n- **File:** {document['name']}.pdf (")
        if document["summary"]:
            assert document["summary"] in body
        assert targets[note["id"]] == {opportunities[str(document["links"]["action"])]}

    for document in documents["attachable"]:
        note = notes[f"documents:{document['id']}"]
        [attachment] = attachments[note["id"]]
        assert attachment["name"] == f"{document['name']}.pdf"
        [file] = attachment["file"]
        assert stored[file["fileId"]] == document_content(document)
        downloaded = httpx.get(file["url"], timeout=10)  # what a Twenty user gets
        assert downloaded.status_code == 200 and downloaded.content == document_content(document)
        parts = [r.query["part_number"] for r in fake_actionstep.file_requests(document["file"])]
        assert parts == [str(n) for n in range(1, math.ceil(document["fileSize"] / PART_BYTES) + 1)]
        assert "File not attached" not in note["bodyV2"]["markdown"]

    listed = run.report("files_not_attached.csv").set_index("source_row")
    for document in documents["too_large"]:
        note = notes[f"documents:{document['id']}"]
        reason = (f"file {document['name']}.pdf is 25.0 MB, over Twenty's 10.0 MB upload limit: "
                  f"download it from Actionstep (document {document['id']})")
        assert note["bodyV2"]["markdown"].endswith(f"**File not attached:** {reason}")
        assert note["id"] not in attachments
        assert fake_actionstep.file_requests(document["file"]) == []  # never downloaded
        assert listed.loc[str(document["id"]), "reason"] == reason
        assert listed.loc[str(document["id"]), "disposition"] == "excluded"
    assert len(listed) == len(documents["too_large"])

    quarantined = {q["source_row"]: q["reason"] for q in run.report("quarantined.csv").to_dict("records")
                   if q["object"] == "documents"}
    for document in documents["held"]:
        assert f"documents:{document['id']}" not in notes
        assert "no opportunity to attach to" in quarantined[str(document["id"])]
        assert fake_actionstep.file_requests(document["file"]) == []
    assert len(fake_twenty.records("attachments")) == len(documents["attachable"])
    # A document deleted in Actionstep is excluded with the reason: no note, no file fetched.
    excluded = {x["source_row"]: x["reason"] for x in run.report("excluded.csv").to_dict("records")
                if x["object"] == "documents"}
    for document in documents["deleted"]:
        assert f"documents:{document['id']}" not in notes
        assert excluded[str(document["id"])] == "deleted in Actionstep (isDeleted)"
        assert fake_actionstep.file_requests(document["file"]) == []

    # Every document row accounted for: its note, then its file.
    summary = run.summary()
    notes_accounting = summary["note"]["accounting"]["documents"]
    files_accounting = summary["attachment"]["accounting"]["documents_files"]
    assert notes_accounting == {"source_rows": len(documents["every"]), "loaded": len(notes),
                                "quarantined": len(documents["held"]), "excluded": len(documents["deleted"]),
                                "balanced": True}
    assert files_accounting == {"source_rows": len(notes), "loaded": len(documents["attachable"]),
                                "quarantined": 0, "excluded": len(documents["too_large"]), "balanced": True}
    assert summary["attachment"]["created"] == len(documents["attachable"])


def test_a_rerun_uploads_nothing_again_and_rollback_removes_the_attachments(
    migrate, fake_twenty, fake_actionstep: FakeActionstep, documents: dict[str, Any], tmp_path: Path
) -> None:
    first = migrate(source={"file_part_bytes": PART_BYTES})
    assert first.success, first.result.all_events[-1]
    before = fake_twenty.records("attachments")
    assert len(before) == len(documents["attachable"])
    fake_twenty.clear_requests()
    fake_actionstep.clear_requests()

    again = migrate(source={"file_part_bytes": PART_BYTES})
    assert again.success, again.result.all_events[-1]
    assert fake_actionstep.file_requests() == []  # nothing downloaded
    assert not [r for r in fake_twenty.requests if r.path == "/metadata" or "attachments" in r.path]
    assert fake_twenty.records("attachments") == before
    assert again.summary()["attachment"]["unchanged"] == len(documents["attachable"])
    assert again.summary()["attachment"]["accounting"]["documents_files"]["balanced"]

    writer = TwentyWriter(api_url=fake_twenty.base_url, api_key=fake_twenty.api_key)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger, writer.client() as client:
        result = roll_back(client, ledger)
    assert result.complete and result.totals()["destroy"] > 0
    assert fake_twenty.records("attachments", include_deleted=True) == []
    destroyed = [r for r in fake_twenty.requests if r.method == "DELETE" and r.path == "/rest/attachments"]
    assert destroyed and all(r.status == 200 for r in destroyed)  # destroyed as attachments, before their notes

    # Migrating after the rollback uploads the files anew.
    third = migrate(source={"file_part_bytes": PART_BYTES})
    assert third.success, third.result.all_events[-1]
    assert len(fake_twenty.records("attachments")) == len(documents["attachable"])


def test_files_the_source_or_twenty_refuse_are_held_and_their_notes_still_migrate(
    migrate, fake_twenty, fake_actionstep: FakeActionstep, documents: dict[str, Any]
) -> None:
    by_size = sorted(documents["attachable"], key=lambda d: d["fileSize"])
    gone, big = by_size[0], by_size[-1]
    fake_actionstep.fail_next(404, times=1, path_contains=f"files/{gone['file']}")  # deleted in Actionstep
    fake_twenty.max_upload_bytes = big["fileSize"] - 1  # this server takes less than Twenty's default
    try:
        run = migrate(source={"file_part_bytes": PART_BYTES})
    finally:
        fake_twenty.max_upload_bytes = TWENTY_MAX_UPLOAD_BYTES
    assert run.success, run.result.all_events[-1]

    notes = _notes(fake_twenty)
    attachments = _attachments_by_note(fake_twenty)
    refused = [d for d in documents["attachable"] if d["fileSize"] > big["fileSize"] - 1]
    for document in (gone, *refused):
        assert notes[f"documents:{document['id']}"]["id"] not in attachments
    listed = run.report("files_not_attached.csv").set_index("source_row")
    assert "file not downloaded from the source: Actionstep rejected GET files/" in listed.loc[str(gone["id"]), "reason"]
    assert "HTTP 404" in listed.loc[str(gone["id"]), "reason"]
    for document in refused:
        assert listed.loc[str(document["id"]), "reason"].startswith("rejected by Twenty: upload refused: File truncated")
        assert listed.loc[str(document["id"]), "disposition"] == "quarantined"
    assert len(attachments) == len(documents["attachable"]) - 1 - len(refused)
    files_accounting = run.summary()["attachment"]["accounting"]["documents_files"]
    assert files_accounting["quarantined"] == 1 + len(refused) and files_accounting["balanced"]
    assert run.check("actionstep/load/attachment", "rows_reconcile").passed


def test_a_sample_whose_uploads_twenty_all_refuses_fails_its_check_and_lists_them(
    migrate, fake_twenty, documents: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actionstep_fake, "PDF_HEADER", b"not a PDF ")  # .pdf names, other content
    run = migrate(run_key="sample-20261122T1000Z", source={"file_part_bytes": PART_BYTES})

    check = run.check("actionstep/load/attachment", "files_uploaded")
    assert not check.passed and check.metadata["uploaded"].value == 0
    assert check.metadata["upload_refused"].value > 0
    listed = run.report("files_not_attached.csv")
    refused = listed[listed["reason"].str.contains("File content does not match its extension")]
    assert len(refused) == check.metadata["upload_refused"].value
    assert set(refused["disposition"]) == {"quarantined"}
    assert fake_twenty.records("attachments") == []
