"""Files re-uploaded from the source as Twenty attachments, through the ledger.

An attachment takes Twenty's two steps (contract section 11): the file is uploaded into the
`attachment.file` FILES field (GraphQL multipart to /metadata, the field's id looked up once),
then an attachment record is created naming the file id and the record it belongs to
(`targetNoteId`, ...). Per file:

- the ledger already holds its attachment (an earlier run): nothing is downloaded or uploaded
  again, it counts as unchanged;
- else its bytes come from the source (`engine.files.FileDownloader`), are uploaded (rate
  limited and retried like every write), and the record is created through `load_object`:
  ledgered, so a rollback destroys it, and found by its target and name when a crash hid the
  outcome of its create (that file is then uploaded once more, and the record updated to it).

A file the source cannot give (`FileUnavailable`) is held with the reason before any upload; one
Twenty refuses (a 4xx, e.g. a server or proxy with a size limit; Twenty 2.21 has none) is
rejected with Twenty's message. Files over `defaults.max_upload_bytes` (see
`engine.mapping.TWENTY_MAX_UPLOAD_BYTES` for where its default comes from) never get here:
staging leaves them out from the size the source declares, so they are never downloaded. Knows
nothing about any one source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from migration_pipeline.destinations.twenty.client import MAX_BATCH, TwentyClient, TwentyRequestError
from migration_pipeline.destinations.twenty.loader import (
    FAIL_FAST_AFTER,
    LoadAborted,
    LoadOutcome,
    LoadRecord,
    load_object,
    payload_hash,
)
from migration_pipeline.engine.files import FileDownloader, FileUnavailable
from migration_pipeline.engine.transforms import human_size
from migration_pipeline.ledger import Ledger, WriteRow

PLURAL = "attachments"
FILE_FIELD = "file"  # attachment.file, a FILES field


@dataclass(frozen=True)
class SourceFile:
    """The file of one attachment as the source knows it."""

    reference: str  # what the source's client downloads
    size: int | None  # bytes the source declares, if any


@dataclass
class AttachmentOutcome(LoadOutcome):
    # (source key, why) of files held before any upload: the source could not give them.
    not_downloaded: list[tuple[str, str]] = field(default_factory=list)
    uploaded: int = 0  # files Twenty accepted
    upload_refusals: int = 0  # files Twenty refused


def file_field_id(client: TwentyClient) -> str:
    """The metadata id of `attachment.file`, which uploads must name (it differs per workspace)."""
    for obj in client.metadata_objects():
        if obj.get("nameSingular") == "attachment":
            for meta in obj.get("fields", []):
                if meta.get("name") == FILE_FIELD and meta.get("type") == "FILES":
                    return str(meta["id"])
    raise LoadAborted("Twenty's metadata has no attachment object with a FILES field `file`: "
                      "this Twenty version stores attachments differently; files cannot be uploaded")


def load_attachments(
    client: TwentyClient,
    ledger: Ledger,
    run_key: str,
    records: Sequence[tuple[LoadRecord, SourceFile]],
    downloader: FileDownloader,
    *,
    identity_fields: Sequence[str],
    max_bytes: int,
    batch_size: int = MAX_BATCH,
    log: Callable[[str], None] | None = None,
) -> AttachmentOutcome:
    """Upload each record's file and create its attachment (`records`: payloads without `file`,
    target relations already Twenty ids). `identity_fields` (the target column and `name`) find
    an attachment whose create was interrupted."""
    say = log or (lambda _message: None)
    started = client.request_count
    outcome = AttachmentOutcome()
    known = ledger.known(PLURAL, [record.source_key for record, _ in records])
    held: list[WriteRow] = []
    todo: list[tuple[LoadRecord, SourceFile]] = []
    for record, source_file in records:
        entry = known.get(record.source_key)
        if entry is not None and entry.twenty_id and not entry.pending:
            held.append(WriteRow(record.source_key, "unchanged", entry.twenty_id, entry.payload_hash))
        else:
            todo.append((record, source_file))
    ledger.record_outcomes(run_key, PLURAL, held)
    outcome.unchanged += len(held)
    say(f"{PLURAL}: {len(held)} already in Twenty (not uploaded again), {len(todo)} files to upload")
    upload = _Uploader(client, ledger, run_key, downloader, max_bytes, outcome) if todo else None
    for start in range(0, len(todo), batch_size):
        assert upload is not None
        ready = [r for r in (upload(record, source_file) for record, source_file in todo[start : start + batch_size]) if r]
        created = load_object(client, ledger, run_key, PLURAL, ready, external_key_field=None,
                              identity_fields=tuple(identity_fields), batch_size=batch_size, log=say)
        outcome.created += created.created
        outcome.updated += created.updated
        outcome.unchanged += created.unchanged
        outcome.rejected += created.rejected
    outcome.requests = client.request_count - started
    return outcome


class _Uploader:
    """Download one file, upload it, and return its attachment payload (None: held or refused)."""

    def __init__(self, client: TwentyClient, ledger: Ledger, run_key: str, downloader: FileDownloader,
                 max_bytes: int, outcome: AttachmentOutcome) -> None:
        self.client, self.ledger, self.run_key, self.downloader = client, ledger, run_key, downloader
        self.max_bytes, self.outcome = max_bytes, outcome
        self.field_id = file_field_id(client)
        self.uploaded = 0

    def __call__(self, record: LoadRecord, source_file: SourceFile) -> LoadRecord | None:
        key = record.source_key
        try:
            content = self.downloader.download_file(source_file.reference, source_file.size)
        except FileUnavailable as error:
            self.outcome.not_downloaded.append((key, f"file not downloaded from the source: {error}"))
            return None
        if len(content) > self.max_bytes:
            self.outcome.not_downloaded.append((key, f"file is {human_size(len(content))}, over the "
                                                     f"{human_size(self.max_bytes)} upload limit"))
            return None
        name = str(record.payload.get("name") or source_file.reference)
        try:
            uploaded = self.client.upload_file(self.field_id, name, content)
        except TwentyRequestError as error:
            if not error.is_record_error:
                raise
            self._refused(record, f"upload refused: {'; '.join(error.messages) or error}")
            return None
        self.uploaded += 1
        self.outcome.uploaded += 1
        return LoadRecord(key, {**record.payload, FILE_FIELD: [{"fileId": uploaded["id"], "label": name}]})

    def _refused(self, record: LoadRecord, message: str) -> None:
        self.ledger.record_outcomes(self.run_key, PLURAL, [
            WriteRow(record.source_key, "rejected", payload_hash=payload_hash(record.payload), message=message)])
        self.outcome.rejected.append((record.source_key, message))
        self.outcome.upload_refusals += 1
        if not self.uploaded and len(self.outcome.rejected) >= FAIL_FAST_AFTER:
            raise LoadAborted(f"Twenty refused the first {len(self.outcome.rejected)} file uploads and accepted "
                              f"none (the last: {message}). This looks like a setup problem rather than bad "
                              "files: fix it and rerun.")


__all__ = ["AttachmentOutcome", "SourceFile", "file_field_id", "load_attachments"]
