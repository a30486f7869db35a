"""Actionstep data collections -> custom opportunity fields, through Dagster into the fake
Twenty: the field set comes from the generated `datacollectionfields` (not from the mapping),
each field typed by its dataType, and every value (text in the API) cast onto the right
opportunity. Expectations are computed from the generated Actionstep data."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from migration_pipeline.engine.staging import pivot_field_name
from migration_pipeline.engine.transforms import option_value
from migration_pipeline.sources.actionstep.client import ActionstepSource
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, serve_fake_actionstep
from migration_pipeline_tests.harness import MigrationRun, run_migration

TYPES = {"Str255": "TEXT", "TextArea": "TEXT", "Number": "NUMBER", "Money": "CURRENCY", "Date": "DATE",
         "DateTime": "DATE_TIME", "DropDown": "SELECT", "DropDownMulti": "MULTI_SELECT", "Boolean": "BOOLEAN"}


@pytest.fixture(scope="module")
def _actionstep_server() -> Iterator[FakeActionstep]:
    with serve_fake_actionstep() as fake:
        yield fake


@pytest.fixture
def migrated(fake_twenty, _actionstep_server: FakeActionstep, tmp_path: Path) -> MigrationRun:
    _actionstep_server.reset()
    fake = _actionstep_server
    source = ActionstepSource(
        client_id=fake.client_id, client_secret=fake.client_secret, refresh_token=fake.refresh_token,
        token_url=fake.token_url, checkpoint_dir=str(tmp_path / "checkpoints"), max_attempts=4,
        backoff_base_seconds=0.01, backoff_max_seconds=0.05, timeout_seconds=10.0,
    )
    run = run_migration(instance=dg.DagsterInstance.ephemeral(), fake=fake_twenty, export_dir=tmp_path,
                        slug="actionstep", ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
                        output_dir=tmp_path / "out", resources={"actionstep_source": source})
    assert run.success, run.result.all_events[-1]
    return run


def _expected(fake: FakeActionstep) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str | None]]]:
    """(Twenty field name -> definition, matter id -> Twenty field name -> raw value) for the
    single-record collections of the migrated matters, read from the generated data."""
    type_names = {str(t["id"]): t["name"] for t in fake.records("actiontypes")}
    collections = {str(c["id"]): c for c in fake.records("datacollections")}
    definitions = {d["id"]: d for d in fake.records("datacollectionfields")
                   if collections[str(d["links"]["dataCollection"])]["multipleRecords"] == "F"}
    choices: dict[str, list[str]] = defaultdict(list)
    for choice in fake.records("datacollectionfielddropdownchoices"):
        choices[choice["links"]["dataField"]].append(choice["value"])
    matters = {str(a["id"]): a for a in fake.records("actions")
               if a["isDeleted"] == "F" and a["status"] in ("Active", "Inactive", "Closed")}
    fields: dict[str, dict[str, Any]] = {}
    values: dict[str, dict[str, str | None]] = defaultdict(dict)
    for value in fake.records("datacollectionrecordvalues"):
        matter = str(value["links"]["action"])
        definition = definitions.get(value["links"]["dataCollectionField"])
        if definition is None or matter not in matters:
            continue
        prefix = type_names[str(matters[matter]["links"]["actionType"])]
        name = pivot_field_name(prefix, definition["name"])
        fields[name] = {**definition, "choices": choices[definition["id"]], "prefix": prefix}
        values[matter][name] = value["stringValue"]
    return fields, values


def test_every_data_collection_field_becomes_a_typed_custom_field(migrated, fake_twenty, _actionstep_server) -> None:
    fields, _ = _expected(_actionstep_server)
    assert {f["dataType"] for f in fields.values()} == set(TYPES)  # every converted type is exercised
    assert len({f["prefix"] for f in fields.values()}) > 1  # several matter types, each its own fields
    with httpx.Client(base_url=fake_twenty.base_url, headers={"Authorization": f"Bearer {fake_twenty.api_key}"},
                      timeout=10) as http:
        objects = {o["nameSingular"]: o for o in http.get("/rest/metadata/objects").json()["data"]}
    in_twenty = {f["name"]: f for f in objects["opportunity"]["fields"]}
    for name, definition in fields.items():
        assert name in in_twenty, name
        assert in_twenty[name]["type"] == TYPES[definition["dataType"]], name
        assert in_twenty[name]["label"] == f"{definition['prefix']}: {definition['label']}"
        if definition["dataType"] in ("DropDown", "DropDownMulti"):
            options = {o["value"]: o["label"] for o in in_twenty[name]["options"]}
            assert options == {option_value(c): c for c in definition["choices"]}, name
    # Repeating groups (multipleRecords = T) are not pivoted onto the opportunity.
    assert not any(n.endswith(("ItemDescription", "ItemValue", "ItemDate")) for n in in_twenty)


def test_values_land_cast_on_their_opportunities(migrated, fake_twenty, _actionstep_server) -> None:
    fields, values = _expected(_actionstep_server)
    opportunities = {r["actionstepId"].split(":", 1)[1]: r for r in fake_twenty.records("opportunities")}
    assert set(values) <= set(opportunities)
    checked: defaultdict[str, int] = defaultdict(int)
    for matter, by_field in values.items():
        got = opportunities[matter]
        # Only the matter's own type's fields carry values.
        prefixes = {fields[n]["prefix"] for n in by_field}
        assert len(prefixes) == 1
        for name, raw in by_field.items():
            kind = TYPES[fields[name]["dataType"]]
            value = got.get(name)
            if raw is None:
                assert value in (None, "", [], {"amountMicros": None, "currencyCode": ""},
                                 {"amountMicros": None, "currencyCode": None}), (matter, name, value)
                continue
            checked[kind] += 1
            if kind == "TEXT":
                assert value == raw
            elif kind == "NUMBER":
                assert value == float(raw)
            elif kind == "CURRENCY":
                assert value["amountMicros"] == int(Decimal(raw) * 1_000_000) and value["currencyCode"] == "AUD"
            elif kind == "DATE":
                assert value == raw[:10]
            elif kind == "DATE_TIME":
                got_instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
                assert got_instant == datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(timezone.utc)
            elif kind == "SELECT":
                assert value == option_value(raw)
            elif kind == "MULTI_SELECT":
                assert sorted(value) == sorted(option_value(v) for v in raw.split(","))
            elif kind == "BOOLEAN":
                assert value is (raw == "T")
    assert set(checked) == set(TYPES.values()), checked


def test_accounting_holds_with_data_collections(migrated) -> None:
    summary = migrated.summary()
    accounting = {name: acc for obj in summary.values() for name, acc in obj["accounting"].items()}
    assert accounting["opportunities"]["balanced"], accounting["opportunities"]
    differences = (migrated.output / "verify" / "field_diff.csv").read_text(encoding="utf-8").splitlines() \
        if (migrated.output / "verify" / "field_diff.csv").exists() else []
    assert differences[1:] == [], differences[:5]
