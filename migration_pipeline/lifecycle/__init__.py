"""Run lifecycle on top of the ledger: sample diff, reconciliation, delta pickup, rollback.

Each lifecycle module contributes Dagster definitions (jobs, sensors, assets) and CLI commands
through the two lists below, so definitions.py and cli.py stay the only entry points.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import dagster as dg

from migration_pipeline.engine.mapping import Mapping

CommandRegistrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """`--requests-per-minute` and `--batch-size`, for every command that writes to Twenty."""
    parser.add_argument("--requests-per-minute", type=int, default=None, metavar="N",
                        help="client-side cap on requests to Twenty (default: TWENTY__REQUESTS_PER_MINUTE, "
                        "else 100, Twenty's self-hosted default); raise it when your server allows more")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="records per write request, 1..200 (default: TWENTY__BATCH_SIZE, else 200, "
                        "Twenty's cap)")


def lifecycle_definitions(mappings: list[Mapping]) -> list[dg.Definitions]:
    """Definitions each lifecycle module builds for the given mappings."""
    # Imported here: the factories import lifecycle modules, so a top-level import would cycle.
    from migration_pipeline.factories.reconciliation import build_reconciliation
    from migration_pipeline.factories.sensors import build_delta_sensor
    from migration_pipeline.factories.verification import build_verification_definitions
    from migration_pipeline.lifecycle.approval import approval_definitions
    from migration_pipeline.lifecycle.rollback_job import rollback_definitions

    definitions: list[dg.Definitions] = []
    definitions.append(dg.Definitions(sensors=[build_delta_sensor(m) for m in mappings]))
    definitions += [build_reconciliation(m) for m in mappings]
    definitions += [build_verification_definitions(m) for m in mappings]
    definitions.append(approval_definitions())
    definitions.append(rollback_definitions())
    return definitions


def lifecycle_commands() -> list[CommandRegistrar]:
    """`register(subparsers)` functions adding each lifecycle module's CLI subcommand."""
    from migration_pipeline.lifecycle.approval import register_approve_command
    from migration_pipeline.lifecycle.rollback_job import register as register_rollback_command

    commands: list[CommandRegistrar] = []
    commands.append(register_approve_command)
    commands.append(register_rollback_command)
    return commands
