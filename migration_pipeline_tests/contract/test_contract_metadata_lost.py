"""Metadata writes whose answer is lost, on both servers: what a replayed create is answered, and
that `ensure_schema` / `drop_created` behind the fault proxy settle lost answers by reading back.

Probe names start with `twenty.prefix`; everything created is tracked and deleted. The probe
object's MORPH_RELATION targets go only with the object itself (examples-2.md section 12).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.metadata import (
    FieldSpec,
    ObjectSpec,
    SchemaSpec,
    SelectOption,
    drop_created,
    ensure_schema,
)
from migration_pipeline.engine.retry import RetryPolicy
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline_tests.contract.conftest import TwentyUnderTest
from migration_pipeline_tests.fakes.fault_proxy import serve_fault_proxy


def _ours(twenty: TwentyUnderTest) -> dict[str, set[str]]:
    """nameSingular -> field names starting with the prefix (objects of ours: every field)."""
    objects = twenty.http.get("/rest/metadata/objects").json()["data"]
    objects = objects if isinstance(objects, list) else objects["objects"]
    return {o["nameSingular"]: {f["name"] for f in o["fields"] if f["name"].startswith(twenty.prefix)}
            for o in objects if o["nameSingular"].startswith(twenty.prefix)
            or any(f["name"].startswith(twenty.prefix) for f in o["fields"])}


def test_a_replayed_field_create_is_answered_not_available(twenty: TwentyUnderTest) -> None:
    body = {"objectMetadataId": twenty.object_id("person"), "type": "TEXT", "name": f"{twenty.prefix}Key",
            "label": f"{twenty.prefix} key", "isNullable": True}
    first = twenty.http.post("/rest/metadata/fields", json=body)
    assert first.status_code == 201, first.text
    twenty.track_field(first.json()["id"])

    replayed = twenty.http.post("/rest/metadata/fields", json=body)

    assert replayed.status_code == 400
    errors = [e for entity in replayed.json()["errors"]["fieldMetadata"] for e in entity["errors"]]
    assert [(e["code"], e["message"]) for e in errors] == [
        ("NOT_AVAILABLE", f'Name "{twenty.prefix}Key" is not available as it is already used by another field')]


def test_ensure_schema_and_drop_created_settle_lost_answers_by_reading_back(
        twenty: TwentyUnderTest, tmp_path: Path) -> None:
    p = twenty.prefix
    spec = SchemaSpec(objects=(ObjectSpec(f"{p}Deal", f"{p}Deals", f"{p} deal", f"{p} deals"),), fields=(
        FieldSpec("person", f"{p}Key", f"{p} key", "TEXT", is_unique=True),
        FieldSpec("person", f"{p}Source", f"{p} source", "SELECT", options=(SelectOption("WEB", "Web"),)),
        FieldSpec(f"{p}Deal", f"{p}Company", f"{p} company", "RELATION", relation_target="company",
                  inverse_label=f"{p} deals"),
    ))
    more = SchemaSpec(fields=(FieldSpec("person", f"{p}Source", f"{p} source", "SELECT",
                                        options=(SelectOption("WEB", "Web"), SelectOption("EVENT", "Event"))),))
    retry = RetryPolicy(max_attempts=4, backoff_base_seconds=0.05, backoff_max_seconds=0.2)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger, \
            serve_fault_proxy(twenty.base_url) as proxy, \
            TwentyClient(proxy.base_url, twenty.http.headers["Authorization"].removeprefix("Bearer "),
                         timeout=httpx.Timeout(60), retry=retry) as client:
        proxy.script("lost", method="POST", path_contains="/rest/metadata/objects")
        proxy.script("lost", method="POST", path_contains="/rest/metadata/fields", times=3)
        report = ensure_schema(client, spec, ledger.schema_journal("full-1"))
        for item in report.created_objects:
            twenty.track_object(item.metadata_id)
        for item in report.created_fields:
            twenty.track_field(item.metadata_id)
        proxy.script("lost", method="PATCH", path_contains="/rest/metadata/fields")
        added = ensure_schema(client, more, ledger.schema_journal("full-2"))
        created = _ours(twenty)

        proxy.script("lost", method="DELETE", times=3)
        proxy.script("lost", method="PATCH")
        dropped = drop_created(client, ledger.schema_created())

        assert proxy.faults("metadata_write") == {"lost": 9}
    assert [i.name for i in report.created_objects] == [f"{p}Deal"]
    assert sorted(i.name for i in report.created_fields) == sorted([f"{p}Key", f"{p}Source", f"{p}Company"])
    assert [i.name for i in added.added_options] == ["EVENT"]
    assert created[f"{p}Deal"] >= {f"{p}Company"} and created["person"] == {f"{p}Key", f"{p}Source"}
    assert [r.failure for r in dropped if not r.dropped] == []
    assert _ours(twenty) == {}
