"""The one partitions definition: every migration run (sample, full, delta) is a partition.

Keys carry what reproduces the run: its kind and time (`full-20260501T1000Z`), and for a delta
the window (`delta-20260501T1000Z-20260501T1100Z`). The ledger keeps the rest (input files,
settings) under the same key.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import dagster as dg

migration_run = dg.DynamicPartitionsDefinition(name="migration_run")

RUN_KINDS = ("sample", "full", "delta")
RUN_KEY = re.compile(r"^(sample|full|delta)-\d{8}T\d{4}Z(-\d{8}T\d{4}Z)?(-[a-z0-9]+)?$")


def new_run_key(kind: str, now: datetime | None = None) -> str:
    if kind not in RUN_KINDS:
        raise ValueError(f"run kind must be one of {RUN_KINDS}, not {kind!r}")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%MZ")
    return f"{kind}-{stamp}"


def run_kind(run_key: str) -> str:
    kind = run_key.split("-", 1)[0]
    return kind if kind in RUN_KINDS else "full"


def validate_run_key(run_key: str) -> str:
    if not RUN_KEY.match(run_key):
        raise ValueError(
            f"run id {run_key!r} should look like full-20260501T1000Z (kind-UTC time, optional -suffix)"
        )
    return run_key
