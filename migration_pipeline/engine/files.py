"""What the engine needs from a source whose records carry files (documents): their bytes.

A source client that can download files implements `FileDownloader`; the attachment load
(`destinations/twenty/attachments.py`) calls it once per file it has to upload, never for a
file the ledger already holds or one over the upload limit (decided before, from the size the
source declares).
"""

from __future__ import annotations

from typing import Protocol


class FileUnavailable(Exception):
    """The source cannot give this one file (gone, forbidden, not the declared size). The file's
    attachment is held with this message as its reason; the run goes on."""


class FileDownloader(Protocol):
    def download_file(self, reference: str, size: int | None) -> bytes:
        """The file's bytes. `reference` is the source's own file reference (a column of the
        record); `size` the size in bytes the source declares, if any. Raises FileUnavailable
        for a problem with this file only; anything else (auth, the source down) propagates."""
        ...


__all__ = ["FileDownloader", "FileUnavailable"]
