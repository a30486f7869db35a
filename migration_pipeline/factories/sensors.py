"""Mapping -> the delta sensor of its source: during cutover it notices new source data and, in
one `SensorResult`, adds a `delta-<previous run UTC>-<now UTC>` partition and requests its run
(extract through report; not the dry-run plan).

File sources watch `<SLUG>__DELTA_DIR` (read when the sensor evaluates) for new export
sub-folders; API sources poll a "modified since" query (`lifecycle.delta_poll`). The high-water
mark lives in the cursor as JSON. What reproduces a run is in its partition key plus the ledger
(`runs.params`: for a file delta, the export folder it read).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping as MappingOf
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.factories.assets import build_source_assets, files_resource_key
from migration_pipeline.lifecycle.delta import delta_run_key, previous_run_time
from migration_pipeline.lifecycle.delta_files import SETTLE_SECONDS, FilesCursor, scan_exports
from migration_pipeline.lifecycle.delta_poll import ModifiedSince, poll_modified_since
from migration_pipeline.partitions import migration_run
from migration_pipeline.resources import LedgerStore

DELTA_LAYERS = ("extract", "stage", "prepare", "load", "report")
EXPORT_TAG = "migration/delta_export"


def delta_asset_keys(mapping: Mapping) -> list[dg.AssetKey]:
    """What a delta run materializes: the source's assets from extract to report."""
    return [asset.key for asset in build_source_assets(mapping) if asset.key.path[1] in DELTA_LAYERS]


def delta_dir_variable(slug: str) -> str:
    return f"{slug.upper()}__DELTA_DIR"


def files_run_config(slug: str, folder: Path) -> dict[str, Any]:
    """Run config pointing the source files resource at one export folder."""
    return {"resources": {files_resource_key(slug): {"config": {"slug": slug, "input_dir": str(folder)}}}}


def build_delta_sensor(mapping: Mapping, *, settle_seconds: float = SETTLE_SECONDS) -> dg.SensorDefinition:
    if mapping.source.kind == "rest":  # the source's client resource is its ModifiedSince
        from migration_pipeline.factories.extract_rest import rest_resource_key

        resource_key = rest_resource_key(mapping)
        return build_api_delta_sensor(mapping, lambda context: getattr(context.resources, resource_key),
                                      required_resource_keys=frozenset({resource_key}))
    return _files_sensor(mapping, settle_seconds)


def _files_sensor(mapping: Mapping, settle_seconds: float) -> dg.SensorDefinition:
    slug = mapping.slug
    variable = delta_dir_variable(slug)
    files = [spec.file for spec in mapping.source.objects.values()]
    asset_keys = delta_asset_keys(mapping)

    @dg.sensor(
        name=f"{slug}_delta",
        description=f"Cutover: a new complete {mapping.source.label} export in ${variable} "
        "-> a delta partition and its run",
        target=asset_keys,
        minimum_interval_seconds=60,
    )
    def _sensor(context: dg.SensorEvaluationContext, ledger: LedgerStore) -> dg.SensorResult | dg.SkipReason:
        delta_dir = os.environ.get(variable, "")
        if not delta_dir or not Path(delta_dir).is_dir():
            return dg.SkipReason(f"${variable} does not name a folder ({delta_dir or 'unset'})")
        cursor = FilesCursor.parse(context.cursor)
        now = datetime.now(timezone.utc)
        scan = scan_exports(Path(delta_dir), files, cursor.mark, now.timestamp(), settle_seconds)
        if scan.newest is None:
            return dg.SkipReason("; ".join(["no new complete export", *scan.waiting]))
        export = scan.newest
        with ledger.open() as runs:
            start = cursor.run_at or previous_run_time(runs, slug)
            run_key = delta_run_key(start or datetime.fromtimestamp(export.ready_at, timezone.utc), now)
            if context.instance.has_dynamic_partition(migration_run.name, run_key):
                return dg.SkipReason(f"{run_key} exists already; {export.folder.name} waits for the next minute")
            runs.request_run(run_key, slug, "delta", {
                "mapping_version": mapping.version, "input_dir": str(export.folder), "export_ready_at": export.ready_at,
            })
        return delta_request(
            run_key,
            asset_keys,
            FilesCursor(export.folder.name, export.ready_at, now).to_json(),
            run_config=files_run_config(slug, export.folder),
            tags={EXPORT_TAG: str(export.folder)},
        )

    return _sensor


def build_api_delta_sensor(
    mapping: Mapping,
    connect: Callable[[dg.SensorEvaluationContext], ModifiedSince],
    *,
    required_resource_keys: frozenset[str] = frozenset(),
) -> dg.SensorDefinition:
    """The sensor of an API source: `connect` builds the connector's ModifiedSince (from the
    context's resources); the delta run reads its window from its partition key."""
    slug = mapping.slug
    asset_keys = delta_asset_keys(mapping)

    @dg.sensor(
        name=f"{slug}_delta",
        description=f"Cutover: {mapping.source.label} records modified since the last run -> a delta partition and its run",
        target=asset_keys,
        required_resource_keys={"ledger", *required_resource_keys},
        minimum_interval_seconds=60,
    )
    def _sensor(context: dg.SensorEvaluationContext, **_resources: Any) -> dg.SensorResult | dg.SkipReason:
        # Resources also arrive as keyword arguments; `connect` reads them from the context.
        now = datetime.now(timezone.utc)
        first_since = now
        if not context.cursor:
            with context.resources.ledger.open() as ledger:
                first_since = previous_run_time(ledger, slug) or now
        due = poll_modified_since(connect(context), context.cursor, now, first_since=first_since)
        if due is None:
            return dg.SkipReason(f"no {mapping.source.label} record changed since the last delta")
        if context.instance.has_dynamic_partition(migration_run.name, due.run_key):
            return dg.SkipReason(f"{due.run_key} exists already; waiting for the next minute")
        return delta_request(due.run_key, asset_keys, due.cursor)

    return _sensor


def delta_request(
    run_key: str,
    asset_keys: list[dg.AssetKey],
    cursor: str,
    *,
    run_config: MappingOf[str, Any] | None = None,
    tags: MappingOf[str, str] | None = None,
) -> dg.SensorResult:
    """Add the delta partition and request its run, in one result."""
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key=run_key, partition_key=run_key, asset_selection=asset_keys,
            run_config=dict(run_config or {}), tags=dict(tags or {}),
        )],
        dynamic_partitions_requests=[migration_run.build_add_request([run_key])],
        cursor=cursor,
    )
