"""Dagster resources that are not the Twenty writer: where the export files are, the ledger,
and per-run settings. None of them reads the environment at import time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.run_settings import RunSettings, resolve_settings
from migration_pipeline.ledger.ledger import Ledger

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = PROJECT_ROOT / "sample_data"


class SourceFiles(dg.ConfigurableResource):
    """A folder holding one source's export files.

    Empty `input_dir` means: `<SLUG>__INPUT_DIR` if set when the run starts, else the bundled
    sample export in sample_data/<slug>/.
    """

    slug: str
    input_dir: str = ""

    def folder(self) -> Path:
        chosen = self.input_dir or os.environ.get(f"{self.slug.upper()}__INPUT_DIR", "")
        return Path(chosen) if chosen else SAMPLE_DATA / self.slug


class LedgerStore(dg.ConfigurableResource):
    """The ledger database: a SQLite file by default, PostgreSQL when a URL is configured."""

    url: str = ""

    def open(self, source: str | None = None) -> Ledger:
        """With `source`, its id map sees only that source's runs (see `Ledger`)."""
        return Ledger(self.url or os.environ.get("MIGRATION__LEDGER_URL", "") or default_ledger_url(), source)


def default_ledger_url() -> str:
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'ledger.sqlite'}"


class MigrationSettings(dg.ConfigurableResource):
    """Choices a migration engineer makes per run, on top of the mapping's own settings."""

    overrides_json: str = "{}"
    fallback_owner_email: str = ""
    output_dir: str = ""
    skip_sample_gate: bool = False
    sample_size: int = 300  # source rows in a sample run's slice (lookup tables are kept whole)

    def overrides(self) -> dict[str, Any]:
        return json.loads(self.overrides_json or "{}")

    def resolve(self, mapping: Mapping, folder: Path | None = None) -> RunSettings:
        """Every setting of the run, the required ones (time zone, currency) stated with their
        origin; `SettingsMissing` says how to set one nobody stated (`engine.run_settings`)."""
        return resolve_settings(mapping, self.overrides(), folder, os.environ)

    def output_folder(self, run_key: str, source: str) -> Path:
        """`<output>/<run_key>`, claimed for `source`: a run belongs to one source, so a run id
        another source's run already wrote reports under is refused, never overwritten."""
        base = Path(self.output_dir or os.environ.get("MIGRATION__OUTPUT_DIR", "") or Path.cwd() / "migration_output")
        folder = base / run_key
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / SOURCE_MARKER
        owner = marker.read_text().strip() if marker.exists() else ""
        if owner and owner != source:
            raise ValueError(
                f"{folder} holds the reports of the {owner} run {run_key}; a run belongs to one source, "
                f"so this {source} run needs its own id (leave out --run-id for a new one)"
            )
        if not owner:
            marker.write_text(source + "\n")
        return folder


SOURCE_MARKER = ".source"  # names the source whose run wrote this output folder
