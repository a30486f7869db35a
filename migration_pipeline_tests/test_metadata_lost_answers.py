"""Metadata writes whose answer is lost (through the fault proxy, in front of the fake Twenty):
a create Twenty applied is read back and ledgered as this attempt's, whether the client's retry
met `400 NOT_AVAILABLE` or the retries ran out; options likewise; a field of that name that is
not the requested one is a clear error; a lost delete is settled by reading back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.metadata import (
    FieldSpec,
    ObjectSpec,
    SchemaError,
    SchemaSpec,
    SelectOption,
    drop_created,
    ensure_schema,
)
from migration_pipeline.engine.retry import RetriesExhausted, RetryPolicy
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline_tests.fakes.fault_proxy import FaultProxy, serve_fault_proxy

SOURCE = SelectOption("WEB", "Web"), SelectOption("REFERRAL", "Referral")
DEAL = ObjectSpec("legacyDeal", "legacyDeals", "Legacy deal", "Legacy deals")
KEY = FieldSpec("person", "legacyKey", "Legacy key", "TEXT", is_unique=True)
SCHEMA = SchemaSpec(objects=(DEAL,), fields=(
    KEY,
    FieldSpec("person", "leadSource", "Lead source", "SELECT", options=SOURCE),
    FieldSpec("legacyDeal", "company", "Company", "RELATION", relation_target="company"),
))
# Every fault that hides a write which landed, and whether the client retried it (8 attempts:
# the retry meets NOT_AVAILABLE) or gave up at once (1 attempt: RetriesExhausted).
AMBIGUOUS = [("lost", 8), ("drop", 8), ("stall", 8), ("lost", 1), ("drop", 1)]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as opened:
        yield opened


@contextmanager
def through_proxy(fake_twenty: Any, attempts: int = 8) -> Iterator[tuple[FaultProxy, TwentyClient]]:
    retry = RetryPolicy(max_attempts=attempts, backoff_base_seconds=0.01, backoff_max_seconds=0.02)
    with serve_fault_proxy(fake_twenty.base_url, stall_seconds=1.0) as proxy, \
            TwentyClient(proxy.base_url, fake_twenty.api_key, timeout=httpx.Timeout(0.5), retry=retry) as client:
        yield proxy, client


def _metadata(fake_twenty: Any) -> list[dict[str, Any]]:
    return fake_twenty.snapshot()["metadata"]


def _ledgered(ledger: Ledger) -> dict[tuple[str, str, str], str]:
    return {(row["kind"], row["object"], row["name"]): row["status"] for row in ledger.schema_created()}


@pytest.mark.parametrize("fault, attempts", AMBIGUOUS)
def test_a_field_created_with_a_lost_answer_is_ledgered_as_created_and_rolled_back(
        fake_twenty: Any, ledger: Ledger, fault: str, attempts: int) -> None:
    before = _metadata(fake_twenty)
    with through_proxy(fake_twenty, attempts) as (proxy, client):
        proxy.script(fault, method="POST", path_contains="/rest/metadata/fields")

        report = ensure_schema(client, SchemaSpec(fields=(KEY,)), ledger.schema_journal("full-1"))

        assert proxy.faults("metadata_write") == {fault: 1}
        assert [(i.object, i.name) for i in report.created_fields] == [("person", "legacyKey")]
        assert _ledgered(ledger) == {("field", "person", "legacyKey"): "done"}
        assert all(r.dropped for r in drop_created(client, ledger.schema_created()))
    assert _metadata(fake_twenty) == before


@pytest.mark.parametrize("fault, attempts", AMBIGUOUS[:2])
def test_an_object_created_with_a_lost_answer_is_adopted_and_its_fields_follow(
        fake_twenty: Any, ledger: Ledger, fault: str, attempts: int) -> None:
    before = _metadata(fake_twenty)
    with through_proxy(fake_twenty, attempts) as (proxy, client):
        proxy.script(fault, method="POST", path_contains="/rest/metadata/objects")

        report = ensure_schema(client, SCHEMA, ledger.schema_journal("full-1"))

        assert [i.name for i in report.created_objects] == ["legacyDeal"]
        assert set(_ledgered(ledger).values()) == {"done"} and len(report.created_fields) == 3
        assert all(r.dropped for r in drop_created(client, ledger.schema_created()))
    assert _metadata(fake_twenty) == before


@pytest.mark.parametrize("fault, attempts", [("lost", 1), ("drop", 1), ("lost", 8)])
def test_options_added_with_a_lost_answer_are_found_and_ledgered(
        fake_twenty: Any, ledger: Ledger, fault: str, attempts: int) -> None:
    with through_proxy(fake_twenty, attempts) as (proxy, client):
        ensure_schema(client, SCHEMA)
        more = SchemaSpec(fields=(FieldSpec("person", "leadSource", "Lead source", "SELECT",
                                            options=(*SOURCE, SelectOption("EVENT", "Event"))),))
        proxy.script(fault, method="PATCH", path_contains="/rest/metadata/fields")

        report = ensure_schema(client, more, ledger.schema_journal("full-2"))

        assert [i.name for i in report.added_options] == ["EVENT"]
        assert _ledgered(ledger) == {("option", "person", "EVENT"): "done"}


def test_a_create_that_really_failed_stays_an_error(fake_twenty: Any, ledger: Ledger) -> None:
    with through_proxy(fake_twenty, attempts=2) as (proxy, client):
        proxy.script("unavailable", method="POST", times=2)  # never reached Twenty

        with pytest.raises(RetriesExhausted):
            ensure_schema(client, SchemaSpec(fields=(KEY,)), ledger.schema_journal("full-1"))

    # Not in Twenty, but it may still land: pending, settled by the next prepare or a rollback.
    assert _ledgered(ledger) == {("field", "person", "legacyKey"): "pending"}


class _RacedClient(TwentyClient):
    """Someone else creates a field of the same name, but not the same field, just before us."""

    def create_field(self, payload: Any) -> dict[str, Any]:
        super().create_field({**payload, "type": "NUMBER", "isUnique": False, "label": "Their key"})
        return super().create_field(payload)


def test_a_field_of_that_name_that_is_not_the_requested_one_is_a_clear_error(
        fake_twenty: Any, ledger: Ledger) -> None:
    with _RacedClient(fake_twenty.base_url, fake_twenty.api_key, timeout=httpx.Timeout(5)) as client:
        with pytest.raises(SchemaError) as raised:
            ensure_schema(client, SchemaSpec(fields=(KEY,)), ledger.schema_journal("full-1"))

    message = str(raised.value)
    assert "field person.legacyKey" in message and "not the one requested" in message
    assert "type is 'NUMBER', not 'TEXT'" in message and "isUnique is False, not True" in message
    assert _ledgered(ledger) == {}  # a failure: never ours to drop


@pytest.mark.parametrize("fault, path", [("lost", "/rest/metadata/fields"), ("drop", "/rest/metadata/objects"),
                                         ("stall", "/rest/metadata/fields")])
def test_a_lost_answer_to_a_removal_is_settled_by_reading_back(fake_twenty: Any, ledger: Ledger, fault: str,
                                                                 path: str) -> None:
    before = _metadata(fake_twenty)
    with through_proxy(fake_twenty, attempts=1) as (proxy, client):
        ensure_schema(client, SCHEMA, ledger.schema_journal("full-1"))
        proxy.script(fault, method="DELETE", path_contains=path, times=5)
        proxy.script(fault, method="PATCH", path_contains=path)

        results = drop_created(client, ledger.schema_created())

        assert proxy.faults("metadata_write").get(fault)
        assert [r.failure for r in results if not r.dropped] == []
    assert _metadata(fake_twenty) == before
