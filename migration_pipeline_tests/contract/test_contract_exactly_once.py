"""Exactly-once creates on the fake and a real Twenty: a client-chosen id is kept, and a batch whose
answer is lost after Twenty wrote it is found by its ids and not created again (examples-2.md
section 13). The lost answer is made in the client's transport: it sends the request, lets the
server answer, then raises a timeout instead of handing the answer over."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.loader import record_id
from migration_pipeline.engine.retry import RetryPolicy
from migration_pipeline_tests.contract.conftest import TwentyUnderTest


class LosesFirstWriteAnswer(httpx.HTTPTransport):
    """Forwards every request; the answer to the first POST is dropped after the server wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and self.lost == 0:
            self.lost += 1
            response.read()
            raise httpx.ReadTimeout("answer lost after the write", request=request)
        return response


@pytest.fixture
def lossy(twenty: TwentyUnderTest) -> Iterator[tuple[TwentyClient, LosesFirstWriteAnswer]]:
    api_key = twenty.http.headers["Authorization"].removeprefix("Bearer ")
    transport = LosesFirstWriteAnswer()
    retry = RetryPolicy(max_attempts=4, backoff_base_seconds=0.05, backoff_max_seconds=0.2)
    with TwentyClient(twenty.base_url, api_key, timeout=httpx.Timeout(60.0), retry=retry,
                      transport=transport) as client:
        yield client, transport


def test_a_batch_whose_answer_was_lost_after_the_write_is_read_back_not_created_twice(
    twenty: TwentyUnderTest, lossy: tuple[TwentyClient, LosesFirstWriteAnswer]
) -> None:
    client, transport = lossy
    batch = [{"id": record_id(twenty.base_url, twenty.prefix, "people", f"contact:{n}"),
              "name": {"firstName": f"{twenty.prefix}{n}", "lastName": "ExactlyOnce"}} for n in range(3)]
    for record in batch:
        twenty.track_record("people", record["id"])

    created = client.create_batch("people", batch)

    assert transport.lost == 1 and client.settled_count == 3
    assert [c["id"] for c in created] == [r["id"] for r in batch]  # Twenty kept the ids we chose
    requests = client.request_count
    found = client.find_by_values("people", "name.firstName", [f"{twenty.prefix}{n}" for n in range(3)])
    assert sorted(p["id"] for p in found) == sorted(r["id"] for r in batch)  # once each
    assert requests == 2  # the lost POST, then one read-back that found them all active


def test_the_same_id_sent_again_is_a_duplicate_entry_and_no_second_record(twenty: TwentyUnderTest) -> None:
    body = [{"id": record_id(twenty.base_url, twenty.prefix, "people", "again"),
             "name": {"firstName": twenty.prefix, "lastName": "Again"}}]
    twenty.track_record("people", body[0]["id"])
    assert twenty.http.post("/rest/batch/people", json=body).status_code == 201
    again = twenty.http.post("/rest/batch/people", json=body)
    assert again.status_code == 400 and "duplicate entry" in again.text.lower()
    listed = twenty.http.get("/rest/people", params={"filter": f'name.firstName[eq]:"{twenty.prefix}"'}).json()
    assert len(listed["data"]["people"]) == 1
