"""The only entry point: reads mappings/, returns the Dagster definitions.

Importing this module reads no environment variable; secrets are `dg.EnvVar`s resolved when a
run starts.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.mapping import Mapping, load_mappings
from migration_pipeline.factories.assets import build_source_assets, files_resource_key
from migration_pipeline.factories.extract_rest import rest_resource_key
from migration_pipeline.lifecycle import lifecycle_definitions
from migration_pipeline.resources import LedgerStore, MigrationSettings, SourceFiles
from migration_pipeline.sources.registry import rest_source_resource

MAPPINGS_DIR = Path(__file__).resolve().parents[1] / "mappings"


def default_resources(mappings: list[Mapping]) -> dict[str, object]:
    resources: dict[str, object] = {
        "twenty": TwentyWriter(api_url=dg.EnvVar("TWENTY__API_URL"), api_key=dg.EnvVar("TWENTY__API_KEY")),
        "ledger": LedgerStore(),
        "migration_settings": MigrationSettings(),
    }
    for mapping in mappings:
        if mapping.source.kind == "rest":  # an API client, credentials from <SLUG>__* variables at launch
            resources[rest_resource_key(mapping)] = rest_source_resource(mapping.slug)
        else:
            resources[files_resource_key(mapping.slug)] = SourceFiles(slug=mapping.slug)
    return resources


def build_definitions(mappings_dir: Path = MAPPINGS_DIR) -> dg.Definitions:
    mappings = load_mappings(mappings_dir)
    assets = [asset for mapping in mappings for asset in build_source_assets(mapping)]
    core = dg.Definitions(assets=assets, resources=default_resources(mappings))
    return dg.Definitions.merge(core, *lifecycle_definitions(mappings))


defs = build_definitions()
