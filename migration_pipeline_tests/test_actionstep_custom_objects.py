"""Actionstep's repeating data collections and matter participants as Twenty custom objects,
through Dagster into the fake Twenty over loopback HTTP: the objects, their typed fields and
their relations are created through the metadata API before any record; every record lands
linked to the right opportunity (and person or company) with the right values; a rerun
writes nothing; a rollback removes the records and the schema. Expectations are computed from
what the fake Actionstep served, not from the pipeline's output."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.mapping import MappingError, load_mapping
from migration_pipeline.engine.staging import pivot_field_name
from migration_pipeline.engine.transforms import option_value
from migration_pipeline.lifecycle.rollback_job import OP_NAME, rollback_job
from migration_pipeline.resources import LedgerStore
from migration_pipeline_tests.fakes.actionstep import FakeActionstep
from migration_pipeline_tests.test_actionstep_e2e import (  # noqa: F401  (fixtures)
    _actionstep_server,
    _by_source_id,
    fake_actionstep,
    migrate,
)

MIGRATED_STATUSES = ("Active", "Inactive", "Closed")
CUSTOM = {"matterRecord": "matterRecords", "matterParticipant": "matterParticipants"}


def _roll_back(fake_twenty, tmp_path: Path, **config: Any) -> dg.ExecuteInProcessResult:
    """The `rollback` job on the ledger the `migrate` fixture writes."""
    return rollback_job.execute_in_process(
        run_config={"ops": {OP_NAME: {"config": config}}},
        resources={"twenty": TwentyWriter(api_url=fake_twenty.base_url, api_key=fake_twenty.api_key,
                                          requests_per_minute=6000),
                   "ledger": LedgerStore(url=f"sqlite:///{tmp_path / 'ledger.sqlite'}")},
    )


def _metadata(fake_twenty) -> dict[str, dict[str, Any]]:
    """nameSingular -> object metadata, read through the metadata API."""
    with httpx.Client(base_url=fake_twenty.base_url, timeout=10,
                      headers={"Authorization": f"Bearer {fake_twenty.api_key}"}) as http:
        return {o["nameSingular"]: o for o in http.get("/rest/metadata/objects").json()["data"]}


# --- what the fake Actionstep served -----------------------------------------------------------


@dataclass
class Expected:
    matters: set[str]  # ids of the matters that become opportunities
    records: dict[str, dict[str, Any]]  # repeating-collection record id -> matter, collection, values
    fields: dict[str, str]  # Twenty field name -> dataType, of repeating-collection fields
    participants: dict[str, dict[str, str]]  # actionparticipant id -> matter, participant, role
    held_participants: set[str]  # actionparticipants of matters left out
    held_records: set[str]  # repeating-collection records of matters left out
    contacts: dict[str, dict[str, Any]]  # participant id -> participant


def _expected(fake: FakeActionstep) -> Expected:
    matters = {str(a["id"]) for a in fake.records("actions")
               if a["isDeleted"] == "F" and a["status"] in MIGRATED_STATUSES}
    collections = {str(c["id"]): c for c in fake.records("datacollections")}
    definitions = {d["id"]: d for d in fake.records("datacollectionfields")
                   if collections[str(d["links"]["dataCollection"])]["multipleRecords"] == "T"}
    records: dict[str, dict[str, Any]] = {}
    held_records = set()
    for record in fake.records("datacollectionrecords"):
        collection = collections[str(record["links"]["dataCollection"])]
        if collection["multipleRecords"] == "F":
            continue
        if str(record["links"]["action"]) in matters:
            records[str(record["id"])] = {"matter": str(record["links"]["action"]), "collection": collection,
                                          "values": {}}
        else:
            held_records.add(str(record["id"]))
    fields: dict[str, str] = {}
    for value in fake.records("datacollectionrecordvalues"):
        definition = definitions.get(value["links"]["dataCollectionField"])
        record = records.get(str(value["links"]["dataCollectionRecord"]))
        if definition is not None and record is not None:
            name = pivot_field_name(record["collection"]["name"], definition["name"])
            fields[name] = definition["dataType"]
            record["values"][name] = value["stringValue"]
    roles = {str(t["id"]): t["name"] for t in fake.records("participanttypes")}
    participants, held = {}, set()
    for ap in fake.records("actionparticipants"):
        links = ap["links"]
        entry = {"matter": str(links["action"]), "participant": str(links["participant"]),
                 "role": roles[str(links["participantType"])]}
        if entry["matter"] in matters:
            participants[ap["id"]] = entry
        else:
            held.add(ap["id"])
    contacts = {str(p["id"]): p for p in fake.records("participants")}
    return Expected(matters, records, fields, participants, held, held_records, contacts)


# --- tests -----------------------------------------------------------------------------------


def test_custom_objects_their_fields_and_relations_exist_before_any_record(migrate, fake_twenty, fake_actionstep) -> None:
    expected = _expected(fake_actionstep)
    assert migrate().success
    posts = [r for r in fake_twenty.requests if r.method == "POST"]
    first_record = next(i for i, r in enumerate(posts) if not r.path.startswith("/rest/metadata"))
    schema_posts = posts[:first_record]
    assert all(r.path.startswith("/rest/metadata") for r in schema_posts)
    created = [r.json["nameSingular"] for r in schema_posts if r.path == "/rest/metadata/objects"]
    assert sorted(created) == sorted(CUSTOM)

    meta = _metadata(fake_twenty)
    ids = {name: obj["id"] for name, obj in meta.items()}
    field_posts = [r.json for r in schema_posts if r.path == "/rest/metadata/fields"]
    for name in CUSTOM:  # the object first, then its fields
        object_post = next(i for i, r in enumerate(schema_posts) if r.json.get("nameSingular") == name)
        field_indexes = [i for i, r in enumerate(schema_posts) if r.json.get("objectMetadataId") == ids[name]]
        assert field_indexes and object_post < min(field_indexes), name
    name_of = {metadata_id: name for name, metadata_id in ids.items()}
    relations = {(name_of[p["objectMetadataId"]], p["name"]): (p["relationCreationPayload"]["type"],
                                                                name_of[p["relationCreationPayload"]["targetObjectMetadataId"]])
                 for p in field_posts if p["type"] == "RELATION"}
    assert relations == {("matterRecord", "opportunity"): ("MANY_TO_ONE", "opportunity"),
                         **{("matterParticipant", n): ("MANY_TO_ONE", n) for n in ("opportunity", "person", "company")},
                         ("company", "parentCompany"): ("MANY_TO_ONE", "company")}  # a custom relation of a standard object

    fields = {name: {f["name"]: f for f in meta[name]["fields"]} for name in meta}
    for name in CUSTOM:
        assert fields[name]["actionstepId"]["isUnique"] is True
    records = fields["matterRecord"]
    assert records["opportunity"]["type"] == "RELATION"
    assert records["opportunity"]["relationTargetObjectMetadataId"] == ids["opportunity"]
    types = {"Str255": "TEXT", "Money": "CURRENCY", "Date": "DATE"}
    assert set(expected.fields.values()) == set(types)
    for name, data_type in expected.fields.items():
        assert records[name]["type"] == types[data_type], name
    participants = fields["matterParticipant"]
    for relation in ("opportunity", "person", "company"):
        assert participants[relation]["relationTargetObjectMetadataId"] == ids[relation]
    roles = sorted(t["name"] for t in fake_actionstep.records("participanttypes"))
    assert sorted(o["label"] for o in participants["participantRole"]["options"]) == roles
    # Seen from an opportunity (and a person, a company): its matter participants and records.
    assert {"matterParticipants", "matterDataRecords"} <= set(fields["opportunity"])
    assert "matterParticipants" in fields["person"] and "matterParticipants" in fields["company"]


def test_every_repeating_record_and_participant_lands_linked_and_typed(migrate, fake_twenty, fake_actionstep) -> None:
    expected = _expected(fake_actionstep)
    run = migrate(layers=("extract", "stage", "prepare", "load", "report", "verify"))
    assert run.success, run.result.all_events[-1]
    twenty = fake_twenty
    opportunities = _by_source_id(twenty.records("opportunities"))
    people, companies = _by_source_id(twenty.records("people")), _by_source_id(twenty.records("companies"))
    contact_ids = {**{k: p["id"] for k, p in people.items()}, **{k: c["id"] for k, c in companies.items()}}

    records = _by_source_id(twenty.records("matterRecords"))
    assert set(records) == set(expected.records) and len({len(r["values"]) for r in expected.records.values()}) == 1
    per_matter = defaultdict(int)
    for record_id, want in expected.records.items():
        got = records[record_id]
        per_matter[want["matter"]] += 1
        assert got["opportunityId"] == opportunities[want["matter"]]["id"], record_id
        assert got["name"] == f"{want['collection']['label']} #{record_id}"
        assert got["collection"] == option_value(want["collection"]["label"])
        for name, raw in want["values"].items():
            data_type, value = expected.fields[name], got[name]
            if raw is None:
                assert value in (None, "", {"amountMicros": None, "currencyCode": None},
                                 {"amountMicros": None, "currencyCode": ""}), (record_id, name, value)
            elif data_type == "Str255":
                assert value == raw
            elif data_type == "Money":
                assert value == {"amountMicros": int(Decimal(raw) * 1_000_000), "currencyCode": "AUD"}
            else:
                assert value == raw[:10]
    assert max(per_matter.values()) > 1  # repeating: several records on one opportunity

    junction = _by_source_id(twenty.records("matterParticipants"))
    assert set(junction) == set(expected.participants)
    for ap_id, want in expected.participants.items():
        got = junction[ap_id]
        assert got["opportunityId"] == opportunities[want["matter"]]["id"], ap_id
        assert got["participantRole"] == option_value(want["role"])
        contact = expected.contacts[want["participant"]]
        assert got["name"] == f"{want['role']}: {contact['displayName']}"
        linked = (got["companyId"], got["personId"])
        assert linked == ((contact_ids[want["participant"]], None) if contact["isCompany"] == "T"
                          else (None, contact_ids[want["participant"]])), ap_id
    matters = {w["matter"] for w in expected.participants.values()}
    assert len(junction) > len(matters)  # several participants per opportunity

    # Participants and records of matters left out are held with the reason, never dropped.
    quarantined = run.report("quarantined.csv").to_dict("records")
    for name, wanted in (("matter_participants", expected.held_participants), ("matter_records", expected.held_records)):
        held = {r["source_row"]: r["reason"] for r in quarantined if r["object"] == name}
        assert wanted and set(held) == wanted, name
        assert all(reason.startswith("opportunityId:") for reason in held.values())
    accounting = {name: acc for obj in run.summary().values() for name, acc in obj["accounting"].items()}
    for name in ("matter_records", "matter_participants"):
        assert accounting[name]["balanced"], accounting[name]
    assert accounting["matter_participants"]["source_rows"] == len(fake_actionstep.records("actionparticipants"))

    # Read back from Twenty: field diff clean, counts and totals reconcile for the new objects too.
    differences = (run.output / "verify" / "field_diff.csv").read_text(encoding="utf-8").splitlines()
    assert differences[1:] == [], differences[:5]
    (diff,) = [e.materialization.metadata["per_object"].value for e in run.result.get_asset_materialization_events()
               if e.asset_key == dg.AssetKey(["actionstep", "verify", "field_diff"])]
    assert diff["matterRecord"]["records"] == len(expected.records)
    assert diff["matterParticipant"]["records"] == len(expected.participants)
    assert all(diff[obj]["match"] and not diff[obj]["differs"] and not diff[obj]["missing"] for obj in CUSTOM)
    for check in ("counts_match", "field_totals_match"):
        assert run.check("actionstep/verify/reconciliation", check).passed, check
    reconciliation = (run.output / "verify" / "reconciliation.json").read_text(encoding="utf-8")
    assert '"object": "matterParticipants"' in reconciliation and '"participantRole: records per value"' in reconciliation


def test_a_rerun_writes_nothing_and_a_rollback_removes_records_and_schema(
        migrate, fake_twenty, fake_actionstep, tmp_path) -> None:
    expected = _expected(fake_actionstep)
    before = fake_twenty.snapshot()
    first = migrate()
    counts = {plural: len(fake_twenty.records(plural)) for plural in CUSTOM.values()}
    assert first.success and all(counts.values()), counts

    # The next full run reads the API again: everything unchanged, a record gone from the source
    # reported (not deleted in Twenty).
    gone = next(iter(expected.records))
    fake_actionstep.set_records("datacollectionrecords", [
        r for r in fake_actionstep.records("datacollectionrecords") if str(r["id"]) != gone])
    fake_twenty.clear_requests()
    again = migrate(run_key="full-20261123T1000Z")
    assert again.success
    writes = [r for r in fake_twenty.requests if r.method in ("POST", "PATCH", "DELETE")]
    assert writes == [], [(r.method, r.path) for r in writes[:5]]
    for singular, plural in CUSTOM.items():
        missing = int(singular == "matterRecord")
        assert again.summary()[singular]["unchanged"] + missing == counts[plural] == first.summary()[singular]["created"]
    deleted = again.report("deleted_in_source.csv")
    assert deleted[["object", "source_key"]].values.tolist() == [["matterRecords", f"matter_records:{gone}"]]

    assert _roll_back(fake_twenty, tmp_path, all_runs=True, drop_schema=True).success
    meta = _metadata(fake_twenty)
    assert not set(CUSTOM) & set(meta)
    for standard in ("opportunity", "person", "company"):
        assert not {"matterParticipants", "matterDataRecords"} & {f["name"] for f in meta[standard]["fields"]}
    after = fake_twenty.snapshot()
    assert after["metadata"] == before["metadata"]
    assert {p: r for p, r in after["records"].items() if r} == {p: r for p, r in before["records"].items() if r}


def test_a_relation_to_an_unknown_object_is_refused_with_its_place(tmp_path: Path) -> None:
    text = (MAPPINGS_DIR / "actionstep__twenty.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken__twenty.yaml"
    old = "      personId:\n        object: people\n"
    assert text.count(old) == 1  # the junction's relation to people
    broken.write_text(text.replace(old, "      personId:\n        object: persons\n"), encoding="utf-8")
    with pytest.raises(MappingError, match=r"broken__twenty.yaml: .*matter_participants.personId relates to "
                                           r"unknown object 'persons'"):
        load_mapping(broken)


def test_a_sample_run_holds_only_rows_whose_matter_is_in_the_slice(migrate, fake_twenty, fake_actionstep) -> None:
    # Participants are the slice's hub; a task, data record or matter participant whose matter
    # was not picked would be held in the sample only because of the slice, so it is left out.
    run = migrate(run_key="sample-20261122T0900Z", skip_sample_gate=False,
                  layers=("extract", "stage", "prepare", "load", "report", "verify"))
    assert run.success, run.result.all_events[-1]
    expected = _expected(fake_actionstep)
    opportunities = _by_source_id(fake_twenty.records("opportunities"))
    assert 0 < len(opportunities) < len(expected.matters)
    for plural in (*CUSTOM.values(), "tasks"):
        records = fake_twenty.records(plural)
        assert records and all(r.get("opportunityId") in {o["id"] for o in opportunities.values()}
                               for r in records if plural != "tasks"), plural
    assert run.report("quarantined.csv").empty
    assert (run.output / "verify" / "field_diff.csv").read_text(encoding="utf-8").splitlines()[1:] == []
