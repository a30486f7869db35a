"""The headless CLI: a dry run without Twenty credentials, a real run with them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from migration_pipeline.cli import main
from migration_pipeline.sources.allclients.generate import generate_export


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    generate_export(folder, rows=50, seed=2)
    return folder


@pytest.fixture(autouse=True)
def _dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MIGRATION__LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def test_without_credentials_it_plans_and_says_nothing_was_written(export, tmp_path, capsys) -> None:
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1200Z"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "NOTHING was written to Twenty" in printed
    plan = tmp_path / "out" / "full-20261122T1200Z" / "load_plan"
    assert sorted(p.name for p in plan.glob("0*.csv")) == [
        "01_companies.csv", "02_people.csv", "03_notes.csv", "04_noteTargets.csv"
    ]
    people = pd.read_csv(plan / "02_people.csv")
    assert {"name / firstName", "emails / primaryEmail", "allclientsId"} <= set(people.columns)
    assert (plan / "summary.json").exists() and (plan / "quarantined.csv").exists()


def test_with_credentials_it_migrates_and_exports_the_audit_log(export, tmp_path, fake_twenty, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1300Z", "--fallback-owner", "admin@example.com", "--skip-sample-gate"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "allclients/load/person" in printed and "created=" in printed
    assert "allclients/verify/reconciliation" in printed
    assert (tmp_path / "out" / "full-20261122T1300Z" / "verify" / "reconciliation.html").exists()
    assert fake_twenty.records("people")
    assert fake_twenty.api_key not in printed

    assert main(["audit", "--run-id", "full-20261122T1300Z", "--out", str(tmp_path / "audit.csv")]) == 0
    audit = pd.read_csv(tmp_path / "audit.csv")
    assert set(audit["operation"]) >= {"create"}
    assert len(audit[audit["object"] == "people"]) == len(fake_twenty.records("people"))


def test_a_full_run_without_an_approved_sample_is_refused_before_any_write(export, tmp_path, fake_twenty, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1400Z"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "needs an approved sample run" in printed and "--skip-sample-gate" in printed
    assert not [r for r in fake_twenty.requests if r.method == "POST"]


def test_a_missing_export_file_is_a_clear_error_not_a_traceback(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code = main(["run", "--source", "allclients", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o"),
                 "--set", "timezone=America/Los_Angeles"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "Contacts.csv not found" in printed
    assert "Traceback" not in printed


def test_an_unknown_source_names_the_known_ones(capsys) -> None:
    assert main(["run", "--source", "nosuchcrm"]) == 2
    assert "mappings exist for: actionstep, allclients" in capsys.readouterr().err


def test_dagster_loads_the_definitions_with_an_empty_environment(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "migration_pipeline.definitions"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful" in result.stderr + result.stdout


def test_a_run_states_its_time_zone_at_its_start_and_refuses_to_guess_it(tmp_path, capsys) -> None:
    export = tmp_path / "export"
    generate_export(export, rows=20, seed=2)
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "o")])
    assert code == 0
    assert f"timezone: America/Los_Angeles (from {export / 'migration_settings.yaml'})" in capsys.readouterr().out

    (export / "migration_settings.yaml").unlink()  # an export as AllClients gives it: no zone in it
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "o2")])
    captured = capsys.readouterr()
    assert code == 2 and "Nothing was run" in captured.err
    assert "--set timezone=" in captured.err and "migration_settings.yaml" in captured.err
    assert not (tmp_path / "o2").exists()


# --- failing fast and briefly (issue 8, point 12) --------------------------------------------


ACTIONSTEP_SETTINGS = ["--set", "timezone=Australia/Sydney", "--set", "currency=AUD"]  # the firm's, stated


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_twenty_fails_in_seconds_with_one_message_naming_it_and_the_log(export, tmp_path, monkeypatch,
                                                                                       capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("TWENTY__API_KEY", "some-key")
    started = time.monotonic()
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1500Z", "--skip-sample-gate"])
    printed = capsys.readouterr().out
    assert code == 1
    assert time.monotonic() - started < 10
    log = tmp_path / "out" / "full-20261122T1500Z" / "run.log"
    assert "NOT started: Twenty at http://127.0.0.1:" in printed and "does not answer" in printed
    assert str(log) in printed and log.exists()
    assert len(printed.splitlines()) < 10 and "Traceback" not in printed
    assert "some-key" not in printed + log.read_text()


def test_a_refused_twenty_api_key_is_one_message_before_anything_runs(export, tmp_path, fake_twenty, monkeypatch,
                                                                     capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", "not-the-key")
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1510Z", "--skip-sample-gate"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "refused TWENTY__API_KEY (HTTP 401)" in printed and "Settings > APIs & Webhooks" in printed
    assert [r.path for r in fake_twenty.requests] == ["/rest/workspaceMembers"]


def test_an_unreachable_actionstep_token_endpoint_fails_in_seconds_not_after_every_step_retried(tmp_path, monkeypatch,
                                                                                               capsys) -> None:
    monkeypatch.setenv("ACTIONSTEP__TOKEN_URL", f"http://127.0.0.1:{_closed_port()}/api/oauth/token")
    for name, value in (("CLIENT_ID", "id"), ("CLIENT_SECRET", "secret"), ("REFRESH_TOKEN", "refresh-0")):
        monkeypatch.setenv(f"ACTIONSTEP__{name}", value)
    started = time.monotonic()
    code = main(["run", "--source", "actionstep", "--dry-run", "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1520Z", *ACTIONSTEP_SETTINGS])
    printed = capsys.readouterr().out
    assert code == 1
    assert time.monotonic() - started < 10
    assert "NOT started: Actionstep's token endpoint at http://127.0.0.1:" in printed
    assert "ACTIONSTEP__TOKEN_URL" in printed
    assert str(tmp_path / "out" / "full-20261122T1520Z" / "run.log") in printed
    assert len(printed.splitlines()) < 10
    assert "secret" not in printed and "refresh-0" not in printed


def test_a_failed_step_prints_its_reason_and_what_to_do_while_the_traces_go_to_the_log(tmp_path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "Contacts.csv").write_text("not,the,columns\n1,2,3\n")
    code = main(["run", "--source", "allclients", "--input", str(broken), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1530Z", "--set", "timezone=America/Los_Angeles"])
    printed = capsys.readouterr().out
    log = tmp_path / "out" / "full-20261122T1530Z" / "run.log"
    assert code == 1
    failed = [line for line in printed.splitlines() if "FAILED:" in line]
    assert len(failed) == 1 and "allclients/extract/contacts: " in failed[0] and "lacks the column(s)" in failed[0]
    assert "What to do:" in printed and f"Details (Dagster's messages and stack traces): {log}" in printed
    assert "Traceback" not in printed and len(printed.splitlines()) < 20
    assert "extract.py\", line" in log.read_text()  # the stack trace is in the log


# --- limits (issue 8, point 15) ----------------------------------------------------------------


def test_requests_per_minute_and_batch_size_are_used_by_the_run_and_shown(export, tmp_path, fake_twenty, monkeypatch,
                                                                          capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    monkeypatch.setenv("TWENTY__REQUESTS_PER_MINUTE", "50")  # the flag wins over the variable
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1600Z", "--skip-sample-gate", "--fallback-owner", "admin@example.com",
                 "--requests-per-minute", "6000", "--batch-size", "7"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Twenty limits: 6000 requests/min, up to 7 records per write request" in printed
    batches = [r.json for r in fake_twenty.requests if r.method == "POST" and r.path.startswith("/rest/batch/")]
    assert batches and max(len(body) for body in batches) == 7
    load = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(["allclients", "load", "person"]))
    metadata = load.asset_materialization.metadata
    assert (metadata["requests_per_minute"].value, metadata["batch_size"].value) == (6000, 7)


def test_the_limits_come_from_the_environment_when_no_flag_is_given(export, tmp_path, fake_twenty, monkeypatch,
                                                                    capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    monkeypatch.setenv("TWENTY__REQUESTS_PER_MINUTE", "6000")
    monkeypatch.setenv("TWENTY__BATCH_SIZE", "9")
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"),
                 "--run-id", "full-20261122T1610Z", "--skip-sample-gate", "--fallback-owner", "admin@example.com"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "6000 requests/min, up to 9 records per write request" in printed
    batches = [r.json for r in fake_twenty.requests if r.method == "POST" and r.path.startswith("/rest/batch/")]
    assert max(len(body) for body in batches) == 9


@pytest.mark.parametrize(("flags", "environment", "message"), [
    (["--batch-size", "201"], {}, "batch size must be between 1 and 200 (Twenty's cap), got 201"),
    (["--batch-size", "0"], {}, "batch size must be between 1 and 200"),
    (["--requests-per-minute", "0"], {}, "requests per minute must be at least 1, got 0"),
    ([], {"TWENTY__BATCH_SIZE": "lots"}, "TWENTY__BATCH_SIZE 'lots' is not a whole number"),
])
def test_out_of_range_limits_are_refused_before_anything_runs(export, tmp_path, monkeypatch, capsys, flags,
                                                              environment, message) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(tmp_path / "out"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- one source per run (issue 8, point 13) ------------------------------------------------------


def test_a_run_id_of_another_source_is_refused_and_its_reports_are_left_alone(export, tmp_path, fake_twenty,
                                                                             monkeypatch, capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    run_id, out = "full-20261122T1700Z", tmp_path / "out"
    assert main(["run", "--source", "allclients", "--input", str(export), "--output", str(out), "--run-id", run_id,
                 "--skip-sample-gate", "--fallback-owner", "admin@example.com"]) == 0
    summary = (out / run_id / "report" / "summary.json").read_text()
    capsys.readouterr()
    for name, value in (("CLIENT_ID", "id"), ("CLIENT_SECRET", "secret"), ("REFRESH_TOKEN", "refresh-0")):
        monkeypatch.setenv(f"ACTIONSTEP__{name}", value)

    code = main(["run", "--source", "actionstep", "--output", str(out), "--run-id", run_id, *ACTIONSTEP_SETTINGS])

    assert code == 2
    assert f"run id {run_id} is already a run of allclients" in capsys.readouterr().err
    assert (out / run_id / "report" / "summary.json").read_text() == summary
    assert main(["audit", "--source", "actionstep", "--out", str(tmp_path / "audit.csv")]) == 0
    assert pd.read_csv(tmp_path / "audit.csv").empty


def test_a_dry_run_of_another_source_may_not_reuse_a_run_ids_output_folder(export, tmp_path, monkeypatch,
                                                                           capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", "--source", "allclients", "--input", str(export), "--output", str(out),
                 "--run-id", "full-20261122T1710Z"]) == 0
    for name, value in (("CLIENT_ID", "id"), ("CLIENT_SECRET", "secret"), ("REFRESH_TOKEN", "refresh-0")):
        monkeypatch.setenv(f"ACTIONSTEP__{name}", value)
    code = main(["run", "--source", "actionstep", "--dry-run", "--output", str(out), "--run-id", "full-20261122T1710Z", *ACTIONSTEP_SETTINGS])
    assert code == 2
    assert "holds the reports of the allclients run full-20261122T1710Z" in capsys.readouterr().err


# --- workflows the import would set off (issue 8, point 11) ----------------------------------------


def test_a_run_warns_of_each_active_workflow_its_records_trigger_with_how_many_and_how_to_pause(
        export, tmp_path, fake_twenty, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    run_id, out = "full-20261122T1800Z", tmp_path / "out"
    code = main(["run", "--source", "allclients", "--input", str(export), "--output", str(out), "--run-id", run_id,
                 "--skip-sample-gate", "--fallback-owner", "admin@example.com"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    people = len(fake_twenty.records("people"))
    before, after = [line for line in printed.splitlines() if "Create company when adding a new person" in line]
    assert "(person.upserted) runs for every person this run writes" in before
    assert f"will run for {people} records of this run ({people} created)" in after
    assert "Settings > Workflows" in after and "an API key cannot" in after
    assert "check no_active_workflows on allclients/prepare/twenty_schema: warning" in printed
    listed = pd.read_csv(out / run_id / "report" / "workflows_triggered.csv")
    assert listed[["workflow", "event", "creates", "updates"]].values.tolist() == [
        ["Create company when adding a new person", "person.upserted", people, 0]]

    assert main(["run", "--source", "allclients", "--input", str(export), "--output", str(out), "--run-id",
                 "full-20261122T1810Z", "--skip-sample-gate", "--fallback-owner", "admin@example.com"]) == 0
    rerun = capsys.readouterr().out
    assert f"will run for {people} records of this run (up to {people} updated, if emails changed)" in rerun
