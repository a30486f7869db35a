"""Finding a new export of a file source in its delta folder.

Each export is a sub-folder holding the source's files. It is complete when it holds a
`_COMPLETE` marker (written last by whoever drops the export) and every expected file, or,
without a marker, when every expected file is present and none has changed for a settle period
(a copy still in progress keeps touching its files). The high-water mark is the newest export
already picked up: (ready time, folder name), kept in the sensor cursor as JSON together with
the time of the previous delta run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from migration_pipeline.lifecycle.delta import parse_stamp, stamp

COMPLETE_MARKER = "_COMPLETE"
SETTLE_SECONDS = 120.0

Mark = tuple[float, str]


@dataclass(frozen=True)
class Export:
    folder: Path
    ready_at: float  # epoch seconds: the marker's mtime, else the newest file's

    @property
    def mark(self) -> Mark:
        return (self.ready_at, self.folder.name)


@dataclass(frozen=True)
class Scan:
    newest: Export | None  # the newest complete export past the high-water mark
    waiting: list[str] = field(default_factory=list)  # why other new folders are not picked up


@dataclass(frozen=True)
class FilesCursor:
    export: str | None = None
    ready_at: float | None = None
    run_at: datetime | None = None  # time of the previous delta run (start of the next window)

    @property
    def mark(self) -> Mark | None:
        return (self.ready_at, self.export) if self.export is not None and self.ready_at is not None else None

    @classmethod
    def parse(cls, text: str | None) -> FilesCursor:
        raw = json.loads(text) if text else {}
        run_at = raw.get("run_at")
        return cls(raw.get("export"), raw.get("ready_at"), parse_stamp(run_at) if run_at else None)

    def to_json(self) -> str:
        run_at = stamp(self.run_at) if self.run_at else None
        return json.dumps({"export": self.export, "ready_at": self.ready_at, "run_at": run_at}, sort_keys=True)


def check_export(folder: Path, files: Sequence[str], now: float, settle_seconds: float) -> Export | str:
    """The export in `folder` if it is complete, else why not."""
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        return f"{folder.name}: waiting for {', '.join(missing)}"
    marker = folder / COMPLETE_MARKER
    if marker.is_file():
        return Export(folder, marker.stat().st_mtime)
    newest = max((folder / name).stat().st_mtime for name in files)
    if now - newest < settle_seconds:
        return f"{folder.name}: written {now - newest:.0f}s ago, waiting until files are unchanged for {settle_seconds:.0f}s"
    return Export(folder, newest)


def scan_exports(
    delta_dir: Path, files: Sequence[str], after: Mark | None, now: float, settle_seconds: float = SETTLE_SECONDS
) -> Scan:
    """The newest complete export newer than `after`. Every export is a whole copy of the source,
    so when several arrived since the last look only the newest needs a run."""
    complete: list[Export] = []
    waiting: list[str] = []
    for folder in sorted(p for p in delta_dir.iterdir() if p.is_dir()):
        found = check_export(folder, files, now, settle_seconds)
        if isinstance(found, str):
            waiting.append(found)
        elif after is None or found.mark > after:
            complete.append(found)
    return Scan(max(complete, key=lambda e: e.mark, default=None), waiting)
