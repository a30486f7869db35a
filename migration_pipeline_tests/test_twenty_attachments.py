"""The attachment load against the fake Twenty over loopback: Twenty's two steps (a GraphQL
multipart upload into `attachment.file`, then the attachment record naming the file), ledgered;
uploads rate limited and retried like every write; a file the source cannot give or Twenty
refuses is held with the reason while the others land. The source is a recording double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migration_pipeline.destinations.twenty.attachments import SourceFile, file_field_id, load_attachments
from migration_pipeline.destinations.twenty.client import TwentyClient, TwentyRequestError
from migration_pipeline.destinations.twenty.loader import LoadRecord
from migration_pipeline.engine.files import FileUnavailable
from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.ledger import Ledger
from migration_pipeline_tests.test_twenty_writer import connect

RUN = "full-20261122T1000Z"
LIMIT = 10 * 1024 * 1024


class RecordingSource:
    """A `FileDownloader` serving fixed contents; `gone` references raise FileUnavailable."""

    def __init__(self, contents: dict[str, bytes], gone: tuple[str, ...] = ()) -> None:
        self.contents, self.gone = contents, gone
        self.asked: list[str] = []

    def download_file(self, reference: str, size: int | None) -> bytes:
        self.asked.append(reference)
        if reference in self.gone:
            raise FileUnavailable(f"{reference} was deleted")
        return self.contents[reference]


@pytest.fixture
def client(fake_twenty: Any) -> Iterator[TwentyClient]:
    with connect(fake_twenty) as opened:
        yield opened


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(str(tmp_path / "ledger.sqlite")) as opened:
        yield opened


def _documents(client: TwentyClient, contents: dict[str, bytes]) -> list[tuple[LoadRecord, SourceFile]]:
    """One note per file, and the attachment records (payload without `file`) of the files."""
    notes = client.create_batch("notes", [{"title": f"Document {ref}"} for ref in contents])
    return [
        (LoadRecord(f"documents:{ref}#file", {"name": f"{ref}.txt", "targetNoteId": note["id"]}),
         SourceFile(ref, len(content)))
        for (ref, content), note in zip(contents.items(), notes)
    ]


def _load(client: TwentyClient, ledger: Ledger, records: list[tuple[LoadRecord, SourceFile]],
          source: RecordingSource, max_bytes: int = LIMIT) -> Any:
    return load_attachments(client, ledger, RUN, records, source, identity_fields=("targetNoteId", "name"),
                            max_bytes=max_bytes)


def test_files_are_uploaded_then_attached_to_their_notes_and_never_twice(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    contents = {f"ref{n}": f"file {n} ".encode() * (n + 1) for n in range(3)}
    records = _documents(client, contents)
    source = RecordingSource(contents)
    fake_twenty.clear_requests()

    outcome = _load(client, ledger, records, source)

    assert (outcome.created, outcome.rejected, outcome.not_downloaded) == (3, [], [])
    assert source.asked == list(contents)
    calls = [(r.method, r.path) for r in fake_twenty.requests]
    assert calls == [("GET", "/rest/metadata/objects")] + [("POST", "/metadata")] * 3 + [
        ("POST", "/rest/batch/attachments")]  # the field id once, one upload per file, one batch
    attachments = {a["targetNoteId"]: a for a in fake_twenty.records("attachments")}
    for record, source_file in records:
        attachment = attachments[record.payload["targetNoteId"]]
        assert attachment["name"] == record.payload["name"]
        [file] = attachment["file"]
        assert file["label"] == record.payload["name"]
        assert fake_twenty.files[file["fileId"]] == contents[source_file.reference]
    assert {w["operation"] for w in ledger.writes(run_key=RUN, object="attachments")} == {"create"}

    fake_twenty.clear_requests()
    again = _load(client, ledger, records, RecordingSource(contents))
    assert (again.created, again.unchanged) == (0, 3)
    assert fake_twenty.requests == []  # the ledger knows them: nothing downloaded, nothing sent


def test_files_the_source_cannot_give_or_twenty_refuses_are_held_while_the_rest_lands(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    contents = {"fine": b"small", "gone": b"", "huge": b"x" * 64, "lied": b"y" * 40}
    records = _documents(client, contents)
    fake_twenty.max_upload_bytes = 32  # this server takes less than the mapping allows
    try:
        outcome = _load(client, ledger, records, RecordingSource(contents, gone=("gone",)), max_bytes=48)
    finally:
        fake_twenty.max_upload_bytes = LIMIT

    assert outcome.created == 1
    held = dict(outcome.not_downloaded)
    assert held["documents:gone#file"] == "file not downloaded from the source: gone was deleted"
    assert held["documents:huge#file"] == "file is 64 bytes, over the 48 bytes upload limit"  # declared smaller
    [(key, message)] = outcome.rejected
    assert key == "documents:lied#file" and message.startswith("upload refused: File truncated")
    assert [a["name"] for a in fake_twenty.records("attachments")] == ["fine.txt"]
    rejected = [w for w in ledger.writes(run_key=RUN, object="attachments") if w["operation"] == "rejected"]
    assert [w["source_key"] for w in rejected] == ["documents:lied#file"]


def test_uploads_are_rate_limited_and_retried_like_every_write(fake_twenty: Any) -> None:
    waits: list[float] = []
    limiter = RateLimiter(60, burst=1, clock=lambda: 0.0, sleep=waits.append)  # time stands still
    with connect(fake_twenty, limiter=limiter) as client:
        field_id = file_field_id(client)
        fake_twenty.fail_next(503, times=1, path_contains="/metadata")
        first = client.upload_file(field_id, "a.txt", b"first")
        client.upload_file(field_id, "b.txt", b"second")

    assert fake_twenty.files[first["id"]] == b"first" and first["size"] == 5
    assert [r.status for r in fake_twenty.requests if r.path == "/metadata"] == [503, 200, 200]
    # Each upload attempt took a token (the first was in the bucket, the next two waited 1 s
    # more each); the metadata read did not: Twenty does not throttle it.
    assert waits == [1.0, 2.0]


def test_a_graphql_error_answered_with_http_200_is_a_refusal(fake_twenty: Any, client: TwentyClient) -> None:
    with pytest.raises(TwentyRequestError) as refused:
        client.upload_file("00000000-0000-0000-0000-000000000000", "a.txt", b"data")
    assert refused.value.status == 400 and refused.value.is_record_error
    assert "not found or not a FILES field" in str(refused.value)
