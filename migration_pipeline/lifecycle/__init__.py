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


def lifecycle_definitions(mappings: list[Mapping]) -> list[dg.Definitions]:
    """Definitions each lifecycle module builds for the given mappings."""
    return []


def lifecycle_commands() -> list[CommandRegistrar]:
    """`register(subparsers)` functions adding each lifecycle module's CLI subcommand."""
    return []
