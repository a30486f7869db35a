"""Reading export files into frames of strings, with errors an engineer can act on."""

from __future__ import annotations

import csv
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pandas as pa


def read_source_object(folder: Path, file_name: str, schema: type[pa.DataFrameModel]) -> pd.DataFrame:
    """Every cell as a string ('' for blank), so nothing is guessed before the mapping's
    transforms run. A missing file or missing columns stop the run with a clear message."""
    path = folder / file_name
    if not path.is_file():
        present = ", ".join(sorted(p.name for p in folder.glob("*"))) if folder.is_dir() else "folder not found"
        raise dg.Failure(
            description=f"{file_name} not found in {folder} (present: {present}). "
            f"Point the run at the folder holding the export files."
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", quoting=csv.QUOTE_MINIMAL)
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise dg.Failure(description=f"{path} is not a readable UTF-8 CSV file: {exc}") from None
    required = [name for name in schema.to_schema().columns if schema.to_schema().columns[name].required]
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise dg.Failure(
            description=f"{path} lacks the column(s) {', '.join(missing)}; found: {', '.join(frame.columns)}"
        )
    return frame
