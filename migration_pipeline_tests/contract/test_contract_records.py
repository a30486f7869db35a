"""Record basics both servers must agree on (shared/twenty-contract/examples.md, examples-2.md)."""

from __future__ import annotations

import uuid

from migration_pipeline_tests.contract.conftest import TwentyUnderTest, created
from migration_pipeline_tests.contract.probing import batch_create, data_of, listed, messages


def test_a_created_company_is_read_back_by_id(twenty: TwentyUnderTest) -> None:
    company = created(twenty.http.post("/rest/companies", json={"name": f"{twenty.prefix} Acme"}))
    twenty.track_record("companies", company["id"])

    read = twenty.http.get(f"/rest/companies/{company['id']}")

    assert read.status_code == 200
    assert next(iter(read.json()["data"].values()))["name"] == f"{twenty.prefix} Acme"


def test_a_create_with_a_client_chosen_id_keeps_it_and_refuses_it_twice(twenty: TwentyUnderTest) -> None:
    chosen = str(uuid.uuid4())
    body = [{"id": chosen, "name": f"{twenty.prefix} Chosen"}]
    first = twenty.http.post("/rest/batch/companies", json=body)
    assert first.status_code == 201, first.text
    twenty.track_record("companies", chosen)
    assert [c["id"] for c in next(iter(first.json()["data"].values()))] == [chosen]

    again = twenty.http.post("/rest/batch/companies", json=body)

    assert again.status_code == 400
    assert "A duplicate entry was detected" in again.json()["messages"]


# ---- batch atomicity (examples-2.md section 7) -----------------------------------------------


def test_a_batch_create_is_all_or_nothing_and_does_not_say_which_record_failed(twenty: TwentyUnderTest) -> None:
    p = twenty.prefix
    existing = f"{p}-existing@probe.example"
    batch_create(twenty, "people", [{"emails": {"primaryEmail": existing}}])
    batches = {  # (emails, query): an upsert does not merge duplicates inside one batch either
        "an existing email": ([f"{p}-a@probe.example", existing, f"{p}-c@probe.example"], {}),
        "a duplicate inside the batch": ([f"{p}-d@probe.example", f"{p}-d@probe.example", f"{p}-f@probe.example"], {}),
        "a duplicate inside an upsert": ([f"{p}-g@probe.example", f"{p}-g@probe.example"], {"upsert": "true"}),
    }
    for reason, (emails, params) in batches.items():
        response = twenty.http.post("/rest/batch/people", params=params,
                                    json=[{"emails": {"primaryEmail": email}} for email in emails])

        assert response.status_code == 400, reason
        assert messages(response) == ["A duplicate entry was detected"], reason
    bad_type = twenty.http.post("/rest/batch/companies", json=[
        {"name": f"{p} ok 1"}, {"name": f"{p} bad", "position": "abc"}, {"name": f"{p} ok 2"}])
    assert bad_type.status_code == 400

    mine = listed(twenty, "people", f'emails.primaryEmail[like]:"{p}-%"').json()
    assert [person["emails"]["primaryEmail"] for person in mine["data"]["people"]] == [existing]
    assert listed(twenty, "companies", f'name[like]:"{p} %"', limit=0).json()["totalCount"] == 0


# ---- client-supplied timestamps (section 11) --------------------------------------------------


def test_created_at_and_updated_at_sent_by_the_client_are_stored_as_given(twenty: TwentyUnderTest) -> None:
    backdated = created(twenty.http.post("/rest/companies", json={
        "name": f"{twenty.prefix} Backdated", "createdAt": "2020-01-02T03:04:05.000Z",
        "updatedAt": "2020-01-03T00:00:00.000Z"}))
    twenty.track_record("companies", backdated["id"])
    [batched] = batch_create(twenty, "companies", [{"name": f"{twenty.prefix} Batch",
                                                    "createdAt": "2019-05-06T07:08:09.123Z"}])
    route = f"/rest/companies/{backdated['id']}"

    read = data_of(twenty.http.get(route))
    recreated = data_of(twenty.http.patch(route, json={"createdAt": "2018-01-01T00:00:00.000Z"}))
    explicit = data_of(twenty.http.patch(route, json={"name": f"{twenty.prefix} Again",
                                                      "updatedAt": "2020-06-01T00:00:00.000Z"}))
    old = listed(twenty, "companies", f'and(name[like]:"{twenty.prefix} %",createdAt[lt]:"2021-01-01T00:00:00Z")')

    assert (read["createdAt"], read["updatedAt"]) == ("2020-01-02T03:04:05.000Z", "2020-01-03T00:00:00.000Z")
    assert batched["createdAt"] == "2019-05-06T07:08:09.123Z" and batched["updatedAt"] > "2020"
    assert recreated["createdAt"] == "2018-01-01T00:00:00.000Z" and recreated["updatedAt"] > "2021"  # bumped
    assert explicit["updatedAt"] == "2020-06-01T00:00:00.000Z"  # an explicit updatedAt wins
    assert sorted(c["id"] for c in data_of(old)) == sorted([backdated["id"], batched["id"]])


# ---- a new workspace (shared/twenty-server/README.md) -----------------------------------------


def test_a_new_workspace_holds_five_sample_companies_and_people(twenty: TwentyUnderTest) -> None:
    if twenty.fake is not None:
        twenty.fake.reset(with_sample_records=True)
    system = "createdBy.source[eq]:SYSTEM"

    people = data_of(listed(twenty, "people", system, order_by="position"))
    companies_ = data_of(listed(twenty, "companies", system, order_by="position"))

    assert [c["name"] for c in companies_] == ["Airbnb", "Anthropic", "Stripe", "Figma", "Notion"]
    assert [p["emails"]["primaryEmail"] for p in people] == [
        "chesky@airbnb.com", "amodei@anthropic.com", "collison@stripe.com", "field@figma.com", "zhao@notion.com"]
    company_of = {c["id"]: c["name"] for c in companies_}
    assert [company_of[p["companyId"]] for p in people] == [c["name"] for c in companies_]
