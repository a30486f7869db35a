"""A full run loads only after a person approved a sample run of the same source."""

from __future__ import annotations

import dagster as dg

from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.partitions import run_kind


def enforce_sample_gate(ledger: Ledger, source: str, run_key: str, *, skip: bool) -> str:
    """Returns how the gate was passed; raises a Failure that says what to do when it is not."""
    if run_kind(run_key) != "full":
        return f"not gated: {run_kind(run_key)} run"
    if skip:
        return "gate skipped on request"
    approved = ledger.approved_samples(source)
    if not approved:
        raise dg.Failure(
            description=(
                f"full run {run_key} needs an approved sample run of {source} first: run a sample "
                f"(migration-pipeline run --source {source} --run-id sample-<UTC time>), check its "
                "field-level diff, then approve it (migration-pipeline approve --run-id sample-...). "
                "To load without a sample, pass --skip-sample-gate (MigrationSettings.skip_sample_gate)."
            )
        )
    latest = approved[-1]
    return f"approved sample {latest['run_key']} by {latest['approved_by']}"
