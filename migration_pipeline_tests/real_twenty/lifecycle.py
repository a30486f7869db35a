"""One source's whole life in a Twenty workspace, driven as a data engineer would: sample run,
`approve`, full run (through the sample gate), delta, an unchanged rerun, `rollback --all
--drop-schema`; each phase timed and verified against what Twenty answers through its API.

Runs go through the real assets (the harness materializes the same factories the Definitions
use); approve and rollback go through the CLI. One Dagster instance (a DAGSTER_HOME of its own)
and one ledger serve the whole life, as they would on an engineer's machine.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pandas as pd
import pytest

from migration_pipeline.cli import main as cli
from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.destinations.twenty.objects import STANDARD_OBJECTS
from migration_pipeline.engine.mapping import Mapping, load_mapping
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.resources import PROJECT_ROOT
from migration_pipeline_tests.harness import ADMIN_EMAIL, MigrationRun, run_migration
from migration_pipeline_tests.real_twenty.conftest import Twenty
from migration_pipeline_tests.real_twenty.measurements import DEFAULT_REPORT, Measurements, Phase, load_seconds
from migration_pipeline_tests.real_twenty.snapshot import snapshot, twenty_own_counts

SAMPLE, FULL = "sample-20261122T0900Z", "full-20261122T1000Z"
DELTA, RERUN = "delta-20261122T1000Z-20261122T1100Z", "delta-20261122T1100Z-20261122T1200Z"
WRITES = ("create", "update", "restore")
ID_CHUNK = 60  # ids per read-back request (a uuid list in the URL: examples-2.md section 2)


class RunFailed(Exception):
    """A run stopped: the life cannot go on (its steps' errors are the message)."""


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """Each failed step's error with its cause (the server's answer is usually in the cause)."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            cause = error.cause.message.strip() if error.cause else ""
            messages.append(f"{event.step_key}: {error.message.strip()} {cause}".strip())
    for evaluation in result.get_asset_check_evaluations():  # a blocking check's reasons are in its metadata
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            details = {k: v.value for k, v in evaluation.metadata.items()}
            messages.append(f"check {evaluation.check_name} on {'/'.join(evaluation.asset_key.path)}: "
                            f"{str(details)[:600]}")
    return messages


@dataclass
class Lifecycle:
    twenty: Twenty
    slug: str
    scenario: str
    home: Path  # DAGSTER_HOME, ledger and reports
    monkeypatch: pytest.MonkeyPatch
    measurements: Measurements
    sample_size: int
    resources: dict[str, Any] = field(default_factory=dict, repr=False)
    mapping: Mapping = field(init=False, repr=False)
    problems: list[str] = field(default_factory=list)  # what failed softly: the life goes on
    _own_before: dict[str, int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.mapping = load_mapping(MAPPINGS_DIR / f"{self.slug}__twenty.yaml")
        shutil.rmtree(self.home, ignore_errors=True)
        (self.home / "dagster_home").mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", self.home / "dagster_home" / "dagster.yaml")
        self.ledger_url = f"sqlite:///{self.home / 'ledger.sqlite'}"
        for name, value in {"DAGSTER_HOME": str(self.home / "dagster_home"), "MIGRATION__LEDGER_URL": self.ledger_url,
                            "TWENTY__API_URL": self.twenty.base_url, "TWENTY__API_KEY": self.twenty.api_key}.items():
            self.monkeypatch.setenv(name, value)
        self.instance = dg.DagsterInstance.get()

    # -- the workspace ---------------------------------------------------------------------------

    def objects(self) -> set[str]:
        return {o.twenty_object for o in self.mapping.objects} | set(self.mapping.custom_objects)

    def snapshot(self) -> dict[str, Any]:
        """The workspace now; Twenty's own records (event log, workflow runs) are only counted, and
        how many the life added is noted with the measurements."""
        with self.measurements.phase(self.scenario, "snapshot"), self.twenty.client() as http:
            taken, own = snapshot(http, self.objects()), twenty_own_counts(http)
        if self._own_before is None:
            self._own_before = own
        else:
            added = {k: n - self._own_before.get(k, 0) for k, n in own.items() if n != self._own_before.get(k, 0)}
            self.measurements.notes.append(f"{self.scenario}: records Twenty made itself and kept after the "
                                           f"rollback (not compared): {added or 'none'}")
        return taken

    # -- the phases ------------------------------------------------------------------------------

    def migrate(self, phase: str, run_key: str, export_dir: Path, gate: bool = False) -> MigrationRun:
        """One run through extract, stage, prepare, load, report and verify (reconciliation and
        the field diff); fails with the steps' own errors."""
        with self.measurements.phase(self.scenario, phase) as measured:
            run = run_migration(
                instance=self.instance, fake=self.twenty, export_dir=export_dir, ledger_url=self.ledger_url,
                output_dir=self.home / "out", run_key=run_key, slug=self.slug, fallback_owner=ADMIN_EMAIL,
                layers=("extract", "stage", "prepare", "load", "report", "verify"),
                requests_per_minute=self.twenty.requests_per_minute, skip_sample_gate=not gate,
                sample_size=self.sample_size, resources=self.resources,
            )
            self._measure(run, measured)
            if not run.success:
                measured.passed = False
                raise RunFailed(f"{phase} run {run_key} failed: " + " | ".join(failure_messages(run.result)))
        return run

    def approve(self, run_key: str) -> None:
        """`approve`; refused (a diff found differences: already a problem), the rest of the life
        is still worth seeing, so the differences are then accepted."""
        approve = ["approve", "--run-id", run_key, "--by", "real-twenty suite"]
        with self.measurements.phase(self.scenario, "approve") as measured:
            measured.passed = self.expect("approve", cli(approve) == 0, "approve refused the sample")
            if not measured.passed and cli([*approve, "--accept-differences"]) != 0:
                raise RunFailed(f"approve --accept-differences refused {run_key} too")

    def roll_back_everything(self) -> None:
        with self.measurements.phase(self.scenario, "rollback") as measured:
            code = cli(["rollback", "--all", "--drop-schema"])
            measured.passed = self.expect("rollback", code == 0, f"rollback --all --drop-schema exited {code}")

    def _measure(self, run: MigrationRun, measured: Phase) -> None:
        if not (run.output / "report" / "summary.json").exists():
            return
        summary = run.summary()
        measured.records_written = sum(o["created"] + o["updated"] for o in summary.values())
        measured.records_checked = sum(o["created"] + o["updated"] + o["unchanged"] for o in summary.values())
        measured.load_seconds = load_seconds(self.instance, run.result)

    # -- what must be true after a run -----------------------------------------------------------

    def expect(self, phase: str, condition: bool, problem: Any) -> bool:
        """A promise checked without stopping the life: the suite reports every broken one."""
        if not condition:
            self.problems.append(f"{phase}: {problem}")
        return condition

    def verify(self, phase: str, run: MigrationRun) -> None:
        """Every staged record written (or unchanged) and read back from Twenty by its id; the
        field diff clean; reconciliation's checks passed."""
        summary = run.summary()
        quarantined = run.report("quarantined.csv")
        for obj, counts in summary.items():
            reasons = quarantined[quarantined["object"] == self._plural(obj)]["reason"].value_counts().head(3)
            self.expect(phase, counts["rejected"] == 0, f"{obj}: {counts['rejected']} rejected at the load: "
                        f"{reasons.to_dict()}")
            loaded = counts["created"] + counts["updated"] + counts["unchanged"]
            self.expect(phase, loaded == counts["staged"], f"{obj}: {counts['staged']} staged, {loaded} loaded")
        ids = self._ledger_ids(run_key_of(run))
        staged = {self._plural(o): c["staged"] for o, c in summary.items() if c["staged"]}
        self.expect(phase, {o: len(i) for o, i in ids.items()} == staged,
                    f"records in the ledger {({o: len(i) for o, i in ids.items()})} != staged {staged}")
        with self.twenty.client() as http:
            for plural, wanted in ids.items():
                missing = wanted - _found(http, plural, sorted(wanted))
                self.expect(phase, not missing, f"{plural}: {len(missing)} records the ledger holds are not in Twenty")
        diff = pd.read_csv(run.output / "verify" / "field_diff.csv", dtype=str, keep_default_na=False)
        for (obj, name), rows in diff.groupby(["object", "field"]):
            first = rows.iloc[0]
            self.problems.append(f"{phase}: field diff {obj}.{name}: {len(rows)} x {first['outcome']}, e.g. "
                                 f"{first['source_key']} intended {first['intended']!r}, Twenty {first['in_twenty']!r}")
        for check in ("counts_match", "field_totals_match"):
            evaluation = run.check(f"{self.slug}/verify/reconciliation", check)
            self.expect(phase, evaluation.passed, f"reconciliation {check} failed: "
                        f"{ {k: v.value for k, v in evaluation.metadata.items()} }")

    def verify_wrote_nothing(self, phase: str, run: MigrationRun) -> None:
        summary = run.summary()
        written = {o: c for o, c in summary.items() if c["created"] or c["updated"] or c["rejected"]}
        self.expect(phase, written == {}, f"an unchanged rerun wrote: {written}")
        with Ledger(self.ledger_url) as ledger:
            operations = {op for ops in ledger.counts(run_key_of(run)).values() for op in ops}
        self.expect(phase, operations <= {"unchanged"}, f"ledger operations of the rerun: {operations}")

    def _ledger_ids(self, run_key: str) -> dict[str, set[str]]:
        ids: dict[str, set[str]] = defaultdict(set)
        with Ledger(self.ledger_url) as ledger:
            for write in ledger.writes(run_key=run_key):
                if write["status"] == "done" and write["operation"] in (*WRITES, "unchanged"):
                    ids[write["object"]].add(write["twenty_id"])
        return dict(ids)

    def _plural(self, singular: str) -> str:
        if singular in self.mapping.custom_objects:
            return self.mapping.custom_objects[singular].plural
        return STANDARD_OBJECTS[singular].plural


def run_key_of(run: MigrationRun) -> str:
    return run.output.name


def _found(http: httpx.Client, plural: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        response = http.get(f"/rest/{plural}", params={"filter": f"id[in]:[{','.join(chunk)}]", "limit": ID_CHUNK})
        response.raise_for_status()
        found |= {r["id"] for r in response.json()["data"][plural]}
    return found


def report_home(twenty: Twenty, scenario: str) -> Path:
    """Where a scenario's ledger, Dagster home and reports live (kept after the run, to read)."""
    return DEFAULT_REPORT.parent.resolve() / f"{twenty.kind}-{scenario}"
