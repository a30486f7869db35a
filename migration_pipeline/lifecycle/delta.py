"""Delta runs during cutover: their partition keys, and the records deleted in the source.

A delta partition key names its window, `delta-<previous run UTC>-<this run UTC>`. When a run
reads a complete picture of the source (a full run, or a delta of a file source, where every
delta is a whole export), any source key that earlier runs of the same source loaded and that
this run no longer produces was deleted in the source. Those are reported, never deleted in
Twenty: the engineer decides what happens to them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from migration_pipeline.engine.staging import KEY
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.partitions import run_kind, validate_run_key
from migration_pipeline.reports.run_report import LoadSummary

STAMP = "%Y%m%dT%H%MZ"
DELETED_FILE = "deleted_in_source.csv"
DELETED_COLUMNS = ["object", KEY, "twenty_id", "last_loaded_by"]


# --- partition keys --------------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(STAMP)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, STAMP).replace(tzinfo=timezone.utc)


def delta_run_key(start: datetime, end: datetime) -> str:
    return validate_run_key(f"delta-{stamp(start)}-{stamp(end)}")


def delta_window(run_key: str) -> tuple[datetime, datetime]:
    """The (start, end) a delta key names: an API delta fetches records modified in it."""
    parts = validate_run_key(run_key).split("-")
    if parts[0] != "delta" or len(parts) < 3:
        raise ValueError(f"{run_key!r} is not a delta run key (delta-<start UTC>-<end UTC>)")
    return parse_stamp(parts[1]), parse_stamp(parts[2])


def previous_run_time(ledger: Ledger, source: str) -> datetime | None:
    """When the latest run of `source` started, for the start of the next delta window."""
    return ledger.latest_run_start(source)


# --- deleted in source -----------------------------------------------------------------------


def input_is_complete(source_kind: str, run_key: str) -> bool:
    """Whether the run's input holds every record of the source, so absence means deletion.

    A sample reads a slice; an API delta reads only what changed; a file delta is a whole export.
    """
    kind = run_kind(run_key)
    return kind == "full" or (kind == "delta" and source_kind == "files")


def keys_missing_from_run(ledger: Ledger, source: str, run_key: str, objects: Collection[str]) -> pd.DataFrame:
    """Per Twenty object (plural), the source keys earlier runs of `source` loaded and that run
    `run_key` did not write at all; the last Twenty id and run of each."""
    rows = ledger.loaded_before(source, run_key, list(objects))
    frame = pd.DataFrame(rows, columns=DELETED_COLUMNS).astype(object)
    frame = frame.drop_duplicates(["object", KEY], keep="last").reset_index(drop=True)
    # Only records the ledger still maps to Twenty (a rolled-back write is as if never made).
    for obj, keys in frame.groupby("object")[KEY]:
        known = ledger.twenty_ids(str(obj), list(keys))
        mine = frame["object"] == obj
        frame.loc[mine, "twenty_id"] = frame.loc[mine, KEY].map(known)
    return frame.dropna(subset=["twenty_id"]).reset_index(drop=True)


def deleted_in_source(ledger: Ledger, source: str, run_key: str, loads: Sequence[LoadSummary]) -> pd.DataFrame:
    """Records earlier runs loaded whose source key this run's input no longer produces.

    The keys a run produced are those it wrote (every staged record is in the ledger: created,
    updated, unchanged or rejected) plus those it held back (quarantined or excluded).
    """
    held: dict[str, set[str]] = {}
    for load in loads:
        keys = pd.concat([load.quarantined[KEY], load.excluded[KEY]]).dropna().astype(str)
        held.setdefault(load.plural, set()).update(keys)
    missing = keys_missing_from_run(ledger, source, run_key, held.keys())
    still_there = [key in held[obj] for obj, key in zip(missing["object"], missing[KEY])]
    return missing[~pd.Series(still_there, dtype=bool, index=missing.index)].reset_index(drop=True)


def report_deleted_in_source(
    folder: Path, ledger: Ledger, source: str, source_kind: str, run_key: str, loads: Sequence[LoadSummary]
) -> dict[str, Any]:
    """Writes deleted_in_source.csv into the run report folder; returns report metadata."""
    if not input_is_complete(source_kind, run_key):
        why = f"not checked: a {run_kind(run_key)} run of a {source_kind} source does not read every record"
        return {"deleted_in_source_check": why}
    deleted = deleted_in_source(ledger, source, run_key, loads)
    deleted.to_csv(folder / DELETED_FILE, index=False)
    by_object: Mapping[str, int] = deleted.groupby("object").size().to_dict() if len(deleted) else {}
    return {
        "deleted_in_source": len(deleted),
        "deleted_in_source_by_object": dg.MetadataValue.json({k: int(v) for k, v in by_object.items()}),
    }
