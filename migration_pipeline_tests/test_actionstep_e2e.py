"""Actionstep end to end: the fake Actionstep API and the fake Twenty on loopback, the
`actionstep` asset group materialized through Dagster, and assertions on what Twenty received,
checked against the generated Actionstep data (not against the pipeline's own output)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from migration_pipeline.definitions import build_definitions
from migration_pipeline.engine.transforms import option_value
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.resources import LedgerStore
from migration_pipeline.sources.actionstep.client import ActionstepSource, normalise_timestamp
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, serve_fake_actionstep
from migration_pipeline_tests.harness import MigrationRun, run_migration

STAGES = {"Active": "PROPOSAL", "Inactive": "SCREENING", "Closed": "CUSTOMER"}  # the mapping's declared value map


@pytest.fixture(scope="module")
def _actionstep_server() -> Iterator[FakeActionstep]:
    with serve_fake_actionstep() as fake:
        yield fake


@pytest.fixture
def fake_actionstep(_actionstep_server: FakeActionstep) -> FakeActionstep:
    _actionstep_server.reset()
    return _actionstep_server


@pytest.fixture
def migrate(fake_twenty, fake_actionstep: FakeActionstep, tmp_path: Path):
    """Runs the actionstep group; the same Dagster instance, ledger and checkpoints across calls."""
    instance = dg.DagsterInstance.ephemeral()

    def _migrate(**kwargs: Any) -> MigrationRun:
        """`source`: more ActionstepSource settings (e.g. file_part_bytes)."""
        source = ActionstepSource(
            client_id=fake_actionstep.client_id, client_secret=fake_actionstep.client_secret,
            refresh_token=fake_actionstep.refresh_token, token_url=fake_actionstep.token_url,
            checkpoint_dir=str(tmp_path / "checkpoints"), max_attempts=kwargs.pop("max_attempts", 4),
            backoff_base_seconds=0.01, backoff_max_seconds=0.05, timeout_seconds=10.0, **kwargs.pop("source", {}),
        )
        return run_migration(instance=instance, fake=fake_twenty, export_dir=tmp_path, slug="actionstep",
                             ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", output_dir=tmp_path / "out",
                             resources={"actionstep_source": source}, **kwargs)

    return _migrate


def _source(fake: FakeActionstep) -> dict[str, Any]:
    """The generated Actionstep data, read independently of the pipeline."""
    actions = {str(a["id"]): a for a in fake.records("actions")}
    participants = {str(p["id"]): p for p in fake.records("participants")}
    role_names = {str(t["id"]): t["name"] for t in fake.records("participanttypes")}
    type_names = {str(t["id"]): t["name"] for t in fake.records("actiontypes")}
    roles: dict[str, list[tuple[str, str]]] = defaultdict(list)  # participant -> [(action, role)]
    for ap in fake.records("actionparticipants"):
        links = ap["links"]
        roles[str(links["participant"])].append((str(links["action"]), role_names[str(links["participantType"])]))
    fees = {str(v["links"]["action"]): v["stringValue"] for v in fake.records("datacollectionrecordvalues")
            if v["id"].split("--")[1] == "AgreedFee"}
    migrated = {i: a for i, a in actions.items() if a["isDeleted"] == "F" and a["status"] != "Template"}
    return {"actions": actions, "migrated": migrated, "participants": participants, "roles": roles,
            "fees": fees, "type_names": type_names, "role_names": sorted(role_names.values())}


def _by_source_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["actionstepId"].split(":", 1)[1]: r for r in records}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def test_matters_participants_and_roles_land_in_twenty(migrate, fake_twenty, fake_actionstep) -> None:
    source = _source(fake_actionstep)
    run = migrate(layers=("extract", "stage", "prepare", "load", "report", "verify"))
    assert run.success, run.result.all_events[-1]
    # Read back from Twenty: every field as intended, counts and totals (amount per stage) match.
    assert "actionstep/verify/field_diff" in run.materialized()
    differences = (run.output / "verify" / "field_diff.csv").read_text(encoding="utf-8").splitlines()
    assert differences[1:] == [], differences[:5]
    for check in ("counts_match", "field_totals_match"):
        assert run.check("actionstep/verify/reconciliation", check).passed, check

    companies = _by_source_id(fake_twenty.records("companies"))
    people = _by_source_id(fake_twenty.records("people"))
    opportunities = _by_source_id(fake_twenty.records("opportunities"))
    twenty_id = {**{k: c["id"] for k, c in companies.items()}, **{k: p["id"] for k, p in people.items()}}

    # Participants split by isCompany: every company and every person arrives, none twice.
    is_company = {i: p["isCompany"] == "T" for i, p in source["participants"].items()}
    assert set(companies) == {i for i, c in is_company.items() if c}
    assert set(people) == {i for i, c in is_company.items() if not c}

    # People without an email migrate with their name and phones; up to four split phones.
    no_email = [i for i, p in source["participants"].items() if not is_company[i] and not p["email"]]
    assert no_email and all(not people[i]["emails"]["primaryEmail"] for i in no_email)
    assert all(people[i]["name"]["lastName"] == source["participants"][i]["lastName"] for i in no_email)
    for i, person in people.items():
        raw = source["participants"][i]
        numbers = [raw[f"phone{n}Number"] for n in range(1, 5) if raw[f"phone{n}Number"]]
        phones = person["phones"]
        got = ([phones["primaryPhoneNumber"]] if phones["primaryPhoneNumber"] else []) + [
            p["number"] for p in phones["additionalPhones"] or []]
        assert [n.replace(" ", "") for n in numbers] == [g[-8:] for g in got], (i, numbers, phones)
        if numbers:
            assert phones["primaryPhoneCallingCode"] == f"+{raw['phone1Country']}"

    # Roles: every role a person holds on a matter, and the most frequent one as a SELECT.
    for i, person in people.items():
        held = [option_value(role) for _, role in source["roles"].get(i, [])]
        assert set(person["matterRoles"] or []) == set(held), i
        assert person["matterRole"] == (max(held, key=held.count) if held else None), i

    # Matters -> opportunities: deleted matters and templates left out, stage through the
    # declared value map, amount from the fee field, close date for closed matters.
    assert set(opportunities) == set(source["migrated"])
    excluded = {r["source_row"]: r["reason"] for r in run.report("excluded.csv").to_dict("records")
                if r["object"] == "opportunities"}
    assert set(excluded) == set(source["actions"]) - set(source["migrated"])
    for i, opportunity in opportunities.items():
        action = source["migrated"][i]
        assert opportunity["name"] == action["name"]
        assert opportunity["stage"] == STAGES[action["status"]]
        fee = source["fees"].get(i)
        if fee:
            assert opportunity["amount"] == {"amountMicros": int(Decimal(fee) * 1_000_000), "currencyCode": "AUD"}
        else:
            assert opportunity["amount"]["amountMicros"] is None
        if action["status"] == "Closed":
            assert _instant(opportunity["closeDate"]) == _instant(normalise_timestamp(action["statusTimestamp"]))
        else:
            assert opportunity["closeDate"] is None
        assert opportunity["matterType"] == option_value(source["type_names"][str(action["links"]["actionType"])])
        assert opportunity["matterStatus"] == option_value(action["status"])
        modified = normalise_timestamp(action["modifiedTimestamp"])
        assert _instant(opportunity["sourceUpdatedAt"]) == _instant(modified)
        # Twenty's own createdAt is the matter's (a bare date: midnight in the `timezone` setting).
        created = normalise_timestamp(action["createdTimestamp"])
        assert _instant(opportunity["createdAt"]) == _instant(created) or len(action["createdTimestamp"]) == 10

        # The primary client: a person is the point of contact, a company the opportunity's company.
        (client,) = [str(p) for p in action["links"]["primaryParticipants"]]
        assert (i, "Client") in source["roles"][client]
        if is_company[client]:
            assert (opportunity["companyId"], opportunity["pointOfContactId"]) == (twenty_id[client], None)
        else:
            assert (opportunity["pointOfContactId"], opportunity["companyId"]) == (twenty_id[client], None)
    assert {STAGES[a["status"]] for a in source["migrated"].values()} == set(STAGES.values())
    assert any(o["amount"]["amountMicros"] for o in opportunities.values())

    # Every source row accounted for.
    accounting = {name: acc for obj in run.summary().values() for name, acc in obj["accounting"].items()}
    assert all(a["balanced"] for a in accounting.values()), accounting
    assert accounting["opportunities"]["source_rows"] == len(source["actions"])


def test_custom_fields_and_role_options_are_created_before_records(migrate, fake_twenty, fake_actionstep) -> None:
    source = _source(fake_actionstep)
    fake_twenty.clear_requests()
    assert migrate().success
    paths = [r.path for r in fake_twenty.requests if r.method == "POST"]
    first_record_write = next(i for i, p in enumerate(paths) if not p.startswith("/rest/metadata"))
    assert all(p.startswith("/rest/metadata") for p in paths[:first_record_write])

    with httpx.Client(base_url=fake_twenty.base_url, headers={"Authorization": f"Bearer {fake_twenty.api_key}"},
                      timeout=10) as http:
        objects = {o["nameSingular"]: o for o in http.get("/rest/metadata/objects").json()["data"]}
    fields = {name: {f["name"]: f for f in objects[name]["fields"]} for name in ("company", "person", "opportunity")}
    for name in fields:
        assert fields[name]["actionstepId"]["isUnique"] is True
        assert "sourceCreatedAt" not in fields[name]  # the creation date is Twenty's own createdAt
        assert fields[name]["sourceUpdatedAt"]["type"] == "DATE_TIME"
    # The role options are the source's participant types, labelled as Actionstep spells them.
    for field, kind in (("matterRole", "SELECT"), ("matterRoles", "MULTI_SELECT")):
        assert fields["person"][field]["type"] == kind
        assert sorted(o["label"] for o in fields["person"][field]["options"]) == source["role_names"]
    assert {o["label"] for o in fields["opportunity"]["matterType"]["options"]} == set(source["type_names"].values())
    assert fields["opportunity"]["matterStatus"]["type"] == "SELECT"


def test_rerunning_writes_nothing_twice(migrate, fake_twenty, fake_actionstep) -> None:
    first = migrate()
    counts = {o: len(fake_twenty.records(o)) for o in ("companies", "people", "opportunities")}
    fake_twenty.clear_requests()
    fake_actionstep.clear_requests()
    again = migrate()  # the same partition: pages replayed from its checkpoints, nothing written
    assert first.success and again.success
    assert fake_actionstep.api_requests() == []
    assert not [r for r in fake_twenty.requests if r.method in ("POST", "PATCH", "DELETE")
                and not r.path.startswith("/rest/metadata")]

    fake_twenty.clear_requests()
    later = migrate(run_key="full-20261123T1000Z")  # a new full run reads the API again: all unchanged
    assert later.success
    assert fake_actionstep.served_pages("participants") == [1, 2, 3]
    assert {o: len(fake_twenty.records(o)) for o in counts} == counts
    assert later.summary()["opportunity"]["unchanged"] == counts["opportunities"]
    assert later.summary()["person"]["unchanged"] == counts["people"]


def test_an_extraction_that_gives_up_resumes_from_its_last_page(migrate, fake_twenty, fake_actionstep) -> None:
    fake_actionstep.fail_next(500, times=10_000, path_contains="rest/participants?page=2")
    crashed = migrate(max_attempts=2)
    assert not crashed.success
    assert fake_twenty.records("people") == []
    assert fake_actionstep.served_pages("participants") == [1]

    fake_actionstep.clear_failures()
    fake_actionstep.clear_requests()
    resumed = migrate()
    assert resumed.success
    assert fake_actionstep.served_pages("participants") == [2, 3]  # page 1 came from the checkpoint
    assert len(fake_twenty.records("people")) + len(fake_twenty.records("companies")) == len(
        fake_actionstep.records("participants"))


def test_the_delta_sensor_polls_the_newest_modification(fake_actionstep, tmp_path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Ledger(ledger_url) as ledger:
        ledger.start_run("full-20261122T1000Z", "actionstep", "full")
    sensor = build_definitions().resolve_sensor_def("actionstep_delta")
    source = ActionstepSource(client_id=fake_actionstep.client_id, client_secret=fake_actionstep.client_secret,
                              refresh_token=fake_actionstep.refresh_token, token_url=fake_actionstep.token_url)

    def evaluate(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
        resources = {"ledger": LedgerStore(url=ledger_url), "actionstep_source": source}
        with dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources) as context:
            return sensor(context)

    assert isinstance(evaluate(None), dg.SkipReason)  # nothing modified since the full run
    polls = fake_actionstep.api_requests()
    assert [(r.path.rsplit("/", 1)[1], r.query) for r in polls] == [
        (name, {"sort": "-modifiedTimestamp", "pageSize": "1"}) for name in ("actions", "participants")]

    participants = fake_actionstep.records("participants")
    edited = (datetime.now(timezone.utc) + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=10)))
    participants[7]["modifiedTimestamp"] = edited.strftime("%Y-%m-%d %H:%M:%S+10:00")  # a local offset, space-separated
    fake_actionstep.set_records("participants", participants)
    result = evaluate(None)
    assert isinstance(result, dg.SensorResult)
    [key] = result.dynamic_partitions_requests[0].partition_keys
    assert key.startswith("delta-") and [r.partition_key for r in result.run_requests] == [key]
    assert json.loads(result.cursor)["high_water"].startswith(edited.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M"))
    assert isinstance(evaluate(result.cursor), dg.SkipReason)  # the same change is not picked up twice
