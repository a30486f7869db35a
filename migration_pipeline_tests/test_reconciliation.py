"""Reconciliation end to end: AllClients exports migrated through Dagster into the fake Twenty,
then `allclients/verify/reconciliation` reads Twenty back over HTTP and compares it with the
source, the ledger and the staged values. Changes made in Twenty behind the migration's back
must make the right check fail with the right numbers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.reports.svg_charts import PLOT_WIDTH, bar_chart
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.harness import MigrationRun, run_migration

ROWS = 100
VERIFY = "allclients/verify/reconciliation"
MIGRATE = ("extract", "stage", "prepare", "load", "report")
EMPTY = "(empty)"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("allclients_export")
    generate_export(folder, rows=ROWS, seed=23)
    return folder


@pytest.fixture
def migrate(fake_twenty, export: Path, tmp_path: Path):
    """Runs layers of the migration; one instance, ledger and output folder per test."""
    instance = dg.DagsterInstance.ephemeral()

    def _migrate(layers: tuple[str, ...], **kwargs: Any) -> MigrationRun:
        return run_migration(instance=instance, fake=fake_twenty, export_dir=export,
                             ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
                             output_dir=tmp_path / "out", layers=layers, **kwargs)

    return _migrate


def _twenty(fake) -> httpx.Client:
    """A plain HTTP client on the fake: a user changing the workspace behind the migration's back."""
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.api_key}"}, timeout=10)


def _report(run: MigrationRun) -> dict[str, Any]:
    return json.loads((run.output / "verify" / "reconciliation.json").read_text())


def _total(report: dict[str, Any], obj: str, name: str) -> dict[str, Any]:
    return next(t for t in report["totals"] if t["object"] == obj and t["name"] == name)


def _metadata(run: MigrationRun, check: str) -> dict[str, Any]:
    return {k: v.value for k, v in run.check(VERIFY, check).metadata.items()}


def test_a_clean_run_reconciles_counts_and_field_totals(migrate, fake_twenty) -> None:
    run = migrate(MIGRATE + ("verify",))
    assert run.success, run.result.all_events[-1]
    assert run.check(VERIFY, "counts_match").passed, _metadata(run, "counts_match")
    assert run.check(VERIFY, "field_totals_match").passed, _metadata(run, "field_totals_match")
    report = _report(run)

    # Source vs ledger vs Twenty, per object; Twenty's side agrees with the fake's own store.
    counts = {c["object"]: c for c in report["counts"]}
    assert set(counts) == {"companies", "people", "notes", "noteTargets"}
    for plural, c in counts.items():
        stored = len(fake_twenty.records(plural))
        assert c["loaded"] == c["ledger_should_exist"] == c["in_twenty"] == stored > 0, c
        assert c["source_rows"] == c["rows_loaded"] + c["rows_quarantined"] + c["rows_excluded"] > 0
    summary = run.summary()
    assert counts["people"]["loaded"] == summary["person"]["created"]

    # Field totals: the side read back equals a count over what the fake holds, and equals
    # the side computed from the staged rows (the check passed).
    people = fake_twenty.records("people")
    category = _total(report, "people", "category: records per value")
    assert category["actual"] == dict(Counter(p.get("category") or EMPTY for p in people))
    assert category["expected"] == category["actual"] and len(category["expected"]) > 2
    tags = _total(report, "people", "tags: records per value")
    assert tags["actual"] == dict(Counter(t for p in people for t in (p.get("tags") or [EMPTY])))
    linked = _total(report, "people", "companyId: records linked")
    assert linked["actual"]["linked"] == sum(1 for p in people if p.get("companyId")) > 0
    assert linked["actual"]["linked to the expected record"] == linked["expected"]["linked"]
    notes_per_person = _total(report, "noteTargets", "notes per person")
    per_person = Counter(t["targetPersonId"] for t in fake_twenty.records("noteTargets"))
    histogram = Counter(per_person.get(p["id"], 0) for p in people)
    assert notes_per_person["actual"] == {str(k): histogram[k] for k in sorted(histogram)}

    html = (run.output / "verify" / "reconciliation.html").read_text()
    assert html.count("<svg") == 1 + len(report["totals"])
    assert "MISMATCH" not in html and "<script" not in html
    # Read back in bulk: a few records per request, never one request per record.
    assert report["records_read"] == sum(c["in_twenty"] for c in report["counts"])
    assert report["read_requests"] * 50 < report["records_read"]


def test_a_record_deleted_in_twenty_fails_counts_match_with_that_objects_numbers(migrate, fake_twenty) -> None:
    assert migrate(MIGRATE).success
    targeted = {t["targetPersonId"] for t in fake_twenty.records("noteTargets")}
    victim = next(p for p in fake_twenty.records("people") if p["id"] not in targeted)
    with _twenty(fake_twenty) as twenty:
        twenty.delete(f"/rest/people/{victim['id']}").raise_for_status()

    run = migrate(("verify",))
    assert run.success, run.result.all_events[-1]
    assert not run.check(VERIFY, "counts_match").passed
    [mismatch] = _metadata(run, "counts_match")["mismatches"]
    people_left = len(fake_twenty.records("people"))
    assert mismatch["object"] == "people"
    assert mismatch["loaded"] == mismatch["ledger_should_exist"] == people_left + 1
    assert mismatch["in_twenty"] == people_left
    assert mismatch["missing_in_twenty"] == [victim["allclientsId"]]
    # The values of the records still there are untouched: only the count fails.
    assert run.check(VERIFY, "field_totals_match").passed, _metadata(run, "field_totals_match")
    assert "MISMATCH" in (run.output / "verify" / "reconciliation.html").read_text()


def test_a_select_value_changed_in_twenty_fails_field_totals_match(migrate, fake_twenty) -> None:
    assert migrate(MIGRATE).success
    people = fake_twenty.records("people")
    before = Counter(p.get("category") for p in people if p.get("category"))
    old, new = sorted(before)[:2]
    person = next(p for p in people if p.get("category") == old)
    with _twenty(fake_twenty) as twenty:
        twenty.patch(f"/rest/people/{person['id']}", json={"category": new}).raise_for_status()

    run = migrate(("verify",))
    assert run.check(VERIFY, "counts_match").passed, _metadata(run, "counts_match")
    assert not run.check(VERIFY, "field_totals_match").passed
    differences = _metadata(run, "field_totals_match")["differences"]
    name = "category: records per value"
    assert sorted(differences, key=lambda d: d["bucket"]) == sorted([
        {"object": "people", "total": name, "bucket": old, "expected": before[old], "actual": before[old] - 1},
        {"object": "people", "total": name, "bucket": new, "expected": before[new], "actual": before[new] + 1},
    ], key=lambda d: d["bucket"])


def test_currency_sums_per_select_value_reconcile_and_catch_a_changed_amount(migrate, fake_twenty, tmp_path) -> None:
    """AllClients has no money field; a copy of its mapping gives companies an annual revenue
    (from Custom2) and a tier (a SELECT, from Category2), so the sums per tier are checked."""
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    original = (MAPPINGS_DIR / "allclients__twenty.yaml").read_text()
    anchor = "      address.addressPostcode: {from: PostalCode, pick: first}\n"
    assert anchor in original
    (mappings / "allclients__twenty.yaml").write_text(original.replace(anchor, anchor + (
        "      annualRevenue.amountMicros: {from: Custom2, transform: number}\n"
        "      tier: {from: Category2, transform: select, custom: {type: SELECT, label: Tier}}\n"
    )))
    run = migrate(MIGRATE + ("verify",), mappings_dir=mappings)
    assert run.check(VERIFY, "field_totals_match").passed, _metadata(run, "field_totals_match")

    companies = fake_twenty.records("companies")
    sums: Counter[str] = Counter()
    for company in companies:
        amount = company["annualRevenue"]["amountMicros"]
        if amount is not None:
            sums[company.get("tier") or EMPTY] += amount
    revenue = _total(_report(run), "companies", "annualRevenue: sum per tier")
    assert revenue["actual"] == pytest.approx(dict(sums)) and len(sums) > 1
    assert revenue["expected"] == revenue["actual"]

    company = next(c for c in companies if c["annualRevenue"]["amountMicros"] and c.get("tier"))
    with _twenty(fake_twenty) as twenty:
        twenty.patch(f"/rest/companies/{company['id']}",
                     json={"annualRevenue": {"amountMicros": company["annualRevenue"]["amountMicros"] + 1000}}
                     ).raise_for_status()
    rerun = migrate(("verify",), mappings_dir=mappings)
    assert not rerun.check(VERIFY, "field_totals_match").passed
    [difference] = _metadata(rerun, "field_totals_match")["differences"]
    assert difference["total"] == "annualRevenue: sum per tier" and difference["bucket"] == company["tier"]
    assert difference["actual"] - difference["expected"] == pytest.approx(1000)


def test_a_capped_chart_keeps_the_mismatching_rows() -> None:
    rows = [(f"value {i}", [i, i]) for i in range(40)] + [("changed", [5, 4])]
    chart = bar_chart("t", ["expected", "in Twenty"], rows, mismatched={"changed"}, max_rows=10)
    assert [r.label for r in chart.rows][:2] == ["changed", "value 0"]
    assert len(chart.rows) == 10 and chart.left_out == 31
    assert chart.rows[0].mismatch and not chart.rows[1].mismatch
    widest = max(bar.width for row in chart.rows for bar in row.bars)
    assert widest == pytest.approx(PLOT_WIDTH) and chart.height > 10 * 2 * chart.bar_height
