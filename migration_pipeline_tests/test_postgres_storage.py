"""The same migration with the Dagster instance and the ledger on PostgreSQL (dagster-postgres)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.harness import run_migration


def test_migration_runs_with_instance_and_ledger_on_postgres(fake_twenty, postgres_database, tmp_path: Path) -> None:
    dagster_db, ledger_db = postgres_database(), postgres_database()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"storage": {"postgres": {"postgres_url": dagster_db.replace("postgresql://", "postgresql+psycopg2://")}},
                        "telemetry": {"enabled": False}})
    )
    export = tmp_path / "export"
    generate_export(export, rows=60, seed=3)
    ledger_url = ledger_db.replace("postgresql://", "postgresql+psycopg2://")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        first = run_migration(instance=instance, fake=fake_twenty, export_dir=export,
                              ledger_url=ledger_url, output_dir=tmp_path / "out")
        assert first.success
        materialized = instance.get_latest_materialization_event(dg.AssetKey(["allclients", "load", "person"]))
        assert materialized is not None

        second = run_migration(instance=instance, fake=fake_twenty, export_dir=export,
                               ledger_url=ledger_url, output_dir=tmp_path / "out")
        assert second.success

    people = fake_twenty.records("people")
    with Ledger(ledger_url) as ledger:
        assert ledger.engine.dialect.name == "postgresql"
        writes = ledger.writes(object="people")
    created = {w["source_key"] for w in writes if w["operation"] == "create"}
    assert len(created) == len(people) > 0
    assert {w["operation"] for w in writes if w["run_key"] == first.output.name} >= {"create", "unchanged"}
