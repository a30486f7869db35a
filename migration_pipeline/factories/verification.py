"""Mapping -> the read-back verification of a run: the `<slug>/verify/field_diff` asset and a
`field_diff` check on every `<slug>/load/<object>` asset.

After the loads, every record the run loaded is read back from Twenty in bulk and compared field
by field with the payload the mapping intended, rebuilt deterministically from the stage asset
and the ledger's ids exactly as the load asset builds it.
"""

# No `from __future__ import annotations`: Dagster reads the context/config annotations at runtime.
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.payloads import staged_payloads, with_cleared
from migration_pipeline.engine.staging import StagedObject
from migration_pipeline.factories.assets import key, staged_objects
from migration_pipeline.ledger.ledger import SUCCESSFUL, Ledger
from migration_pipeline.lifecycle.field_diff import FieldDiffReport, ObjectDiff, compare_records, field_defaults
from migration_pipeline.partitions import migration_run
from migration_pipeline.reports.field_diff import write_field_diff
from migration_pipeline.resources import MigrationSettings

CHECK_NAME = "field_diff"
SAMPLE_DIFFERENCES = 20  # per check, in metadata; the CSV has them all


def field_diff_key(slug: str) -> dg.AssetKey:
    return key(slug, "verify", "field_diff")


def build_verification(mapping: Mapping) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    """The field-diff asset and the `field_diff` checks it feeds (pass both to dg.materialize)."""
    objects = staged_objects(mapping)
    return _field_diff_asset(mapping, objects), _field_diff_checks(mapping, objects)


def build_verification_definitions(mapping: Mapping) -> dg.Definitions:
    asset, checks = build_verification(mapping)
    return dg.Definitions(assets=[asset], asset_checks=[checks])


def _field_diff_asset(mapping: Mapping, objects: list[str]) -> dg.AssetsDefinition:
    slug = mapping.slug

    @dg.asset(
        key=field_diff_key(slug),
        ins={obj: dg.AssetIn(key=key(slug, "stage", obj)) for obj in objects},
        deps=[key(slug, "load", obj) for obj in objects],
        description="Every record the run loaded, read back from Twenty in bulk and compared field by "
        "field with what the mapping intended; HTML report and CSV of every difference in "
        "<output>/<run>/verify/",
        required_resource_keys={"twenty", "ledger", "migration_settings"},
        kinds={"twenty", "html"},
        group_name=slug,
        partitions_def=migration_run,
    )
    def _field_diff(context: AssetExecutionContext, **staged: StagedObject) -> dg.Output[FieldDiffReport]:
        writer: TwentyWriter = context.resources.twenty
        settings: MigrationSettings = context.resources.migration_settings
        run_key = context.partition_key
        with context.resources.ledger.open(source=slug) as ledger, writer.client() as client:
            intend = _payload_builder(mapping, client, ledger, settings, staged.values())
            fields = {o["nameSingular"]: o.get("fields") or [] for o in client.metadata_objects()}
            started = client.request_count  # the records' read-backs
            diffs = [_diff_object(client, ledger, run_key, slug, staged[obj], intend, field_defaults(fields.get(obj, [])))
                     for obj in objects]
            report = FieldDiffReport(run_key, slug, diffs, client.request_count - started)
        html, csv = write_field_diff(settings.output_folder(run_key, mapping.slug) / "verify", report)
        context.log.info(f"field diff of {run_key}: {report.differences} differences in {report.records_compared} records")
        return dg.Output(report, metadata={
            "records_compared": report.records_compared,
            "differences": report.differences,
            "read_requests": report.read_requests,
            "requests_per_1000_records": report.requests_per_1000_records,
            "per_object": dg.MetadataValue.json({o.twenty_object: _object_metadata(o) for o in report.objects}),
            "html_report": dg.MetadataValue.path(str(html)),
            "differences_csv": dg.MetadataValue.path(str(csv)),
        })

    return _field_diff


PayloadBuilder = Callable[[StagedObject], list[tuple[str, dict[str, Any]]]]


def _payload_builder(
    mapping: Mapping, client: TwentyClient, ledger: Ledger, settings: MigrationSettings,
    staged: Iterable[StagedObject],
) -> PayloadBuilder:
    """Rebuilds payloads the way the load asset does: relations and owners resolved to ids."""
    members = client.workspace_member_ids() if any(s.members for s in staged) else {}

    def intended(staged_object: StagedObject) -> list[tuple[str, dict[str, Any]]]:
        """With the empties an update sends: a value Twenty holds where the mapping says empty
        (a company link or a second email removed at the source) is a difference too."""
        batch = staged_payloads(staged_object, mapping, ledger, members, settings.fallback_owner_email)
        return [(k, with_cleared(payload, batch.cleared.get(k, {}))) for k, payload in batch.records]

    return intended


def _diff_object(
    client: TwentyClient, ledger: Ledger, run_key: str, source: str, staged: StagedObject, intend: PayloadBuilder,
    defaults: dict[str, Any],
) -> ObjectDiff:
    loaded = loaded_ids(ledger, run_key, staged.plural, source)
    intended = {source_key: payload for source_key, payload in intend(staged) if source_key in loaded}
    read_back = {r["id"]: r for r in client.get_by_ids(staged.plural, [loaded[k] for k in intended])}
    return compare_records(staged.twenty_object, intended, loaded, read_back, defaults)


def loaded_ids(ledger: Ledger, run_key: str, plural: str, source: str | None = None) -> dict[str, str]:
    """source key -> Twenty id of every record this run (of `source`) wrote or found unchanged."""
    return {
        w["source_key"]: w["twenty_id"]
        for w in ledger.writes(run_key=run_key, object=plural, source=source)
        if w["status"] == "done" and w["operation"] in SUCCESSFUL and w["twenty_id"]
    }


# --- checks ----------------------------------------------------------------------------------


def _field_diff_checks(mapping: Mapping, objects: list[str]) -> dg.AssetChecksDefinition:
    slug = mapping.slug
    load_keys = {obj: key(slug, "load", obj) for obj in objects}
    verify = "/".join(field_diff_key(slug).path)
    specs = [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=load_keys[obj],
            additional_deps=[field_diff_key(slug)],
            description="Every loaded record read back from Twenty holds what the mapping intended, "
            f"field by field (fails on any differing or missing value; computed by {verify})",
        )
        for obj in objects
    ]

    # The diff is read from the field-diff materialization of this partition, not passed as an
    # input: a run that loads without verifying then gets a clear "not verified" result instead
    # of an I/O error.
    @dg.multi_asset_check(name=f"{slug}_field_diff", specs=specs, can_subset=True)
    def _checks(context: dg.AssetCheckExecutionContext) -> Iterable[dg.AssetCheckResult]:
        record = latest_field_diff(context.instance, slug, context.partition_key)
        for obj in objects:
            if dg.AssetCheckKey(load_keys[obj], CHECK_NAME) not in context.selected_asset_check_keys:
                continue
            if record is None or record.run_id != context.run.run_id:
                when = "yet" if record is None else f"in this run (last diff: Dagster run {record.run_id})"
                yield dg.AssetCheckResult(
                    check_name=CHECK_NAME, asset_key=load_keys[obj], passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"not_verified": f"{verify} was not materialized for {context.partition_key} {when}: "
                                              "materialize it after the loads"},
                )
                continue
            outcome = record.metadata["per_object"].get(obj, {"records": 0})
            yield dg.AssetCheckResult(
                check_name=CHECK_NAME, asset_key=load_keys[obj],
                passed=not outcome.get("differs") and not outcome.get("missing"),
                metadata=_check_metadata(outcome, record.metadata.get("html_report", "")),
            )

    return _checks


@dataclass(frozen=True)
class FieldDiffRecord:
    """The latest field-diff materialization of one run, as Dagster stored it."""

    run_id: str
    metadata: dict[str, Any]


def latest_field_diff(instance: dg.DagsterInstance, slug: str, run_key: str) -> FieldDiffRecord | None:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=field_diff_key(slug), asset_partitions=[run_key]), limit=1
    )
    if not result.records:
        return None
    record = result.records[0]
    materialization = record.asset_materialization
    assert materialization is not None
    return FieldDiffRecord(record.run_id, {name: value.value for name, value in materialization.metadata.items()})


def _object_metadata(diff: ObjectDiff) -> dict[str, Any]:
    """What the check of one object shows: counts, fields with differences and a capped sample."""
    totals = diff.totals()
    return {
        "records": diff.records_compared,
        "records_missing": diff.records_missing,
        "match": totals.get("match", 0),
        "differs": totals.get("differs", 0),
        "missing": totals.get("missing", 0),
        "fields_with_differences": {
            row["field"]: {"differs": row["differs"], "missing": row["missing"]}
            for row in diff.field_table() if row["differs"] or row["missing"]
        },
        "difference_sample": [d.as_row() for d in diff.differences[:SAMPLE_DIFFERENCES]],
    }


def _check_metadata(outcome: dict[str, Any], html_report: str) -> dict[str, Any]:
    sample = outcome.get("difference_sample", [])
    table = "\n".join(
        ["| source key | field | outcome | intended | in Twenty |", "| --- | --- | --- | --- | --- |"]
        + [f"| {_md(r['source_key'])} | {_md(r['field'])} | {r['outcome']} | {_md(r['intended'])} | {_md(r['in_twenty'])} |"
           for r in sample]
    )
    return {
        "records": outcome.get("records", 0),
        "records_missing": outcome.get("records_missing", 0),
        "fields_match": outcome.get("match", 0),
        "fields_differ": outcome.get("differs", 0),
        "fields_missing": outcome.get("missing", 0),
        "fields_with_differences": dg.MetadataValue.json(outcome.get("fields_with_differences", {})),
        "difference_sample": dg.MetadataValue.md(table if sample else "no differences"),
        "html_report": dg.MetadataValue.path(html_report),
    }


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


__all__ = ["build_verification", "build_verification_definitions", "field_diff_key", "latest_field_diff", "loaded_ids",
           "CHECK_NAME"]
