"""Exactly once through a faulty network (issue 16), on the fake and, when TWENTY_TEST_URL and
TWENTY_TEST_API_KEY are set, a real Twenty: the fault proxy sits between the pipeline and Twenty
and answers 30% of record and metadata writes with 429, 503, a lost 504 after the write, a
dropped connection after the write or a stall past the client's timeout. The full run must land
every record exactly once (junctions included) and ledger each as a create, an unchanged rerun
must write nothing, and `rollback --all --drop-schema` (through the same faults) must leave the
workspace equal to its snapshot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline_tests.fakes.fault_proxy import FaultRates, serve_fault_proxy
from migration_pipeline_tests.real_twenty.conftest import Twenty
from migration_pipeline_tests.real_twenty.exports import BUNDLED_SAMPLE, copy_export
from migration_pipeline_tests.real_twenty.lifecycle import FULL, RERUN, Lifecycle, RunFailed, report_home
from migration_pipeline_tests.real_twenty.snapshot import differences

FAULTS = FaultRates.spread(0.3)  # all five kinds, 6% each
# A stall outlasts the client's patience; a real server under load may take seconds to answer.
PATIENCE = {"fake": (1.5, 2.5), "real": (10.0, 12.0)}  # client timeout, stall (s)
BATCH = 40  # smaller batches: more requests, so more faults of every kind


def test_an_allclients_run_through_30_percent_faults_lands_exactly_once_and_rolls_back_exactly(
    twenty: Twenty, monkeypatch, measurements, tmp_path: Path
) -> None:
    export = copy_export(BUNDLED_SAMPLE, tmp_path / "export")
    rates = {"record_write": FAULTS, "metadata_write": FAULTS}
    timeout, stall = PATIENCE[twenty.kind]
    with serve_fault_proxy(twenty.base_url, rates, seed=8, stall_seconds=stall) as proxy:
        faulty = Twenty(twenty.kind, proxy.base_url, twenty.api_key, twenty.requests_per_minute)
        writer = TwentyWriter(api_url=proxy.base_url, api_key=twenty.api_key, batch_size=BATCH,
                              requests_per_minute=twenty.requests_per_minute, timeout_seconds=timeout,
                              max_attempts=10, backoff_base_seconds=0.05, backoff_max_seconds=0.5)
        life = Lifecycle(faulty, "allclients", f"{twenty.kind}/allclients-faults", report_home(twenty, "faults"),
                         monkeypatch, measurements, sample_size=60, resources={"twenty": writer})
        before = life.snapshot()
        try:
            full = life.migrate("full", FULL, export)
            life.verify("full", full)
            _expect_each_record_once_and_ledgered_as_a_create(life, before)
            rerun = life.migrate("rerun", RERUN, export)
            life.verify_wrote_nothing("rerun", rerun)
        except RunFailed as stopped:
            life.problems.append(str(stopped))
        finally:
            life.roll_back_everything()
            left = differences(before, life.snapshot())
            life.expect("after rollback", not left, f"{len(left)} differences from the snapshot before: {left[:40]}")
        injected = proxy.faults()
    measurements.notes.append(f"{twenty.kind}/allclients-faults: faults injected {injected}")
    assert set(injected) == {"throttle", "unavailable", "lost", "drop", "stall"}, injected  # each kind happened
    assert not life.problems, f"{len(life.problems)} broken promises:\n" + "\n".join(life.problems)


def _expect_each_record_once_and_ledgered_as_a_create(life: Lifecycle, before: dict) -> None:
    """Every record the run added to Twenty is one the ledger holds as a create of the run, and
    no two of them are the same source record (a junction by the records it links)."""
    after = life.snapshot()
    with Ledger(life.ledger_url) as ledger:
        writes = ledger.writes(run_key=FULL)
    created = Counter((w["object"], w["twenty_id"]) for w in writes if w["operation"] == "create"
                      and w["status"] == "done")
    operations = Counter(w["operation"] for w in writes if w["status"] == "done")
    life.expect("full", operations.get("update", 0) == 0, f"records adopted as updates: {operations}")
    for plural, records in after["records"].items():
        new = {i: r for i, r in records.items() if i not in before["records"].get(plural, {})}
        ledgered = {i for (obj, i) in created if obj == plural}
        life.expect("full", set(new) == ledgered,
                    f"{plural}: {len(new)} new in Twenty, {len(ledgered)} ledgered as created "
                    f"({len(set(new) - ledgered)} not ledgered)")
        twins = Counter(_identity(r) for r in new.values())
        repeated = [key for key, n in twins.items() if n > 1]
        life.expect("full", not repeated, f"{plural}: {len(repeated)} records twice, e.g. {repeated[:3]}")


def _identity(record: dict) -> tuple:
    """What makes a record the one source record it is: its external key where it has one, else
    (junctions) the records it links."""
    if record.get("allclientsId"):
        return ("allclientsId", record["allclientsId"])
    return tuple(sorted((k, v) for k, v in record.items() if k.endswith("Id") and v and k != "id"
                        and not k.startswith(("createdBy", "updatedBy", "workspaceMember"))))
