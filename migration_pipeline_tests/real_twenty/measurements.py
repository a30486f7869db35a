"""Seconds per phase and records/s of the loads, collected by the suite and written to one file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg

REPORT_VAR = "TWENTY_TEST_REPORT"  # where the measurements go (default below)
DEFAULT_REPORT = Path("migration_output") / "real_twenty" / "measurements.json"


@dataclass
class Phase:
    scenario: str  # e.g. "real/allclients-bundled"
    phase: str  # sample, approve, full, delta, rerun, rollback, snapshot
    seconds: float
    passed: bool = True
    records_written: int = 0  # created + updated by the loads
    records_checked: int = 0  # every record the loads handled (unchanged included)
    load_seconds: float = 0.0  # the load steps alone

    @property
    def records_per_second(self) -> float | None:
        return round(self.records_written / self.load_seconds, 1) if self.records_written and self.load_seconds else None


@dataclass
class Measurements:
    phases: list[Phase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is worth knowing but proves nothing

    @contextmanager
    def phase(self, scenario: str, name: str) -> Iterator[Phase]:
        """Times the block; a failing block is recorded as failed and re-raised."""
        measured = Phase(scenario, name, 0.0)
        started = time.perf_counter()
        try:
            yield measured
        except BaseException:
            measured.passed = False
            raise
        finally:
            measured.seconds = round(time.perf_counter() - started, 1)
            self.phases.append(measured)

    def table(self) -> list[str]:
        lines = [f"{'scenario':<32} {'phase':<9} {'s':>7} {'ok':>3} {'written':>8} {'checked':>8} {'load s':>7} {'rec/s':>7}"]
        for p in self.phases:
            rate = p.records_per_second
            lines.append(f"{p.scenario:<32} {p.phase:<9} {p.seconds:>7.1f} {'yes' if p.passed else 'NO':>3} "
                         f"{p.records_written:>8} {p.records_checked:>8} {p.load_seconds:>7.1f} "
                         f"{'' if rate is None else rate:>7}")
        return lines

    def write(self) -> Path:
        path = Path(os.environ.get(REPORT_VAR) or DEFAULT_REPORT)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [{**asdict(p), "records_per_second": p.records_per_second} for p in self.phases]
        path.write_text(json.dumps({"phases": rows, "notes": self.notes}, indent=2), encoding="utf-8")
        return path


def load_seconds(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> float:
    """Seconds spent in the run's `<slug>/load/...` steps (the in-process executor runs steps one
    after another, so they add up)."""
    started: dict[str, float] = {}
    total = 0.0
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not event.step_key or "load" not in event.step_key.split("__"):
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            total += entry.timestamp - started.pop(event.step_key)
    return round(total, 2)
