"""The conditions of a run, for its steps: the settings it states (time zone, currency), and
what its later steps learn from its extract steps: the resources the source refused.

Each REST extract records an unreadable optional resource in its materialization metadata
(`engine.unreadable.METADATA_KEY`); the report and rebuild-package steps read it back from the
instance for their own partition, so it works whichever process ran the extract.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import dagster as dg
from dagster import AssetExecutionContext

from pathlib import Path

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.run_settings import RunSettings, SettingsMissing
from migration_pipeline.engine.unreadable import METADATA_KEY, UnreadableResource
from migration_pipeline.resources import MigrationSettings


def run_settings(context: AssetExecutionContext, mapping: Mapping, folder: Path | None = None) -> RunSettings:
    """The run's settings; a required one nobody stated stops the step with how to set it
    (every extract step asks first, so the run stops before it reads or writes anything)."""
    settings: MigrationSettings = context.resources.migration_settings
    try:
        return settings.resolve(mapping, folder)
    except SettingsMissing as missing:
        raise dg.Failure(description=str(missing)) from None


def settings_metadata(stated: RunSettings) -> dict[str, dg.MetadataValue]:
    return {"settings": dg.MetadataValue.json(stated.stated)} if stated.stated else {}


def unreadable_resources(context: AssetExecutionContext, mapping: Mapping) -> list[UnreadableResource]:
    """The source objects of this run whose resource was refused (403/404) and read as empty."""
    found: list[UnreadableResource] = []
    for name in mapping.source.objects:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey([mapping.slug, "extract", name]),
                                  asset_partitions=[context.partition_key]),
            limit=1,
        ).records
        materialization = records[0].asset_materialization if records else None
        entry = materialization.metadata.get(METADATA_KEY) if materialization else None
        if entry is not None:
            found.append(UnreadableResource.from_metadata(name, entry.value))
    return found


__all__ = ["unreadable_resources", "run_settings", "settings_metadata"]
