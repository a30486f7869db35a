"""Record basics both servers must agree on (see shared/twenty-contract/examples.md)."""

from __future__ import annotations

from migration_pipeline_tests.contract.conftest import TwentyUnderTest, created


def test_a_created_company_is_read_back_by_id(twenty: TwentyUnderTest) -> None:
    company = created(twenty.http.post("/rest/companies", json={"name": f"{twenty.prefix} Acme"}))
    twenty.track_record("companies", company["id"])

    read = twenty.http.get(f"/rest/companies/{company['id']}")

    assert read.status_code == 200
    assert next(iter(read.json()["data"].values()))["name"] == f"{twenty.prefix} Acme"


def test_a_create_with_a_client_chosen_id_keeps_it_and_refuses_it_twice(twenty: TwentyUnderTest) -> None:
    import uuid

    chosen = str(uuid.uuid4())
    body = [{"id": chosen, "name": f"{twenty.prefix} Chosen"}]
    first = twenty.http.post("/rest/batch/companies", json=body)
    assert first.status_code == 201, first.text
    twenty.track_record("companies", chosen)
    assert [c["id"] for c in next(iter(first.json()["data"].values()))] == [chosen]

    again = twenty.http.post("/rest/batch/companies", json=body)

    assert again.status_code == 400
    assert "A duplicate entry was detected" in again.json()["messages"]
