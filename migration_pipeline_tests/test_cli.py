"""The headless CLI: a dry run without Twenty credentials, a real run with them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
