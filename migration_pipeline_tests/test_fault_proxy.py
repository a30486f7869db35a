"""The fault proxy in front of the fake Twenty: each fault does what it says (the ambiguous ones
after the write landed), rates are seeded and per class of request, and it counts what it did."""

from __future__ import annotations

import httpx
import pytest

from migration_pipeline_tests.fakes.fault_proxy import FaultRates, request_class, serve_fault_proxy


def _client(base_url: str, api_key: str, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"},
                        timeout=httpx.Timeout(timeout))


def _people(fake_twenty) -> list[dict]:
    with _client(fake_twenty.base_url, fake_twenty.api_key) as http:
        return http.get("/rest/people").json()["data"]["people"]


def test_requests_pass_through_unchanged_when_no_fault_is_configured(fake_twenty) -> None:
    with serve_fault_proxy(fake_twenty.base_url) as proxy, _client(proxy.base_url, fake_twenty.api_key) as http:
        created = http.post("/rest/people", json={"name": {"firstName": "Ada", "lastName": "Proxy"}})
        listed = http.get("/rest/people", params={"filter": "name.firstName[eq]:Ada"})

    assert created.status_code == 201
    assert [p["id"] for p in listed.json()["data"]["people"]] == [created.json()["data"]["createPerson"]["id"]]
    assert proxy.counts == {("record_write", "passed"): 1, ("record_read", "passed"): 1}


@pytest.mark.parametrize("fault, status", [("throttle", 429), ("unavailable", 503)])
def test_throttled_and_unavailable_answers_never_reach_twenty(fake_twenty, fault: str, status: int) -> None:
    with serve_fault_proxy(fake_twenty.base_url) as proxy, _client(proxy.base_url, fake_twenty.api_key) as http:
        proxy.script(fault, method="POST")
        answer = http.post("/rest/people", json={"name": {"firstName": "Never", "lastName": "Sent"}})

    assert answer.status_code == status
    assert (answer.headers.get("retry-after") == "0") is (fault == "throttle")
    assert _people(fake_twenty) == []
    assert proxy.faults() == {fault: 1}


def test_a_lost_answer_is_a_504_after_the_write_landed(fake_twenty) -> None:
    with serve_fault_proxy(fake_twenty.base_url) as proxy, _client(proxy.base_url, fake_twenty.api_key) as http:
        proxy.script("lost", method="POST", path_contains="/rest/people")
        answer = http.post("/rest/people", json={"name": {"firstName": "Landed", "lastName": "Anyway"}})

    assert answer.status_code == 504
    assert [p["name"]["firstName"] for p in _people(fake_twenty)] == ["Landed"]


def test_a_dropped_connection_is_a_transport_error_after_the_write_landed(fake_twenty) -> None:
    with serve_fault_proxy(fake_twenty.base_url) as proxy, _client(proxy.base_url, fake_twenty.api_key) as http:
        proxy.script("drop", method="POST")
        with pytest.raises(httpx.TransportError):
            http.post("/rest/people", json={"name": {"firstName": "Dropped", "lastName": "Answer"}})

    assert [p["name"]["firstName"] for p in _people(fake_twenty)] == ["Dropped"]
    assert proxy.faults("record_write") == {"drop": 1}


def test_a_stalled_answer_outlasts_the_client_timeout_after_the_write_landed(fake_twenty) -> None:
    with serve_fault_proxy(fake_twenty.base_url, stall_seconds=1.5) as proxy, \
            _client(proxy.base_url, fake_twenty.api_key, timeout=0.5) as http:
        proxy.script("stall")
        with pytest.raises(httpx.ReadTimeout):
            http.post("/rest/people", json={"name": {"firstName": "Slow", "lastName": "Answer"}})

    assert [p["name"]["firstName"] for p in _people(fake_twenty)] == ["Slow"]


def test_rates_are_per_class_seeded_and_counted(fake_twenty) -> None:
    rates = {"metadata_read": FaultRates.spread(0.5, "throttle", "unavailable")}

    def faults_seen(seed: int) -> list[int]:
        with serve_fault_proxy(fake_twenty.base_url, rates, seed=seed) as proxy, \
                _client(proxy.base_url, fake_twenty.api_key) as http:
            statuses = [http.get("/rest/metadata/objects").status_code for _ in range(40)]
            assert all(http.get("/rest/people").status_code == 200 for _ in range(10))  # records: no rate
            assert sum(proxy.faults("metadata_read").values()) == sum(s != 200 for s in statuses)
            assert proxy.faults("record_read") == {}
            return statuses

    first = faults_seen(seed=7)
    assert first == faults_seen(seed=7)  # same seed, same faults
    assert 8 <= sum(s != 200 for s in first) <= 32 and {429, 503} <= set(first)


def test_request_classes() -> None:
    assert request_class("GET", "/rest/metadata/objects") == "metadata_read"
    assert request_class("PATCH", "/rest/metadata/fields/x") == "metadata_write"
    assert request_class("GET", "/rest/people") == "record_read"
    assert request_class("POST", "/rest/batch/people") == "record_write"
    with pytest.raises(ValueError, match="add up to at most 1"):
        FaultRates(lost=0.7, drop=0.7)
