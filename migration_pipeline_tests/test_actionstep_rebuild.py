"""The Actionstep rebuild package: what Twenty cannot hold (bills, disbursements, time entries,
the workflow configuration) extracted from the fake Actionstep over loopback HTTP through
Dagster and written to `rebuild_package/`; checked against the fake's own records, not
against the pipeline's output. Plus `migration-pipeline run --source actionstep`."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from migration_pipeline.cli import main
from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.engine.mapping import MappingError, load_mapping
from migration_pipeline.factories.assets import build_source_assets
from migration_pipeline.factories.rebuild import rebuild_package_key
from migration_pipeline.partitions import migration_run
from migration_pipeline.resources import MigrationSettings
from migration_pipeline.sources.actionstep.client import ActionstepSource
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, serve_fake_actionstep
from migration_pipeline_tests.harness import STATED_SETTINGS

RUN_KEY = "full-20261122T1500Z"
MAPPING = load_mapping(MAPPINGS_DIR / "actionstep__twenty.yaml")
# package file -> the Actionstep resource it exports
EXPORTED = {"bills.csv": "bills", "disbursements.csv": "disbursements", "time_entries.csv": "timeentries",
            "action_types.csv": "actiontypes", "action_type_participant_types.csv": "actiontypeparticipanttypes",
            "steps.csv": "steps"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeActionstep, Path]]:
    """One run of the extracts and the rebuild package against a fake Actionstep that
    answers the first bills request with a 429: (the fake, the package folder)."""
    out = tmp_path_factory.mktemp("rebuild")
    with serve_fake_actionstep() as fake:
        fake.fail_next(429, path_contains="/rest/bills")
        wanted = {rebuild_package_key("actionstep")} | {
            dg.AssetKey(["actionstep", "extract", name]) for name in MAPPING.source.objects}
        assets = [a for a in build_source_assets(MAPPING) if a.key in wanted]  # nothing that writes to Twenty
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(migration_run.name, [RUN_KEY])
        result = dg.materialize(
            assets, instance=instance, partition_key=RUN_KEY, raise_on_error=False,
            resources={
                "actionstep_source": ActionstepSource(
                    client_id=fake.client_id, client_secret=fake.client_secret, refresh_token=fake.refresh_token,
                    token_url=fake.token_url, backoff_base_seconds=0.01, backoff_max_seconds=0.05),
                "migration_settings": MigrationSettings(output_dir=str(out), overrides_json=json.dumps(
                    STATED_SETTINGS["actionstep"])),
            },
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure][:3]
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert rebuild_package_key("actionstep") in materialized
        yield fake, out / RUN_KEY / "rebuild_package"


def _csv(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_exported_resource_arrives_whole_paged_at_200(served) -> None:
    fake, folder = served
    assert sorted(p.name for p in folder.glob("*.csv")) == sorted(EXPORTED)
    for name, resource in EXPORTED.items():
        rows = _csv(folder, name)
        records = fake.records(resource)
        assert records, resource
        assert sorted(r["id"] for r in rows) == sorted(str(r["id"]) for r in records), name
        assert {r.query.get("pageSize") for r in fake.api_requests(resource)} == {"200"}, resource
    # 201 time entries: two pages, the second a single record the API serves as an object.
    assert len(fake.records("timeentries")) == 201
    assert fake.served_pages("timeentries") == [1, 2]
    # The injected 429 on bills was retried, not lost.
    assert [r.status for r in fake.api_requests("bills")][:2] == [429, 200]


def test_exported_values_are_the_served_ones_normalised(served) -> None:
    fake, folder = served
    bills = {r["id"]: r for r in _csv(folder, "bills.csv")}
    for raw in fake.records("bills"):
        row = bills[str(raw["id"])]
        assert float(row["totalInclusive"]) == raw["totalInclusive"]
        assert row["status"] == raw["status"] and row["ourReference"] == raw["ourReference"]
        # invoice dates come as "2022-05-03" or "03-May-2022": the package has YYYY-MM-DD
        served_date = raw["invoiceDate"]
        expected = (datetime.strptime(served_date, "%d-%b-%Y").date().isoformat()
                    if re.match(r"\d{2}-\w{3}-\d{4}$", served_date) else served_date)
        assert row["invoiceDate"] == expected
        assert row["links.action"] == ",".join(str(a) for a in raw["links"]["action"])
    assert any(not re.match(r"\d{4}", r["invoiceDate"]) for r in fake.records("bills")), "no mixed dates served"

    entries = {r["id"]: r for r in _csv(folder, "time_entries.csv")}
    for raw in fake.records("timeentries"):
        row = entries[str(raw["id"])]
        assert row["isBillable"] == {"T": "true", "F": "false"}[raw["isBillable"]]
        assert float(row["actualHours"]) == raw["actualHours"]
        assert row["links.action"] == str(raw["links"]["action"])
        assert row["timestampDate"].endswith("Z")  # local offsets normalised to UTC
    disbursements = {r["id"]: r for r in _csv(folder, "disbursements.csv")}
    assert {d: float(r["unitPrice"]) for d, r in disbursements.items()} == {
        str(r["id"]): r["unitPrice"] for r in fake.records("disbursements")}


def test_workflow_json_holds_every_matter_type_with_its_configuration(served) -> None:
    fake, folder = served
    doc = json.loads((folder / "workflow.json").read_text(encoding="utf-8"))
    role_names = {str(t["id"]): t["name"] for t in fake.records("participanttypes")}
    types = {str(t["id"]): t for t in fake.records("actiontypes")}
    assert {r["id"]: r["title"] for r in doc["records"]} == {i: t["name"] for i, t in types.items()}
    for record in doc["records"]:
        type_id = record["id"]
        steps = [s for s in fake.records("steps") if str(s["links"]["actionType"]) == type_id]
        assert steps
        assert sorted(s["stepName"] for s in record["children"]["steps"]) == sorted(s["stepName"] for s in steps)
        allowed = [p for p in fake.records("actiontypeparticipanttypes") if str(p["actionType"]) == type_id]
        assert sorted(p["participantType.name"] for p in record["children"]["participant_types"]) == sorted(
            role_names[str(p["links"]["participantType"])] for p in allowed)
        templates = [a for a in fake.records("actions")
                     if a["status"] == "Template" and str(a["links"]["actionType"]) == type_id]
        assert sorted(t["id"] for t in record["children"]["templates"]) == sorted(str(a["id"]) for a in templates)
    assert sum(len(r["children"]["templates"]) for r in doc["records"]) >= 1
    assert "Trust accounting / ledgers" in {n["what"] for n in doc["not_exported"]}


def test_workflow_html_shows_each_matter_type_with_its_steps(served) -> None:
    fake, folder = served
    html = (folder / "workflow.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "<script" not in html
    sections = {m.group(1): m.group(2) for m in re.finditer(r'<section id="root-(\d+)">(.*?)</section>', html, re.S)}
    types = {str(t["id"]): t["name"] for t in fake.records("actiontypes")}
    assert set(sections) == set(types)
    for type_id, name in types.items():
        assert f"<h2>{name} " in sections[type_id]
        for step in fake.records("steps"):
            if str(step["links"]["actionType"]) == type_id:
                assert f"<td>{step['stepName']}</td>" in sections[type_id], (name, step["stepName"])


def test_readme_lists_every_file_and_what_is_not_exported(served) -> None:
    fake, folder = served
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    for name, resource in EXPORTED.items():
        assert f"{name} ({len(fake.records(resource))} rows" in readme
    assert "workflow.json" in readme and "workflow.html" in readme
    assert "Trust accounting / ledgers" in readme and "no trust-accounting or ledger endpoint" in readme
    assert readme.count("not in Twenty:") == len(EXPORTED)


def test_an_export_only_object_cannot_be_mapped_and_needs_a_reason(tmp_path) -> None:
    text = (MAPPINGS_DIR / "actionstep__twenty.yaml").read_text(encoding="utf-8")
    mapped = tmp_path / "mapped__twenty.yaml"
    mapped.write_text(text.replace("    from: participants\n    description: \"Participants that are companies",
                                   "    from: bills\n    description: \"Participants that are companies"), encoding="utf-8")
    with pytest.raises(MappingError, match="export-only"):
        load_mapping(mapped)
    unexplained = tmp_path / "unexplained__twenty.yaml"
    unexplained.write_text(re.sub(r'export_reason: "Twenty has no invoicing[^"]*"', 'export_reason: ""', text),
                           encoding="utf-8")
    with pytest.raises(MappingError, match="export_reason"):
        load_mapping(unexplained)


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeActionstep]:
    """A fresh fake Actionstep, its credentials in ACTIONSTEP__*, a throwaway Dagster home and ledger."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MIGRATION__LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with serve_fake_actionstep() as fake:
        monkeypatch.setenv("ACTIONSTEP__CLIENT_ID", fake.client_id)
        monkeypatch.setenv("ACTIONSTEP__CLIENT_SECRET", fake.client_secret)
        monkeypatch.setenv("ACTIONSTEP__REFRESH_TOKEN", fake.refresh_token)
        monkeypatch.setenv("ACTIONSTEP__TOKEN_URL", fake.token_url)
        for name, value in STATED_SETTINGS["actionstep"].items():  # what the operator states for the firm
            monkeypatch.setenv(f"ACTIONSTEP__{name.upper()}", value)
        yield fake


def _no_secret_in(text: str, fake: FakeActionstep) -> None:
    for secret in (fake.client_secret, fake.refresh_token):
        assert secret not in text


def test_cli_without_credentials_names_the_variables(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    code = main(["run", "--source", "actionstep", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    for name in ("ACTIONSTEP__CLIENT_ID", "ACTIONSTEP__CLIENT_SECRET", "ACTIONSTEP__REFRESH_TOKEN"):
        assert name in err
    assert not (tmp_path / "out").exists()


def test_cli_dry_run_plans_and_writes_the_rebuild_package(cli_env, fake_twenty, tmp_path, capsys) -> None:
    run_id = "full-20261122T1600Z"
    code = main(["run", "--source", "actionstep", "--input", str(tmp_path), "--run-id", run_id, "--dry-run",
                 "--output", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "--input is not used" in printed and "NOTHING was written to Twenty" in printed
    output = tmp_path / "out" / run_id
    plan = json.loads((output / "load_plan" / "summary.json").read_text())
    assert plan  # staged through the mapping
    assert sorted(p.name for p in (output / "load_plan").glob("0*.csv"))[:1] == ["01_companies.csv"]
    assert len(_csv(output / "rebuild_package", "bills.csv")) == len(cli_env.records("bills"))
    assert cli_env.api_requests("timeentries") and not fake_twenty.requests
    _no_secret_in(printed, cli_env)


def test_cli_real_run_migrates_into_twenty(cli_env, fake_twenty, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TWENTY__API_URL", fake_twenty.base_url)
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    run_id = "full-20261122T1700Z"
    code = main(["run", "--source", "actionstep", "--run-id", run_id, "--skip-sample-gate",
                 "--fallback-owner", "admin@example.com", "--output", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "actionstep/load/opportunity" in printed and "created=" in printed
    migrated = [a for a in cli_env.records("actions") if a["isDeleted"] == "F" and a["status"] != "Template"]
    assert len(fake_twenty.records("opportunities")) == len(migrated)
    assert len(fake_twenty.records("people")) + len(fake_twenty.records("companies")) == len(
        cli_env.records("participants"))
    package = tmp_path / "out" / run_id / "rebuild_package"
    assert len(_csv(package, "time_entries.csv")) == 201 and (package / "workflow.html").exists()
    assert (tmp_path / "out" / run_id / "report" / "summary.json").exists()
    _no_secret_in(printed, cli_env)
    assert fake_twenty.api_key not in printed
