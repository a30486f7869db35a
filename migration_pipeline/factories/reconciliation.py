"""Mapping -> the `<slug>/verify/reconciliation` asset and its checks `counts_match` and
`field_totals_match`: after the loads, Twenty is read back and compared with what was loaded."""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.factories.assets import key, staged_objects
from migration_pipeline.lifecycle.reconciliation import Reconciliation, reconcile
from migration_pipeline.partitions import migration_run
from migration_pipeline.reports.reconciliation import write_reconciliation_report
from migration_pipeline.resources import MigrationSettings

COUNTS_MATCH = "counts_match"
FIELD_TOTALS_MATCH = "field_totals_match"
METADATA_DIFFERENCES = 50  # differences listed in check metadata; all are in the JSON report


def build_reconciliation(mapping: Mapping) -> dg.Definitions:
    return dg.Definitions(assets=[reconciliation_asset(mapping)])


def reconciliation_asset(mapping: Mapping) -> dg.AssetsDefinition:
    slug = mapping.slug
    objects = staged_objects(mapping)
    asset_key = key(slug, "verify", "reconciliation")
    ins = {f"stage_{obj}": dg.AssetIn(key=key(slug, "stage", obj)) for obj in objects}
    ins |= {f"load_{obj}": dg.AssetIn(key=key(slug, "load", obj)) for obj in objects}

    @dg.asset(
        key=asset_key,
        ins=ins,
        description="Twenty read back through the API after the loads: records per object (source vs "
        "ledger vs Twenty) and field totals (select values, currency sums per select value, linked "
        "relations, targets per record); HTML report with charts and JSON",
        required_resource_keys={"twenty", "ledger", "migration_settings"},
        check_specs=[
            dg.AssetCheckSpec(COUNTS_MATCH, asset=asset_key,
                              description="per object: records loaded == should exist per ledger == found in "
                              "Twenty, and source rows == loaded + quarantined + excluded"),
            dg.AssetCheckSpec(FIELD_TOTALS_MATCH, asset=asset_key,
                              description="totals from the staged rows == totals of the records read back"),
        ],
        kinds={"twenty", "html"},
        group_name=slug,
        partitions_def=migration_run,
    )
    def _reconciliation(context: AssetExecutionContext, **upstream: Any):
        writer: TwentyWriter = context.resources.twenty
        settings: MigrationSettings = context.resources.migration_settings
        run_key = context.partition_key
        loaded = [(upstream[f"stage_{obj}"], upstream[f"load_{obj}"]) for obj in objects]
        with context.resources.ledger.open(source=mapping.slug) as ledger, writer.client() as client:
            result = reconcile(client, ledger, mapping, run_key, loaded)
        paths = write_reconciliation_report(settings.output_folder(run_key, mapping.slug) / "verify", result)
        _log_mismatches(context, result)
        yield dg.Output(
            result.to_dict(),
            metadata={
                "report": dg.MetadataValue.path(str(paths["html"])),
                "json": dg.MetadataValue.path(str(paths["json"])),
                "records_read": result.records_read,
                "read_requests": result.read_requests,
                "counts": dg.MetadataValue.json([c.to_dict() for c in result.counts]),
            },
        )
        yield dg.AssetCheckResult(
            check_name=COUNTS_MATCH,
            passed=result.counts_match,
            metadata={
                "mismatches": dg.MetadataValue.json(result.count_mismatches()),
                "objects_checked": len(result.counts),
                "report": dg.MetadataValue.path(str(paths["html"])),
            },
        )
        differences = result.total_differences()
        yield dg.AssetCheckResult(
            check_name=FIELD_TOTALS_MATCH,
            passed=not differences,
            metadata={
                "differences": dg.MetadataValue.json(differences[:METADATA_DIFFERENCES]),
                "difference_count": len(differences),
                "totals_checked": len(result.totals),
                "report": dg.MetadataValue.path(str(paths["html"])),
            },
        )

    return _reconciliation


def _log_mismatches(context: AssetExecutionContext, result: Reconciliation) -> None:
    for counts in result.count_mismatches():
        context.log.error(
            f"reconciliation: {counts['object']}: loaded {counts['loaded']}, ledger {counts['ledger_should_exist']}, "
            f"in Twenty {counts['in_twenty']}; missing e.g. {counts['missing_in_twenty'][:5]}"
        )
    for difference in result.total_differences()[:METADATA_DIFFERENCES]:
        context.log.error(
            f"reconciliation: {difference['object']} {difference['total']} [{difference['bucket']}]: "
            f"expected {difference['expected']}, in Twenty {difference['actual']}"
        )


__all__ = ["COUNTS_MATCH", "FIELD_TOTALS_MATCH", "build_reconciliation", "reconciliation_asset"]
