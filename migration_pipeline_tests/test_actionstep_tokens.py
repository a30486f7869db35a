"""One Actionstep access token per run, through Dagster's multiprocess executor (the default
of `dagster dev` and of jobs launched from the UI): each extract step is its own process, yet
the whole run asks the token endpoint once, and the next run uses the refresh token Actionstep
rotated, which the fake, like Actionstep, refuses to accept twice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from migration_pipeline.definitions import build_definitions
from migration_pipeline.partitions import migration_run
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, serve_fake_actionstep

STEPS = ("participant_types", "action_types", "users")
JOB = "actionstep_extracts"


def extract_job() -> dg.JobDefinition:
    """The project's own definitions (resources from ACTIONSTEP__* variables), a job of a few
    extract steps; reconstructable, so each step runs in a process of its own."""
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(*[["actionstep", "extract", s] for s in STEPS]),
                              partitions_def=migration_run)
    return dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job])).resolve_job_def(JOB)


@pytest.fixture
def fake() -> Iterator[FakeActionstep]:
    with serve_fake_actionstep() as server:
        yield server


@pytest.fixture
def instance(fake: FakeActionstep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    for name, value in {"DAGSTER_HOME": str(home), "ACTIONSTEP__CLIENT_ID": fake.client_id,
                        "ACTIONSTEP__CLIENT_SECRET": fake.client_secret,
                        "ACTIONSTEP__REFRESH_TOKEN": fake.refresh_token, "ACTIONSTEP__TOKEN_URL": fake.token_url,
                        "ACTIONSTEP__TIMEZONE": "Australia/Sydney", "ACTIONSTEP__CURRENCY": "AUD",
                        "MIGRATION__OUTPUT_DIR": str(tmp_path / "out")}.items():
        monkeypatch.setenv(name, value)  # inherited by the step processes
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


def _run(instance: dg.DagsterInstance, run_key: str) -> dg.ExecuteJobResult:
    instance.add_dynamic_partitions(migration_run.name, [run_key])
    with dg.execute_job(dg.reconstructable(extract_job), instance=instance, tags={"dagster/partition": run_key},
                        run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}) as result:
        return result


def test_a_multiprocess_run_asks_for_one_token_and_the_next_run_uses_the_rotated_one(
    fake: FakeActionstep, instance: dg.DagsterInstance
) -> None:
    first = _run(instance, "full-20261122T1000Z")

    assert first.success
    step_processes = {e.pid for e in first.all_events if e.is_step_success}
    assert len([e for e in first.all_events if e.is_step_success]) == len(STEPS) and len(step_processes) > 1
    assert [r.form["refresh_token"] for r in fake.token_requests()] == [fake.refresh_token]
    assert {r.headers["authorization"] for r in fake.api_requests()} == {"Bearer fake-access-token-1"}

    second = _run(instance, "full-20261123T1000Z")  # ACTIONSTEP__REFRESH_TOKEN is spent by now

    assert second.success
    assert [(r.form["refresh_token"], r.status) for r in fake.token_requests()] == [
        (fake.refresh_token, 200), ("fake-refresh-token-1", 200)]
    store = Path(os.environ["DAGSTER_HOME"]) / "actionstep_tokens.json"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    for event in [*first.all_events, *second.all_events]:  # no token in any event or metadata
        assert "fake-refresh-token" not in str(event) and "fake-access-token" not in str(event)
