"""The project's own Twenty client and loader on the rules of the real server (examples-2.md).

Lookups by value must find every value, whatever filter syntax it holds (an apostrophe, quotes,
commas, parentheses, brackets, `+`), in one state or both; a batch with one bad record must still
land the others. Run against the fake and, when configured, a real Twenty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from migration_pipeline.destinations.twenty.client import MAX_JSON_BODY_BYTES, TwentyClient, TwentyRequestError
from migration_pipeline.destinations.twenty.loader import LoadRecord, load_object
from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.engine.retry import RetryPolicy
from migration_pipeline.ledger import Ledger
from migration_pipeline_tests.contract.conftest import TwentyUnderTest
from migration_pipeline_tests.contract.probing import batch_create, companies

AWKWARD = ["O'Brien & Sons", 'Say "Hi"', 'Size 5"', "Comma, Jr.", "Paren (X", "Paren (X)", "x) (y",
           "Brackets [1]", "Plus+Minus", "100% _done_", "plain"]


@pytest.fixture
def client(twenty: TwentyUnderTest) -> Iterator[TwentyClient]:
    api_key = twenty.http.headers["Authorization"].removeprefix("Bearer ")
    retry = RetryPolicy(max_attempts=3, backoff_base_seconds=0.01, backoff_max_seconds=0.05)
    with TwentyClient(twenty.base_url, api_key, timeout=httpx.Timeout(60.0), retry=retry,
                      limiter=RateLimiter(60_000)) as opened:
        yield opened


def test_values_holding_filter_syntax_are_each_found_exactly_in_either_state(
    twenty: TwentyUnderTest, client: TwentyClient
) -> None:
    ids = companies(twenty, *AWKWARD, "Size 5", "Say Hi")  # near misses a like pattern also matches
    deleted = {"Size 5\"", "Paren (X"}
    for name in deleted:
        client.soft_delete("companies", ids[name])
    names = [f"{twenty.prefix} {name}" for name in AWKWARD]

    def found(**state: bool) -> dict[str, str]:
        return {c["name"].removeprefix(f"{twenty.prefix} "): c["id"]
                for c in client.find_by_values("companies", "name", names, **state)}

    assert found() == {name: ids[name] for name in AWKWARD if name not in deleted}
    assert found(only_deleted=True) == {name: ids[name] for name in deleted}
    assert found(include_deleted=True) == {name: ids[name] for name in AWKWARD}


def test_emails_with_an_apostrophe_or_a_plus_are_found_with_the_others(
    twenty: TwentyUnderTest, client: TwentyClient
) -> None:
    emails = [f"{twenty.prefix}.o'neil@probe.example", f"{twenty.prefix}+tag@probe.example",
              f"{twenty.prefix}-plain@probe.example"]
    people = batch_create(twenty, "people", [{"emails": {"primaryEmail": email}} for email in emails])
    client.soft_delete("people", people[0]["id"])

    found = client.find_by_values("people", "emails.primaryEmail", emails, include_deleted=True)

    assert sorted(p["id"] for p in found) == sorted(p["id"] for p in people)


def test_a_bad_record_in_a_batch_is_isolated_and_the_rest_lands(
    twenty: TwentyUnderTest, client: TwentyClient, tmp_path: Path
) -> None:
    # Twenty refuses the whole batch without saying which record failed; the loader bisects.
    records = [LoadRecord(f"probe:{i}", {"name": f"{twenty.prefix} Load{i}"}) for i in range(12)]
    records[7] = LoadRecord("probe:7", {"name": f"{twenty.prefix} Load7", "position": "abc"})

    with Ledger(str(tmp_path / "ledger.sqlite")) as ledger:
        outcome = load_object(client, ledger, "contract-run", "companies", records, external_key_field=None)
        landed = {w["source_key"]: w["twenty_id"] for w in ledger.writes("contract-run")
                  if w["operation"] == "create"}
    for twenty_id in landed.values():
        twenty.track_record("companies", twenty_id)

    assert outcome.created == 11 and [key for key, _ in outcome.rejected] == ["probe:7"]
    assert "position" in outcome.rejected[0][1]
    in_twenty = client.find_by_values("companies", "name", [r.payload["name"] for r in records])
    assert sorted(c["id"] for c in in_twenty) == sorted(landed.values())


def test_a_json_body_over_twentys_limit_is_refused_before_it_is_sent(client: TwentyClient) -> None:
    huge = [{"name": "x" * (MAX_JSON_BODY_BYTES // 2)}, {"name": "y" * (MAX_JSON_BODY_BYTES // 2)}]
    sent = client.request_count

    with pytest.raises(TwentyRequestError) as refused:
        client.create_batch("companies", huge)

    assert refused.value.status == 413 and "JSON limit" in refused.value.messages[0]
    assert client.request_count == sent
