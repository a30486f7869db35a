"""Contract tests of the fake Twenty server over real HTTP on 127.0.0.1.

Each test states one point of `shared/twenty-contract/examples.md` the fake must honour. What a
real Twenty can be asked too is asserted once, in `contract/` (against both); this module keeps
what only the fake can show (injected failures, the rate limiter, cascades, its Python API).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from migration_pipeline_tests.fakes.twenty import FakeTwenty, serve_fake_twenty

API_KEY = "test-key"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTwenty]:
    with serve_fake_twenty(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeTwenty) -> FakeTwenty:
    server.reset()
    server.set_rate_limit(None)
    return server


@pytest.fixture
def client(fake: FakeTwenty) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, timeout=httpx.Timeout(5.0)) as http:
        yield http


def messages(response: httpx.Response) -> list[str]:
    return response.json()["messages"]


def create(client: httpx.Client, plural: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
    response = client.post(f"/rest/{plural}", json=body, params=params)
    assert response.status_code == 201, response.text
    return next(iter(response.json()["data"].values()))


def object_id(client: httpx.Client, singular: str) -> str:
    objects = client.get("/rest/metadata/objects").json()["data"]
    return next(o["id"] for o in objects if o["nameSingular"] == singular)


def add_field(client: httpx.Client, singular: str, **body: Any) -> httpx.Response:
    return client.post("/rest/metadata/fields", json={"objectMetadataId": object_id(client, singular), **body})


# ---- records ---------------------------------------------------------------------------------


def test_create_fills_every_field_with_its_empty_shape(client: httpx.Client) -> None:
    company = create(client, "companies", {"name": "Acme"})

    assert company["domainName"] == {"primaryLinkLabel": "", "primaryLinkUrl": "", "secondaryLinks": []}
    assert company["annualRevenue"] == {"amountMicros": None, "currencyCode": None}
    assert company["address"]["addressLat"] is None and company["address"]["addressCity"] == ""
    assert company["createdBy"] == {"source": "API", "workspaceMemberId": None, "name": "migration-tool", "context": {}}
    assert company["deletedAt"] is None and company["accountOwnerId"] is None


def test_list_paginates_with_cursor(client: httpx.Client) -> None:
    names = ["Echo", "Alpha", "Delta", "Charlie", "Bravo"]
    client.post("/rest/batch/companies", json=[{"name": n} for n in names])

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", "order_by": "name[AscNullsFirst]"} | ({"starting_after": cursor} if cursor else {})
        body = client.get("/rest/companies", params=params).json()
        seen += [c["name"] for c in body["data"]["companies"]]
        assert body["totalCount"] == 5
        pages += 1
        if not body["pageInfo"]["hasNextPage"]:
            break
        cursor = body["pageInfo"]["endCursor"]

    assert seen == sorted(names) and pages == 3
    before_last = client.get("/rest/companies", params={"limit": "2", "order_by": "name[AscNullsFirst]",
                                                         "ending_before": body["pageInfo"]["startCursor"]}).json()
    assert [c["name"] for c in before_last["data"]["companies"]] == ["Charlie", "Delta"]
    assert before_last["pageInfo"]["hasPreviousPage"] is True


def test_limit_defaults_to_60_is_capped_at_200_and_rejects_negative(client: httpx.Client) -> None:
    client.post("/rest/batch/companies", json=[{"name": f"Co {i}"} for i in range(200)])
    client.post("/rest/batch/companies", json=[{"name": f"Co {i}"} for i in range(200, 210)])

    assert len(client.get("/rest/companies").json()["data"]["companies"]) == 60
    capped = client.get("/rest/companies", params={"limit": "1000"}).json()
    assert len(capped["data"]["companies"]) == 200 and capped["pageInfo"]["hasNextPage"]
    invalid = client.get("/rest/companies", params={"limit": "-1"})
    assert invalid.status_code == 400 and messages(invalid) == ["limit '-1' is invalid. Should be an integer"]


def test_batch_accepts_200_and_rejects_201(client: httpx.Client) -> None:
    ok = client.post("/rest/batch/companies", json=[{"name": f"Bulk {i}"} for i in range(200)])
    too_many = client.post("/rest/batch/companies", json=[{"name": f"Too many {i}"} for i in range(201)])

    assert ok.status_code == 201 and len(ok.json()["data"]["createCompanies"]) == 200
    assert too_many.status_code == 400
    assert too_many.json() == {"statusCode": 400, "error": "BadRequestException",
                               "messages": ["Maximum number of records to upsert is 200."]}


def test_unique_email_covers_soft_deleted_rows_and_upsert_restores_them(client: httpx.Client) -> None:
    person = create(client, "people", {"name": {"firstName": "Del", "lastName": "Me"},
                                       "emails": {"primaryEmail": "del@me.example"}})
    client.delete(f"/rest/people/{person['id']}", params={"soft_delete": "true"})

    again = client.post("/rest/people", json={"emails": {"primaryEmail": "del@me.example"}})
    upserted = create(client, "people", {"name": {"firstName": "Del", "lastName": "Upserted"},
                                         "emails": {"primaryEmail": "del@me.example"}}, upsert="true")

    assert again.status_code == 400 and messages(again) == ["A duplicate entry was detected"]
    assert upserted["id"] == person["id"] and upserted["deletedAt"] is None
    assert upserted["name"] == {"firstName": "Del", "lastName": "Upserted"}
    assert client.get(f"/rest/people/{person['id']}").status_code == 200


def test_upsert_by_id_and_batch_upsert_by_domain(client: httpx.Client) -> None:
    acme = create(client, "companies", {"name": "Acme", "domainName": {"primaryLinkUrl": "https://acme.example"},
                                        "address": {"addressCity": "Springfield"}})

    by_id = create(client, "companies", {"id": acme["id"], "name": "Acme (by id)"}, upsert="true")
    batch = client.post("/rest/batch/companies", params={"upsert": "true"}, json=[
        {"name": "Acme (by domain)", "domainName": {"primaryLinkUrl": "https://acme.example"}},
        {"name": "Epsilon", "domainName": {"primaryLinkUrl": "https://epsilon.example"}},
    ]).json()["data"]["createCompanies"]

    assert by_id["id"] == acme["id"] and by_id["address"]["addressCity"] == "Springfield"
    assert [c["id"] == acme["id"] for c in batch] == [True, False]
    assert batch[0]["name"] == "Acme (by domain)"


def test_patch_merges_composite_subfields(client: httpx.Client) -> None:
    person = create(client, "people", {"emails": {"primaryEmail": "ada@x.example", "additionalEmails": ["a@b.c"]},
                                       "jobTitle": "CTO"})

    response = client.patch(f"/rest/people/{person['id']}", json={"emails": {"primaryEmail": "ada@y.example"}})

    updated = response.json()["data"]["updatePerson"]
    assert updated["emails"] == {"primaryEmail": "ada@y.example", "additionalEmails": ["a@b.c"]}
    assert updated["jobTitle"] == "CTO"


def test_soft_delete_hides_and_hard_delete_destroys_with_set_null_and_cascade(
    client: httpx.Client, fake: FakeTwenty
) -> None:
    company = create(client, "companies", {"name": "Doomed"})
    person = create(client, "people", {"companyId": company["id"]})
    note = create(client, "notes", {"title": "Kickoff", "bodyV2": {"markdown": "Hi"}})
    create(client, "noteTargets", {"noteId": note["id"], "targetCompanyId": company["id"]})

    soft = client.delete(f"/rest/companies/{company['id']}", params={"soft_delete": "true"})
    assert soft.json()["data"]["deleteCompany"]["deletedAt"] is not None
    assert client.get(f"/rest/companies/{company['id']}").status_code == 404
    assert client.get("/rest/companies").json()["data"]["companies"] == []
    deleted = client.get("/rest/companies", params={"filter": "deletedAt[is]:NOT_NULL"}).json()
    assert [c["id"] for c in deleted["data"]["companies"]] == [company["id"]]

    hard = client.delete(f"/rest/companies/{company['id']}")
    assert hard.json() == {"data": {"deleteCompany": {"id": company["id"]}}}
    assert fake.records("companies", include_deleted=True) == []
    assert fake.records("people")[0]["id"] == person["id"] and fake.records("people")[0]["companyId"] is None
    assert fake.records("noteTargets") == []


@pytest.mark.parametrize(("plural", "body", "message"), [
    ("opportunities", {"stage": "NOT_A_STAGE"},
     'Invalid value "NOT_A_STAGE" for field "stage". Valid values are: NEW, SCREENING, MEETING, PROPOSAL, CUSTOMER'),
    ("companies", {"notARealField": 1}, 'Object company doesn\'t have any "notARealField" field.'),
    ("companies", {"position": "abc"}, "Invalid position value 'abc' for field \"position\""),
    ("companies", {"annualRevenue": {"amountMicros": "lots"}},
     'Invalid number value NaN for field "annualRevenue.amountMicros"'),
    ("companies", {"name": 12345}, 'Invalid string value 12345 for text field "name"'),
    ("people", {"emails": "not-an-object"}, "Invalid object value 'not-an-object' for field \"emails\""),
    ("people", {"companyId": "not-a-uuid"}, "Invalid UUID value 'not-a-uuid' for field \"companyId\""),
    ("opportunities", {"closeDate": "next tuesday"},
         "Invalid value 'next tuesday' for date-time field \"closeDate\". Expected format: 'YYYY-MM-DDTHH:mm:ssZ'"),
])
def test_invalid_values_are_rejected_with_the_recorded_messages(
    client: httpx.Client, plural: str, body: dict[str, Any], message: str
) -> None:
    response = client.post(f"/rest/{plural}", json=body)

    assert response.status_code == 400 and messages(response) == [message]


def test_missing_relation_target_gives_the_raw_foreign_key_error(client: httpx.Client) -> None:
    response = client.post("/rest/people", json={"companyId": "74414d30-3a30-47fb-a130-768461a4e15b"})

    assert response.status_code == 400
    assert messages(response)[0].startswith(
        'insert or update on table "person" violates foreign key constraint "FK_')


def test_unknown_object_and_unknown_route(client: httpx.Client) -> None:
    unknown_object = client.get("/rest/notAnObject")
    unknown_route = client.get("/nowhere")

    assert messages(unknown_object) == ["object 'notAnObject' not found. eg: companies"]
    assert unknown_route.status_code == 404 and "FakeTwenty has no route" in messages(unknown_route)[0]


# ---- filters ---------------------------------------------------------------------------------


@pytest.fixture
def three_people(client: httpx.Client) -> None:
    client.post("/rest/batch/people", json=[
        {"name": {"firstName": "Ada", "lastName": "Lovelace"}, "emails": {"primaryEmail": "ada@acme.example"}},
        {"name": {"firstName": "Grace", "lastName": "Hopper"}, "emails": {"primaryEmail": "grace@navy.example"}},
        {"name": {"firstName": "Mary Ann", "lastName": "Evans"}, "emails": {"primaryEmail": "mae@books.example"}},
    ])


@pytest.mark.usefixtures("three_people")
@pytest.mark.parametrize(("filter_", "first_names"), [
    ("emails.primaryEmail[eq]:ada@acme.example", ["Ada"]),
    ('name.firstName[in]:[Ada,"Mary Ann"]', ["Ada", "Mary Ann"]),
    ("or(name.firstName[eq]:Ada,emails.primaryEmail[like]:%25navy%25)", ["Ada", "Grace"]),
    ("and(name.lastName[startsWith]:H,not(name.firstName[eq]:Ada))", ["Grace"]),
    ('name.firstName[ilike]:"%25ann"', ["Mary Ann"]),
    ("name.firstName[neq]:Ada,name.lastName[endsWith]:s", ["Mary Ann"]),
])
def test_filter_grammar(client: httpx.Client, filter_: str, first_names: list[str]) -> None:
    response = client.get(f"/rest/people?filter={filter_}&order_by=name.firstName")

    assert response.status_code == 200, response.text
    assert [p["name"]["firstName"] for p in response.json()["data"]["people"]] == first_names


def test_multi_select_values_are_checked_and_filtered_with_contains_any(client: httpx.Client) -> None:
    options = [{"value": value, "label": value.title()} for value in ("VIP", "PARTNER")]
    add_field(client, "company", type="MULTI_SELECT", name="tags", label="Tags", options=options)
    create(client, "companies", {"name": "Tagged", "tags": ["VIP", "PARTNER"]})
    create(client, "companies", {"name": "Untagged"})

    invalid = client.post("/rest/companies", json={"tags": ["VIP", "GOLD"]})
    found = client.get("/rest/companies", params={"filter": "tags[containsAny]:[PARTNER]"}).json()

    assert messages(invalid) == ['Invalid value "GOLD" for field "tags". Valid values are: VIP, PARTNER']
    assert [c["name"] for c in found["data"]["companies"]] == ["Tagged"]


def test_bad_comparator_is_rejected(client: httpx.Client) -> None:
    response = client.get("/rest/companies", params={"filter": "name[equals]:x"})

    assert messages(response) == ["'filter' invalid for 'name[equals]:x', comparator equals not in eq, neq, in, "
                                  "containsAny, is, gt, gte, lt, lte, startsWith, endsWith, like, ilike"]


# ---- metadata --------------------------------------------------------------------------------


def test_custom_unique_text_field_is_enforced(client: httpx.Client) -> None:
    field = add_field(client, "person", type="TEXT", name="legacyCrmId", label="Legacy CRM ID", isUnique=True)
    create(client, "people", {"legacyCrmId": "HS-1"})

    duplicate = client.post("/rest/people", json={"legacyCrmId": "HS-1"})
    blank_twice = [client.post("/rest/people", json={}).status_code for _ in range(2)]

    assert field.status_code == 201 and field.json()["isUnique"] is True and field.json()["name"] == "legacyCrmId"
    assert duplicate.status_code == 400 and messages(duplicate) == ["A duplicate entry was detected"]
    assert blank_twice == [201, 201]


def test_custom_select_field_validates_values_and_option_format(client: httpx.Client) -> None:
    options = [{"value": v, "label": v.title(), "color": "blue", "position": i}
               for i, v in enumerate(["WEB", "REFERRAL", "EVENT"])]
    created = add_field(client, "person", type="SELECT", name="leadSource", label="Lead source",
                        defaultValue="'WEB'", options=options)
    bad_option = add_field(client, "person", type="SELECT", name="badSelect", label="Bad",
                           options=[{"value": "has space", "label": "x", "color": "blue", "position": 0}])

    assert created.status_code == 201
    assert [o["value"] for o in created.json()["options"]] == ["WEB", "REFERRAL", "EVENT"]
    assert create(client, "people", {})["leadSource"] == "WEB"
    rejected = client.post("/rest/people", json={"leadSource": "TV"})
    assert messages(rejected) == ['Invalid value "TV" for field "leadSource". Valid values are: WEB, REFERRAL, EVENT']
    assert bad_option.status_code == 400 and bad_option.json()["error"] == "METADATA_VALIDATION_ERROR"
    error = bad_option.json()["errors"]["fieldMetadata"][0]["errors"][0]
    assert error["code"] == "INVALID_FIELD_INPUT"
    assert error["message"] == 'Value must be in UPPER_CASE and follow snake_case "has space"'


def test_field_creation_errors_match_the_recorded_bodies(client: httpx.Client) -> None:
    add_field(client, "person", type="TEXT", name="legacyCrmId", label="Legacy CRM ID")

    duplicate = add_field(client, "person", type="TEXT", name="legacyCrmId", label="Again")
    nameless = add_field(client, "person", type="TEXT", label="No name")

    assert duplicate.status_code == 400
    assert duplicate.json()["errors"]["fieldMetadata"][0]["errors"][0]["message"] == \
        'Name "legacyCrmId" is not available as it is already used by another field'
    assert nameless.json() == {"message": ["name should not be empty", "name must be a string"],
                               "error": "Bad Request", "statusCode": 400}


def test_relation_to_workspace_member_creates_an_fk_column(client: httpx.Client, fake: FakeTwenty) -> None:
    member_id = fake.add_workspace_member("owner@example.com", "Olive", "Owner")
    relation = add_field(client, "person", type="RELATION", name="recordOwner", label="Record owner",
                         relationCreationPayload={"type": "MANY_TO_ONE",
                                                  "targetObjectMetadataId": object_id(client, "workspaceMember"),
                                                  "targetFieldLabel": "Owned people", "targetFieldIcon": "IconUser"})

    person = create(client, "people", {"recordOwnerId": member_id})
    ghost = client.post("/rest/people", json={"recordOwnerId": "74414d30-3a30-47fb-a130-768461a4e15b"})

    assert relation.status_code == 201
    assert relation.json()["settings"] == {"onDelete": "SET_NULL", "relationType": "MANY_TO_ONE",
                                           "joinColumnName": "recordOwnerId"}
    assert person["recordOwnerId"] == member_id
    assert ghost.status_code == 400 and "violates foreign key constraint" in messages(ghost)[0]


def test_custom_object_is_served_at_its_plural(client: httpx.Client, fake: FakeTwenty) -> None:
    created = client.post("/rest/metadata/objects", json={
        "nameSingular": "legacyDeal", "namePlural": "legacyDeals", "labelSingular": "Legacy deal",
        "labelPlural": "Legacy deals", "icon": "IconBriefcase"})
    deal_object_id = created.json()["id"]
    client.post("/rest/metadata/fields", json={"objectMetadataId": deal_object_id, "type": "TEXT",
                                                "name": "externalCode", "label": "External code", "isNullable": False})
    company = create(client, "companies", {"name": "Acme"})

    deal = client.post("/rest/legacyDeals", json={"name": "Old deal #1", "externalCode": "D-1"})
    missing = client.post("/rest/legacyDeals", json={"name": "Old deal #2"})
    note = create(client, "notes", {"title": "About the deal"})
    target = create(client, "noteTargets", {"noteId": note["id"],
                                            "targetLegacyDealId": deal.json()["data"]["createLegacyDeal"]["id"]})

    assert created.status_code == 201 and created.json()["isCustom"] is True
    assert {"id", "name", "createdAt", "position"} <= {f["name"] for f in created.json()["fields"]}
    assert deal.status_code == 201 and deal.json()["data"]["createLegacyDeal"]["externalCode"] == "D-1"
    assert messages(missing) == ['null value in column "externalCode" of relation "_legacyDeal" '
                                 'violates not-null constraint']
    assert target["targetLegacyDealId"] == fake.records("legacyDeals")[0]["id"]
    assert company["name"] == "Acme"


def test_an_active_field_is_deleted_directly_as_on_twenty_2_21(client: httpx.Client, fake: FakeTwenty) -> None:
    field_id = add_field(client, "company", type="NUMBER", name="employeesCount", label="Employees").json()["id"]
    create(client, "companies", {"name": "Acme", "employeesCount": 12})

    active_delete = client.delete(f"/rest/metadata/fields/{field_id}")
    again = client.delete(f"/rest/metadata/fields/{field_id}")

    assert active_delete.status_code == 200  # examples-2.md section 5: no deactivation needed
    assert again.status_code == 404 and again.json()["code"] == "FIELD_METADATA_NOT_FOUND"
    assert "employeesCount" not in fake.records("companies")[0]
    assert client.get(f"/rest/metadata/fields/{field_id}").status_code == 404


# ---- rate limit, failures, auth, recording -----------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def throttled(clock: ManualClock, **limits: int) -> Iterator[tuple[FakeTwenty, httpx.Client]]:
    with serve_fake_twenty(api_key=API_KEY, clock=clock, **limits) as fake, \
            httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        yield fake, http


def test_rate_limit_answers_429_without_retry_after_and_refills() -> None:
    clock = ManualClock()
    with throttled(clock, rate_limit_per_minute=3) as (_, http):
        statuses = [http.get("/rest/companies").status_code for _ in range(4)]
        throttled_batch = http.post("/rest/batch/companies", json=[{"name": "A"}])
        metadata = http.get("/rest/metadata/objects")
        clock.now += 20  # 3 tokens per 60 s: one token back every 20 s
        recovered = [http.get("/rest/companies").status_code for _ in range(2)]

    assert statuses == [200, 200, 200, 429]
    assert throttled_batch.json() == {"statusCode": 429, "error": "HttpException",
                                      "messages": ["Limit reached (3 tokens per 60000 ms)"]}
    assert "retry-after" not in throttled_batch.headers
    assert metadata.status_code == 200
    assert recovered == [200, 429]


def test_short_bucket_limits_requests_per_second() -> None:
    clock = ManualClock()
    with throttled(clock, short_limit_per_second=2) as (fake, http):
        statuses = [http.get("/rest/people").status_code for _ in range(3)]
        clock.now += 0.5
        recovered = http.get("/rest/people").status_code
        limited = fake.requests[2]

    assert statuses == [200, 200, 429] and recovered == 200
    assert (limited.path, limited.status) == ("/rest/people", 429)


def test_fail_next_injects_errors_and_delays(client: httpx.Client, fake: FakeTwenty) -> None:
    fake.fail_next(503, times=2, path_contains="/rest/people")
    fake.fail_next(200, path_contains="/rest/notes", delay_seconds=0.5)

    companies = client.get("/rest/companies").status_code
    people = [client.get("/rest/people").status_code for _ in range(3)]
    with pytest.raises(httpx.ReadTimeout):
        client.get("/rest/notes", timeout=0.1)

    assert companies == 200 and people == [503, 503, 200]


def test_auth_errors(fake: FakeTwenty) -> None:
    wrong = httpx.get(f"{fake.base_url}/rest/companies", headers={"Authorization": "Bearer invalid.token.value"})
    missing = httpx.get(f"{fake.base_url}/rest/companies")

    assert wrong.status_code == 401
    assert wrong.json() == {"statusCode": 401, "messages": ["Token invalid."], "error": "UNAUTHENTICATED"}
    assert missing.status_code == 403
    assert missing.json() == {"statusCode": 403, "messages": ["Missing authentication token"],
                              "error": "FORBIDDEN_EXCEPTION"}
    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("GET", "/rest/companies", 401), ("GET", "/rest/companies", 403)]


def test_requests_are_recorded_with_query_and_body(client: httpx.Client, fake: FakeTwenty) -> None:
    client.post("/rest/people", params={"upsert": "true"}, json={"jobTitle": "CTO"})
    client.get("/rest/people", params={"limit": "-1"})

    first, second = fake.requests
    assert (first.method, first.path, first.query, first.json, first.status) == \
        ("POST", "/rest/people", {"upsert": "true"}, {"jobTitle": "CTO"}, 201)
    assert (second.query, second.status) == ({"limit": "-1"}, 400)


def test_workspace_members_start_with_the_admin(client: httpx.Client, fake: FakeTwenty) -> None:
    fake.add_workspace_member("sales@example.com", "Sam", "Sales")

    members = client.get("/rest/workspaceMembers").json()["data"]["workspaceMembers"]

    assert sorted(m["userEmail"] for m in members) == ["admin@example.com", "sales@example.com"]
    with pytest.raises(ValueError):
        fake.add_workspace_member("admin@example.com")


def test_an_upload_limit_can_be_set_for_a_server_that_has_one(client: httpx.Client, fake: FakeTwenty) -> None:
    # Twenty 2.21 has none (test_contract_uploads); a proxy or a rebuilt server may.
    attachment_object = next(o for o in client.get("/rest/metadata/objects").json()["data"]
                             if o["nameSingular"] == "attachment")
    file_field_id = next(f["id"] for f in attachment_object["fields"] if f["name"] == "file")
    operations = ('{"query":"mutation($file:Upload!,$fid:String!){uploadFilesFieldFile(file:$file,'
                  'fieldMetadataId:$fid){id path size createdAt url}}","variables":{"file":null,"fid":"'
                  + file_field_id + '"}}')
    form = {"operations": operations, "map": '{"0":["variables.file"]}'}
    fake.max_upload_bytes = 4

    fits = client.post("/metadata", data=form, files={"0": ("small.txt", b"1234")})
    too_big = client.post("/metadata", data=form, files={"0": ("big.txt", b"12345")})
    fake.reset()

    assert fits.json()["data"]["uploadFilesFieldFile"]["size"] == 4
    assert too_big.status_code == 413 and "errors" in too_big.json()
    assert fake.max_upload_bytes is None  # reset() restores the configured limit


def test_snapshot_and_reset(client: httpx.Client, fake: FakeTwenty) -> None:
    before = fake.snapshot()
    rejected = client.post("/rest/batch/companies", json=[{"name": "Ok"}, {"name": 1}])
    unchanged = fake.snapshot()
    create(client, "companies", {"name": "Kept"})

    assert rejected.status_code == 400 and unchanged == before
    assert len(fake.snapshot()["records"]["companies"]) == 1
    fake.reset()
    assert fake.records("companies") == [] and fake.requests == []
    assert [m["userEmail"] for m in fake.records("workspaceMembers")] == ["admin@example.com"]
