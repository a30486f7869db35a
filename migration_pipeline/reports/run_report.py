"""What a run did, per object and per source row, written as CSV/JSON for the engineer:
the load plan of a dry run, and the accounting report of a real run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from migration_pipeline.destinations.twenty.objects import ATTACHMENT
from migration_pipeline.engine.payloads import META_COLUMNS, nest
from migration_pipeline.engine.staging import ISSUE_COLUMNS, KEY, ROW_COUNT, StagedObject

DISPOSITION_COLUMNS = ["object", "source_object", "source_row", KEY, "reason"]


@dataclass
class EntryAccounting:
    """One mapped object: where each of its source rows ended."""

    source_rows: int
    loaded: int = 0
    quarantined: int = 0
    excluded: int = 0

    @property
    def balanced(self) -> bool:
        return self.source_rows == self.loaded + self.quarantined + self.excluded


@dataclass
class LoadSummary:
    twenty_object: str
    plural: str
    staged: int
    created: int
    updated: int
    unchanged: int
    requests: int
    rejected: pd.DataFrame  # rows refused at load: DISPOSITION_COLUMNS
    quarantined: pd.DataFrame  # held before load + rejected at load
    excluded: pd.DataFrame
    field_issues: pd.DataFrame
    unresolved_owners: pd.DataFrame
    accounting: dict[str, EntryAccounting] = field(default_factory=dict)

    @classmethod
    def of(cls, staged: StagedObject, outcome: Any, batch: Any) -> LoadSummary:
        reasons = dict(batch.rejected) | {k: f"rejected by Twenty: {m}" for k, m in outcome.rejected}
        records = staged.records
        refused = records[records[KEY].isin(reasons)] if len(records) else records
        rejected = refused[["object", "source_object", "source_row", KEY]].assign(
            reason=[reasons[k] for k in refused[KEY]]
        ) if len(refused) else pd.DataFrame(columns=DISPOSITION_COLUMNS)
        quarantined = pd.concat([staged.quarantined, rejected], ignore_index=True)
        summary = cls(
            twenty_object=staged.twenty_object,
            plural=staged.plural,
            staged=len(records),
            created=outcome.created,
            updated=outcome.updated,
            unchanged=outcome.unchanged,
            requests=outcome.requests,
            rejected=rejected,
            quarantined=quarantined,
            excluded=staged.excluded,
            field_issues=pd.concat([staged.field_issues, pd.DataFrame(batch.field_issues, columns=ISSUE_COLUMNS)],
                                   ignore_index=True),
            unresolved_owners=pd.DataFrame(batch.unresolved_members, columns=[KEY, "owner", "email"]),
        )
        summary.accounting = _accounting(staged, set(reasons))
        return summary

    def reconciles(self) -> bool:
        written = self.created + self.updated + self.unchanged + len(self.rejected)
        return written == self.staged and all(a.balanced for a in self.accounting.values())

    def accounting_metadata(self) -> dict[str, Any]:
        return {
            "staged": self.staged,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "source_rows_accounting": dg.MetadataValue.json(
                {name: {**vars(a), "balanced": a.balanced} for name, a in self.accounting.items()}
            ),
        }

    def as_metadata(self) -> dict[str, Any]:
        return {
            **self.accounting_metadata(),
            "quarantined": len(self.quarantined),
            "excluded": len(self.excluded),
            "unresolved_owners": len(self.unresolved_owners),
            "requests": self.requests,
        }


def _accounting(staged: StagedObject, refused_keys: set[str]) -> dict[str, EntryAccounting]:
    out = {name: EntryAccounting(source_rows=rows) for name, rows in staged.input_rows.items()}
    records = staged.records
    for name, acc in out.items():
        mine = records[records["object"] == name] if len(records) else records
        counts = mine[ROW_COUNT].astype(int) if len(mine) else pd.Series(dtype=int)
        refused = mine[KEY].isin(refused_keys) if len(mine) else pd.Series(dtype=bool)
        acc.loaded = int(counts[~refused].sum()) if len(mine) else 0
        acc.quarantined = int(counts[refused].sum()) if len(mine) else 0
        acc.quarantined += int((staged.quarantined["object"] == name).sum())
        acc.excluded = int((staged.excluded["object"] == name).sum())
    return out


# --- files -----------------------------------------------------------------------------------


def _flat_payload(row: dict[str, Any]) -> dict[str, Any]:
    """A staged row as CSV cells: composites spelled out as `field / subField` columns."""
    cells: dict[str, Any] = {}
    for name, value in nest({k: v for k, v in row.items() if k not in META_COLUMNS}).items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                cells[f"{name} / {sub}"] = _cell(sub_value)
        else:
            cells[name] = _cell(value)
    return cells


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def write_load_plan(folder: Path, staged: list[StagedObject]) -> dict[str, Any]:
    """Dry run: one CSV per Twenty object, numbered in load order, plus dispositions and a summary."""
    folder.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"written_to_twenty": 0, "objects": {}}
    for order, obj in enumerate(staged, start=1):
        rows = [_flat_payload(r) for r in obj.records.to_dict("records")]
        pd.DataFrame(rows).to_csv(folder / f"{order:02d}_{obj.plural}.csv", index=False)
        summary["objects"][obj.plural] = {
            "load_order": order,
            "records": len(obj.records),
            "quarantined": len(obj.quarantined),
            "excluded": len(obj.excluded),
            "field_issues": len(obj.field_issues),
        }
    _dispositions(folder, staged)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return {"objects": dg.MetadataValue.json(summary["objects"])}


def _dispositions(folder: Path, objects: list[Any]) -> None:
    pd.concat([o.quarantined for o in objects], ignore_index=True).to_csv(folder / "quarantined.csv", index=False)
    pd.concat([o.excluded for o in objects], ignore_index=True).to_csv(folder / "excluded.csv", index=False)
    pd.concat([o.field_issues for o in objects], ignore_index=True).to_csv(folder / "field_issues.csv", index=False)


def write_run_report(folder: Path, loads: list[LoadSummary], ledger: Any, run_key: str,
                     input_warnings: Sequence[str] = ()) -> dict[str, Any]:
    """After a real run: dispositions, unresolved owners, files not attached, the run's audit log
    and a summary whose counts add up per mapped object (source rows = loaded + quarantined +
    excluded). `input_warnings` (optional files or columns the export lacks, read as blank)
    go to `warnings.txt` and the metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "warnings.txt").write_text("".join(f"{w}\n" for w in input_warnings), encoding="utf-8")
    _dispositions(folder, loads)
    not_attached = _files_not_attached(folder, [s for s in loads if s.twenty_object == ATTACHMENT])
    pd.concat([s.unresolved_owners.assign(object=s.twenty_object) for s in loads], ignore_index=True).to_csv(
        folder / "unresolved_owners.csv", index=False
    )
    pd.DataFrame(ledger.writes(run_key=run_key)).to_csv(folder / "audit_log.csv", index=False)
    summary = {
        s.twenty_object: {
            "staged": s.staged, "created": s.created, "updated": s.updated, "unchanged": s.unchanged,
            "rejected": len(s.rejected), "requests": s.requests,
            "accounting": {name: {**vars(a), "balanced": a.balanced} for name, a in s.accounting.items()},
        }
        for s in loads
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    balanced = all(a.balanced for s in loads for a in s.accounting.values())
    return {"summary": dg.MetadataValue.json(summary), "all_rows_accounted_for": balanced,
            "input_warnings": dg.MetadataValue.json(list(input_warnings)),
            **({"files_not_attached": not_attached} if not_attached is not None else {})}


def _files_not_attached(folder: Path, attachments: list[LoadSummary]) -> int | None:
    """`files_not_attached.csv`: every file of the run that is not in Twenty, with the reason
    (over the upload limit, none, not downloadable, refused): what to fetch from the source by
    hand. None when the run has no attachments."""
    if not attachments:
        return None
    rows = pd.concat(
        [s.excluded.assign(disposition="excluded") for s in attachments]
        + [s.quarantined.assign(disposition="quarantined") for s in attachments],
        ignore_index=True,
    ).reindex(columns=[*DISPOSITION_COLUMNS, "disposition"])
    rows.to_csv(folder / "files_not_attached.csv", index=False)
    return len(rows)
