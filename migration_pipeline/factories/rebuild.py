"""Mapping -> the `<slug>/report/rebuild_package` asset: what Twenty cannot hold, exported.

Registered by `build_source_assets` only when the mapping declares export-only source objects
(`source.objects.<name>.export_only: true`) or a workflow document (`rebuild.workflow`). It
reads their extract assets (the same REST extract factory as every other source object) and
writes `<output>/<run>/rebuild_package/`; it never writes to Twenty.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.factories.run_conditions import unreadable_resources
from migration_pipeline.partitions import migration_run
from migration_pipeline.reports.rebuild_package import write_rebuild_package
from migration_pipeline.resources import MigrationSettings

PACKAGE_FOLDER = "rebuild_package"


def rebuild_package_key(slug: str) -> dg.AssetKey:
    return dg.AssetKey([slug, "report", "rebuild_package"])


def rebuild_inputs(mapping: Mapping) -> list[str]:
    """Source objects the package reads: the export-only ones, then the workflow's others."""
    names = list(mapping.export_only_objects)
    workflow = mapping.rebuild.workflow if mapping.rebuild else None
    if workflow is not None:
        for name in [workflow.root, *(child.object for child in workflow.children.values())]:
            if name not in names:
                names.append(name)
    return names


def build_rebuild_package_asset(mapping: Mapping) -> dg.AssetsDefinition:
    slug = mapping.slug
    ins = {name: dg.AssetIn(key=dg.AssetKey([slug, "extract", name])) for name in rebuild_inputs(mapping)}

    @dg.asset(
        key=rebuild_package_key(slug),
        ins=ins,
        description=f"What Twenty cannot hold, exported from {mapping.source.label}: a CSV per export-only "
        "resource, the workflow configuration as workflow.json and workflow.html, and a README.txt "
        "saying why each is not in Twenty; writes nothing to Twenty",
        required_resource_keys={"migration_settings"},
        kinds={"csv", "json", "html"},
        group_name=slug,
        partitions_def=migration_run,
    )
    def _rebuild_package(context: AssetExecutionContext, **frames: pd.DataFrame):
        settings: MigrationSettings = context.resources.migration_settings
        folder = settings.output_folder(context.partition_key, slug) / PACKAGE_FOLDER
        package = write_rebuild_package(folder, mapping, frames, context.partition_key,
                                        unreadable_resources(context, mapping))
        metadata = package.as_metadata()
        return dg.Output(str(folder), metadata={
            "folder": str(folder),
            "files": dg.MetadataValue.json(metadata["files"]),
            "workflow_roots": package.workflow_roots,
            "unreadable": dg.MetadataValue.json(metadata["unreadable"]),
        })

    return _rebuild_package


__all__ = ["build_rebuild_package_asset", "rebuild_package_key", "rebuild_inputs", "PACKAGE_FOLDER"]
