"""Pandera schemas turned into Dagster asset-check results, with failure samples as metadata."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pandera.pandas as pa

SAMPLE_ROWS = 20


@dataclass
class Validation:
    failures: pd.DataFrame  # column, check, failure_case, index
    failed_rows: dict[object, str]  # frame index -> reason (first failure of that row)

    @property
    def passed(self) -> bool:
        return self.failures.empty


def validate(schema: type[pa.DataFrameModel], frame: pd.DataFrame) -> Validation:
    """An empty frame passes: it has no value to be wrong, and its columns (made from rows) and
    dtypes say nothing (a small sample may stage no record of an object)."""
    if frame.empty:
        return _passed()
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases[["column", "check", "failure_case", "index"]].copy()
        failed_rows: dict[object, str] = {}
        for row in failures.itertuples(index=False):
            if row.index is not None and not pd.isna(row.index):
                failed_rows.setdefault(row.index, f"{row.column or 'row'} failed {row.check}: {row.failure_case!r}")
        return Validation(failures, failed_rows)
    return _passed()


def _passed() -> Validation:
    return Validation(pd.DataFrame(columns=["column", "check", "failure_case", "index"]), {})


def failure_sample(failures: pd.DataFrame) -> dg.MetadataValue:
    sample = failures.head(SAMPLE_ROWS).astype(str)
    return dg.MetadataValue.md(sample.to_markdown(index=False) if len(sample) else "no failures")


def schema_check_result(
    validation: Validation,
    rows: int,
    *,
    quarantined: int = 0,
    max_quarantine_ratio: float | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    warnings: list[str] | None = None,
) -> dg.AssetCheckResult:
    """Fails if the frame is invalid, or if quarantine took more than the allowed share of rows
    (a sign that the input or the mapping is wrong, not the data), or if the input lacked
    optional parts (`warnings`: files or columns read as blank)."""
    ratio = quarantined / rows if rows else 0.0
    too_many = max_quarantine_ratio is not None and ratio > max_quarantine_ratio
    metadata = {
        "rows": rows,
        "failures": len(validation.failures),
        "failure_sample": failure_sample(validation.failures),
        "quarantined": quarantined,
        "quarantined_ratio": round(ratio, 4),
    }
    if max_quarantine_ratio is not None:
        metadata["max_quarantine_ratio"] = max_quarantine_ratio
    if warnings:
        metadata["warnings"] = dg.MetadataValue.json(warnings)
    return dg.AssetCheckResult(
        check_name="schema",
        passed=validation.passed and not too_many and not warnings,
        metadata=metadata,
        severity=severity,
    )
