"""Exactly once when responses are lost: every create carries an id chosen before it is sent, a
failure that may have come after the write is settled by reading those ids back, and rollback
destroys whatever a run created. Proven request by request, then through Dagster with 30% of
the record requests failing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.loader import LoadRecord, load_object, record_id
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.retry import OutcomeUnknown, RetriesExhausted, RetryPolicy
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.lifecycle.rollback_job import OP_NAME, rollback_job
from migration_pipeline.resources import LedgerStore
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.fakes.loopback import AFTER_WRITE, BEFORE_WRITE
from migration_pipeline_tests.harness import run_migration

RUN = "full-20261201T0900Z"
KEY_FIELD = "allclientsId"
TIMEOUT = 0.5  # the client's; a hanging fault sleeps past it
HANG = 0.8


def _client(fake: Any, **retry: Any) -> TwentyClient:
    policy = RetryPolicy(**{"max_attempts": 8, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, **retry})
    return TwentyClient(fake.base_url, fake.api_key, timeout=httpx.Timeout(TIMEOUT), retry=policy)


def _people(n: int) -> list[dict[str, Any]]:
    return [{"name": {"firstName": f"Once{i}", "lastName": "Probe"}} for i in range(n)]


# -- the retry decision ------------------------------------------------------------------------


def _answers(*outcomes: Any) -> Any:
    queue = list(outcomes)

    def send() -> httpx.Response:
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome)

    return send


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), 502, 503, 504, 500,
], ids=repr)
def test_a_create_that_may_have_landed_is_not_retried_by_the_retry_layer(failure: Any) -> None:
    policy = RetryPolicy(max_attempts=5, sleep=lambda _s: None)
    with pytest.raises(OutcomeUnknown):
        policy.send(_answers(failure, 201), "POST /rest/batch/people", idempotent=False)


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), 429], ids=repr)
def test_a_create_that_never_reached_the_server_is_retried(failure: Any) -> None:
    policy = RetryPolicy(max_attempts=5, sleep=lambda _s: None)
    response = policy.send(_answers(failure, 201), "POST /rest/batch/people", idempotent=False)
    assert response.status_code == 201


def test_reads_and_updates_are_still_retried_on_any_transient_failure() -> None:
    policy = RetryPolicy(max_attempts=5, sleep=lambda _s: None)
    send = _answers(httpx.ReadTimeout("slow"), 504, httpx.RemoteProtocolError("dropped"), 200)
    assert policy.send(send, "GET /rest/people").status_code == 200


# -- one batch, each fault ---------------------------------------------------------------------


@pytest.mark.parametrize("fault", AFTER_WRITE + BEFORE_WRITE)
def test_a_batch_create_hit_by_a_fault_lands_exactly_once(fake_twenty: Any, fault: str) -> None:
    fake_twenty.inject_faults(1.0, kinds=(fault,), hang_seconds=HANG, max_faults=1)
    with _client(fake_twenty) as client:
        created = client.create_batch("people", _people(20))
        settled = client.settled_count

    in_twenty = fake_twenty.records("people")
    assert len(in_twenty) == 20 and {p["id"] for p in in_twenty} == {c["id"] for c in created}
    posts = [r for r in fake_twenty.requests if r.method == "POST"]
    if fault in AFTER_WRITE:
        # the write landed, its answer was lost: found by its ids, never sent again
        assert len(posts) == 1 and settled == 20
    else:
        assert len(posts) == 2 and settled == 0
        assert [p["id"] for p in posts[0].json] == [p["id"] for p in posts[1].json]  # the same ids again


def test_a_real_conflict_after_an_unknown_outcome_is_still_a_duplicate_error(fake_twenty: Any) -> None:
    with _client(fake_twenty) as client:
        client.create_batch("people", [{"emails": {"primaryEmail": "taken@example.test"}}])
        fake_twenty.inject_faults(1.0, kinds=("503",), max_faults=1)
        with pytest.raises(Exception, match="duplicate entry"):
            client.create_batch("people", [{"emails": {"primaryEmail": "taken@example.test"}}])
    assert len(fake_twenty.records("people")) == 1


def test_when_retries_run_out_the_intent_keeps_the_ids_and_a_rerun_ledgers_what_landed_as_creates(
    fake_twenty: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    records = [LoadRecord(f"contact:{i}", p) for i, p in enumerate(_people(30))]
    with Ledger(url) as ledger, _client(fake_twenty, max_attempts=2) as client:
        ledger.start_run(RUN, "allclients", "full")
        fake_twenty.inject_faults(1.0, kinds=("504_after_write",))  # writes land, every answer is lost
        with pytest.raises(RetriesExhausted):
            load_object(client, ledger, RUN, "people", records, external_key_field=None)
        pending = [w for w in ledger.writes(RUN) if w["status"] == "pending"]
        assert len(pending) == 30 and len(fake_twenty.records("people")) == 30
        assert {w["twenty_id"] for w in pending} == {p["id"] for p in fake_twenty.records("people")}
        fake_twenty.clear_failures()

        outcome = load_object(client, ledger, RUN, "people", records, external_key_field=None)

        assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, 30)
        assert ledger.counts(RUN)["people"] == {"create": 30, "unchanged": 30}
    assert len(fake_twenty.records("people")) == 30


# -- through Dagster, 30% of record requests failing --------------------------------------------


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("allclients_faults")
    generate_export(folder, rows=150, seed=16)
    return folder


def _signature(plural: str, record: dict[str, Any]) -> Any:
    """What makes two records of an object the same source record: the external key, else
    (junctions) the records linked."""
    if record.get(KEY_FIELD):
        return record[KEY_FIELD]
    return tuple(sorted((k, v) for k, v in record.items() if k.endswith("Id") and k not in ("id", "workspaceMemberId")
                        and not k.startswith(("createdBy", "updatedBy")) and v))


def test_a_migration_with_30_percent_faults_lands_exactly_once_reruns_to_nothing_and_rolls_back_exactly(
    fake_twenty: Any, export: Path, tmp_path: Path
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    # small batches: more requests, so more faults of every kind
    writer = TwentyWriter(api_url=fake_twenty.base_url, api_key=fake_twenty.api_key, requests_per_minute=60_000,
                          batch_size=20,
                          timeout_seconds=TIMEOUT, max_attempts=10, backoff_base_seconds=0.02, backoff_max_seconds=0.2)

    def migrate(run_key: str, ledger_url: str = ledger_url):
        return run_migration(instance=instance, fake=fake_twenty, export_dir=export, ledger_url=ledger_url,
                             output_dir=tmp_path / "out", run_key=run_key, resources={"twenty": writer})

    # what the export makes without faults: the counts to expect
    assert migrate("full-20261130T0900Z", f"sqlite:///{tmp_path / 'clean.sqlite'}").success
    expected = {p: len(rows) for p, rows in fake_twenty.snapshot()["records"].items()}
    fake_twenty.reset()

    before = fake_twenty.snapshot()
    faults = fake_twenty.inject_faults(0.3, seed=16, hang_seconds=HANG)
    run = migrate(RUN)
    assert run.success, [e.message for e in run.result.all_events if e.is_failure]
    assert set(faults.injected) == set(AFTER_WRITE + BEFORE_WRITE), faults.injected  # every kind happened
    print(f"faults injected: {dict(faults.injected)}")

    after = fake_twenty.snapshot()["records"]
    with Ledger(ledger_url) as ledger:
        counts = ledger.counts(RUN)
        writes = ledger.writes(RUN)
    created = {(w["object"], w["twenty_id"]) for w in writes if w["operation"] == "create" and w["status"] == "done"}
    for plural, rows in after.items():
        new = {i: r for i, r in rows.items() if i not in before["records"].get(plural, {})}
        if not new:
            continue
        signatures = Counter(_signature(plural, r) for r in new.values())
        assert max(signatures.values()) == 1, f"{plural} duplicated: {signatures.most_common(3)}"
        # every record in Twenty is a create the ledger holds, and the ledger's creates are all there
        assert {(plural, i) for i in new} == {c for c in created if c[0] == plural}
        assert counts[plural].get("create") == len(new), counts[plural]
        assert "pending" not in counts[plural]
    assert all("update" not in ops for ops in counts.values()), counts  # nothing adopted
    assert {p: len(rows) for p, rows in after.items()} == expected

    fake_twenty.clear_requests()
    rerun = migrate("full-20261201T1000Z")
    assert rerun.success
    writes_sent = [r for r in fake_twenty.requests if r.method != "GET" and r.path.startswith("/rest/")
                   and not r.path.startswith("/rest/metadata")]
    assert writes_sent == []
    with Ledger(ledger_url) as ledger:
        assert {op for ops in ledger.counts("full-20261201T1000Z").values() for op in ops} == {"unchanged"}

    rolled_back = rollback_job.execute_in_process(
        run_config={"ops": {OP_NAME: {"config": {"all_runs": True, "drop_schema": True}}}},
        instance=instance,
        resources={"twenty": writer, "ledger": LedgerStore(url=ledger_url)},
        raise_on_error=False,
    )
    assert rolled_back.success
    fake_twenty.clear_failures()
    now = fake_twenty.snapshot()
    assert now["metadata"] == before["metadata"]
    assert {p: set(r) for p, r in now["records"].items()} == {p: set(r) for p, r in before["records"].items()}
