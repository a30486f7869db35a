"""The reconciliation of a run as a page a person reads (HTML with bar charts) and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from migration_pipeline.lifecycle.reconciliation import FieldTotal, Reconciliation
from migration_pipeline.reports.html import write_html
from migration_pipeline.reports.svg_charts import BarChart, bar_chart

HTML_NAME = "reconciliation.html"
JSON_NAME = "reconciliation.json"


def write_reconciliation_report(folder: Path, reconciliation: Reconciliation) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / JSON_NAME
    json_path.write_text(json.dumps(reconciliation.to_dict(), indent=2), encoding="utf-8")
    html_path = write_html(
        folder / HTML_NAME,
        "reconciliation.html.j2",
        r=reconciliation,
        counts_chart=_counts_chart(reconciliation),
        totals=[(total, _total_chart(total)) for total in reconciliation.totals],
    )
    return {"html": html_path, "json": json_path}


def _counts_chart(reconciliation: Reconciliation) -> BarChart:
    return bar_chart(
        "Records per object: loaded (load step), should exist (ledger), found (Twenty)",
        ["loaded", "ledger", "Twenty"],
        [(c.object, [c.loaded, c.ledger_should_exist, c.in_twenty]) for c in reconciliation.counts],
        mismatched={c.object for c in reconciliation.counts if not c.matches},
    )


def _total_chart(total: FieldTotal) -> BarChart:
    different = {d["bucket"] for d in total.differences()}
    rows: list[tuple[str, list[Any]]] = [
        (bucket, [total.expected.get(bucket, 0), total.actual.get(bucket, 0)]) for bucket in total.buckets()
    ]
    return bar_chart(f"{total.object}: {total.name}", ["expected", "in Twenty"], rows, mismatched=different)
