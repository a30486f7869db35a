"""The conditions a run ran under, in its report folder: the settings it stated at its start
(time zone, currency: where each came from) and the source resources it could not read.

`run_conditions.json` holds both; `unreadable_resources.csv` lists the refused resources (source
object, resource, HTTP status, reason), one line each, so a reader sees what is missing and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from migration_pipeline.engine.unreadable import UnreadableResource

UNREADABLE_CSV = "unreadable_resources.csv"
CONDITIONS_JSON = "run_conditions.json"
UNREADABLE_COLUMNS = ["source_object", "resource", "status", "reason"]


def write_run_conditions(folder: Path, unreadable: list[UnreadableResource],
                         stated: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """`stated`: setting -> {"value", "from"}. Returns the report step's metadata for them."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [u.as_row() for u in unreadable]
    pd.DataFrame(rows, columns=UNREADABLE_COLUMNS).to_csv(folder / UNREADABLE_CSV, index=False)
    document = {"settings": {name: dict(entry) for name, entry in stated.items()}, "unreadable_resources": rows}
    (folder / CONDITIONS_JSON).write_text(json.dumps(document, indent=2), encoding="utf-8")
    return {"settings": dg.MetadataValue.json(document["settings"]),
            "unreadable_resources": dg.MetadataValue.json(rows)}


__all__ = ["write_run_conditions", "UNREADABLE_CSV", "CONDITIONS_JSON"]
