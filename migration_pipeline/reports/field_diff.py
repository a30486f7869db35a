"""The field-level diff of a run, for people: an HTML page and a CSV of every difference."""

from __future__ import annotations

import csv
from pathlib import Path

from migration_pipeline.lifecycle.field_diff import LEGITIMATE_REWRITES, FieldDiffReport
from migration_pipeline.reports.html import write_html

HTML_DIFFERENCES_SHOWN = 500  # the CSV has them all
CSV_COLUMNS = ["object", "source_key", "twenty_id", "field", "outcome", "intended", "in_twenty"]


def write_field_diff(folder: Path, report: FieldDiffReport) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "field_diff.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for obj in report.objects:
            writer.writerows(d.as_row() for d in obj.differences)
    differences = [d.as_row() for obj in report.objects for d in obj.differences]
    html_path = write_html(
        folder / "field_diff.html",
        "field_diff.html.j2",
        report=report,
        rules=LEGITIMATE_REWRITES,
        differences=differences[:HTML_DIFFERENCES_SHOWN],
        differences_total=len(differences),
        csv_name=csv_path.name,
    )
    return html_path, csv_path
