"""A run belongs to one source (issue 8, point 13): its id cannot be taken by another source's
run, and every ledger read about runs can be scoped by source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_pipeline.ledger import Ledger, WriteRow
from migration_pipeline.ledger.ledger import RunSourceConflict
from migration_pipeline.lifecycle.reconciliation import run_writes
from migration_pipeline.lifecycle.rollback import RollbackRefused, plan_rollback
from migration_pipeline.resources import MigrationSettings

ALLCLIENTS_RUN, ACTIONSTEP_RUN = "full-20261122T1000Z", "full-20261122T1100Z"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as opened:
        opened.start_run(ALLCLIENTS_RUN, "allclients", "full")
        opened.record_outcomes(ALLCLIENTS_RUN, "people", [WriteRow("contact:1", "create", twenty_id="id-1")])
        opened.start_run(ACTIONSTEP_RUN, "actionstep", "full")
        opened.record_outcomes(ACTIONSTEP_RUN, "people", [WriteRow("participant:1", "create", twenty_id="id-2"),
                                                          WriteRow("participant:2", "create", twenty_id="id-3")])
        yield opened


def test_a_run_id_taken_by_another_source_is_refused_with_what_to_do(ledger: Ledger) -> None:
    with pytest.raises(RunSourceConflict, match=f"run id {ALLCLIENTS_RUN} is already a run of allclients") as refused:
        ledger.start_run(ALLCLIENTS_RUN, "actionstep", "full")
    assert "leave out --run-id" in str(refused.value)
    with pytest.raises(RunSourceConflict):
        ledger.request_run(ALLCLIENTS_RUN, "actionstep", "full", {"input_dir": "/x"})
    with pytest.raises(RunSourceConflict):
        ledger.check_run_source(ALLCLIENTS_RUN, "actionstep")
    assert ledger.get_run(ALLCLIENTS_RUN)["source"] == "allclients"


def test_the_same_source_reopens_its_own_run(ledger: Ledger) -> None:
    ledger.finish_run(ALLCLIENTS_RUN, "failed")
    ledger.start_run(ALLCLIENTS_RUN, "allclients", "full")
    ledger.check_run_source(ALLCLIENTS_RUN, "allclients")
    assert ledger.get_run(ALLCLIENTS_RUN)["status"] == "running"


def test_reads_scoped_by_source_see_only_that_sources_runs(ledger: Ledger) -> None:
    assert ledger.get_run(ALLCLIENTS_RUN, "actionstep") is None
    assert ledger.counts(ALLCLIENTS_RUN, "actionstep") == {}
    assert ledger.counts(ACTIONSTEP_RUN, "actionstep") == {"people": {"create": 2}}
    assert {w["source_key"] for w in ledger.writes(source="allclients")} == {"contact:1"}
    assert {row["run_key"] for row in ledger.audit(source="actionstep")} == {ACTIONSTEP_RUN}
    assert run_writes(ledger, ACTIONSTEP_RUN, "people", "allclients") == {}
    assert set(run_writes(ledger, ACTIONSTEP_RUN, "people", "actionstep")) == {"participant:1", "participant:2"}
    assert ledger.runs_to_roll_back(source="allclients") == [ALLCLIENTS_RUN]
    assert ledger.loaded_before("allclients", "full-20261123T1000Z", ["people"]) == [
        ("people", "contact:1", "id-1", ALLCLIENTS_RUN)]


def test_a_rollback_scoped_to_one_source_touches_only_its_runs(ledger: Ledger) -> None:
    assert [run.run_key for run in plan_rollback(ledger, source="actionstep")] == [ACTIONSTEP_RUN]
    with pytest.raises(RollbackRefused, match=f"{ALLCLIENTS_RUN} is a run of allclients, not of actionstep"):
        plan_rollback(ledger, ALLCLIENTS_RUN, source="actionstep")


def test_an_output_folder_belongs_to_the_source_whose_run_wrote_it(tmp_path: Path) -> None:
    settings = MigrationSettings(output_dir=str(tmp_path))
    folder = settings.output_folder(ALLCLIENTS_RUN, "allclients")
    assert settings.output_folder(ALLCLIENTS_RUN, "allclients") == folder
    with pytest.raises(ValueError, match=f"holds the reports of the allclients run {ALLCLIENTS_RUN}"):
        settings.output_folder(ALLCLIENTS_RUN, "actionstep")


def test_the_id_map_of_one_source_does_not_see_another_sources_records_with_the_same_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    with Ledger(url, source="allclients") as allclients, Ledger(url, source="actionstep") as actionstep:
        allclients.start_run(ALLCLIENTS_RUN, "allclients", "full")
        allclients.record_outcomes(ALLCLIENTS_RUN, "people", [WriteRow("people:1001", "create", twenty_id="ac-1")])
        actionstep.start_run(ACTIONSTEP_RUN, "actionstep", "full")
        actionstep.record_intent(ACTIONSTEP_RUN, "people", ["people:1002"])
        allclients.record_intent(ALLCLIENTS_RUN, "people", ["people:1002"])  # does not supersede actionstep's

        assert actionstep.known("people", ["people:1001"]) == {}
        assert allclients.twenty_ids("people", ["people:1001"]) == {"people:1001": "ac-1"}
        actionstep.resolve_pending("people", {"people:1002": "as-2"})
        assert actionstep.twenty_ids("people", ["people:1002"]) == {"people:1002": "as-2"}
        assert allclients.known("people", ["people:1002"])["people:1002"].pending
        assert Ledger(url).twenty_ids("people", ["people:1001", "people:1002"]) == {  # unscoped: both
            "people:1001": "ac-1", "people:1002": "as-2"}
