"""Delta pickup for API sources: one cheap "modified since" query per sensor tick.

An API connector (Actionstep first) implements `ModifiedSince`; `poll_modified_since` keeps the
high-water mark (the newest modification time the source reported) in the sensor cursor as JSON
and decides when a delta run is due. The run's partition key names the window it must fetch,
`delta-<high-water mark>-<now>` (minutes, floored), so the key alone reproduces the run: the
connector reads it back with `delta.delta_window(run_key)`. Flooring to the minute re-reads at
most a minute of records, which the ledger's upserts make harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from migration_pipeline.lifecycle.delta import delta_run_key


class ModifiedSince(Protocol):
    def newest_modification(self, since: datetime) -> datetime | None:
        """The newest modification time among records changed after `since` (deletions
        included where the API reports them), or None when nothing changed."""
        ...


@dataclass(frozen=True)
class PollCursor:
    high_water: datetime | None = None

    @classmethod
    def parse(cls, text: str | None) -> PollCursor:
        raw = json.loads(text) if text else {}
        return cls(datetime.fromisoformat(raw["high_water"]) if raw.get("high_water") else None)

    def to_json(self) -> str:
        return json.dumps({"high_water": self.high_water.isoformat() if self.high_water else None})


@dataclass(frozen=True)
class DeltaDue:
    run_key: str
    cursor: str  # the cursor to store once the run is requested


def poll_modified_since(
    source: ModifiedSince, cursor: str | None, now: datetime, *, first_since: datetime
) -> DeltaDue | None:
    """A delta run when the source changed after the cursor's high-water mark, else None.

    `first_since` starts the window when the cursor is empty: the time of the run the deltas
    follow (usually the full run; see `delta.previous_run_time`).
    """
    since = PollCursor.parse(cursor).high_water or first_since
    newest = source.newest_modification(since)
    if newest is None or newest <= since:
        return None
    return DeltaDue(run_key=delta_run_key(since, now), cursor=PollCursor(newest).to_json())
