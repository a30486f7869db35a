"""Running a migration through Dagster in tests: real assets, real resources, the fake Twenty
over loopback HTTP, an instance of the caller's choosing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.mapping import load_mapping
from migration_pipeline.factories.assets import build_source_assets, files_resource_key
from migration_pipeline.lifecycle import lifecycle_definitions
from migration_pipeline.partitions import migration_run
from migration_pipeline.resources import LedgerStore, MigrationSettings, SourceFiles

ADMIN_EMAIL = "admin@example.com"
# What the operator states for the fake Actionstep firm (its API says neither): --set in the CLI.
STATED_SETTINGS: dict[str, dict[str, str]] = {"actionstep": {"timezone": "Australia/Sydney", "currency": "AUD"}}


@dataclass
class MigrationRun:
    result: dg.ExecuteInProcessResult
    output: Path

    @property
    def success(self) -> bool:
        return self.result.success

    def report(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.output / "report" / name, dtype=str, keep_default_na=False)

    def summary(self) -> dict[str, Any]:
        return json.loads((self.output / "report" / "summary.json").read_text())

    def check(self, asset: str, name: str) -> dg.AssetCheckEvaluation:
        return next(
            e for e in self.result.get_asset_check_evaluations()
            if "/".join(e.asset_key.path) == asset and e.check_name == name
        )

    def materialized(self) -> set[str]:
        return {"/".join(e.asset_key.path) for e in self.result.get_asset_materialization_events() if e.asset_key}


def run_migration(
    *,
    instance: dg.DagsterInstance,
    fake: Any,
    export_dir: Path,
    ledger_url: str,
    output_dir: Path,
    run_key: str = "full-20261122T1000Z",
    slug: str = "allclients",
    mappings_dir: Path = MAPPINGS_DIR,
    settings: dict[str, Any] | None = None,
    fallback_owner: str = ADMIN_EMAIL,
    layers: tuple[str, ...] = ("extract", "stage", "prepare", "load", "report"),
    requests_per_minute: int = 6000,
    skip_sample_gate: bool = True,
    sample_size: int | None = None,
    resources: dict[str, Any] | None = None,
) -> MigrationRun:
    """`fake` is any Twenty with `base_url` and `api_key` (the fake, or a real server).
    `resources` are added to (or replace) the ones built here, e.g. a REST source's client."""
    mapping = load_mapping(mappings_dir / f"{slug}__twenty.yaml")
    assets = build_source_assets(mapping)
    assets += [a for defs in lifecycle_definitions([mapping]) for a in defs.assets or ()]  # e.g. verify/...
    instance.add_dynamic_partitions(migration_run.name, [run_key])
    result = dg.materialize(
        assets,
        instance=instance,
        partition_key=run_key,
        selection=[a.key for a in assets if a.key.path[1] in layers],
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        resources={
            files_resource_key(slug): SourceFiles(slug=slug, input_dir=str(export_dir)),
            "twenty": TwentyWriter(
                api_url=fake.base_url,
                api_key=fake.api_key,
                requests_per_minute=requests_per_minute,
                backoff_base_seconds=0.05,
                backoff_max_seconds=0.5,
            ),
            "ledger": LedgerStore(url=ledger_url),
            "migration_settings": MigrationSettings(
                overrides_json=json.dumps({**STATED_SETTINGS.get(slug, {}), **(settings or {})}),
                fallback_owner_email=fallback_owner,
                output_dir=str(output_dir),
                skip_sample_gate=skip_sample_gate,
                **({} if sample_size is None else {"sample_size": sample_size}),
            ),
            **(resources or {}),
        },
    )
    return MigrationRun(result, output_dir / run_key)
