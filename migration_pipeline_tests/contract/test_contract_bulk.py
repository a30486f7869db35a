"""Many-record writes by filter, as recorded on Twenty 2.21 (examples-2.md sections 2 and 3).

DELETE by filter destroys unless `soft_delete=true`, hits soft-deleted rows too and has no count
cap (the limit is the URL: about 16 KB); PATCH by filter also hits soft-deleted rows, at most 200;
`deletedAt` itself is writable; restore by filter takes any number of rows.
"""

from __future__ import annotations

import uuid

from migration_pipeline_tests.contract.conftest import TwentyUnderTest, created
from migration_pipeline_tests.contract.probing import batch_create, companies, data_of, listed, messages

BOTH_STATES = "or(deletedAt[is]:NULL,deletedAt[is]:NOT_NULL)"


def id_in(*ids: str) -> str:
    return f"id[in]:[{','.join(ids)}]"


def states(twenty: TwentyUnderTest, ids: dict[str, str]) -> dict[str, str | None]:
    """deletedAt by short name of the companies still in Twenty (soft-deleted or not)."""
    rows = data_of(listed(twenty, "companies", f"and({id_in(*ids.values())},{BOTH_STATES})"))
    names = {record_id: name for name, record_id in ids.items()}
    return {names[row["id"]]: row["deletedAt"] for row in rows}


def test_delete_by_filter_destroys_unless_soft_delete_and_hits_soft_deleted_rows(twenty: TwentyUnderTest) -> None:
    ids = companies(twenty, "Del1", "Del2", "Del3")

    soft = twenty.http.delete("/rest/companies", params={"filter": id_in(ids["Del1"], ids["Del2"]),
                                                         "soft_delete": "true"})
    assert soft.status_code == 200
    assert {c["name"] for c in data_of(soft)} == {f"{twenty.prefix} Del1", f"{twenty.prefix} Del2"}
    assert all(c["deletedAt"] for c in data_of(soft))
    first_deleted_at = states(twenty, ids)["Del2"]
    again = twenty.http.delete("/rest/companies", params={"filter": id_in(ids["Del2"]), "soft_delete": "true"})
    assert [c["id"] for c in data_of(again)] == [ids["Del2"]]
    assert data_of(again)[0]["deletedAt"] > first_deleted_at  # a second soft delete re-stamps deletedAt
    by_id = twenty.http.delete(f"/rest/companies/{ids['Del2']}", params={"soft_delete": "true"})
    assert data_of(by_id)["deletedAt"] > data_of(again)[0]["deletedAt"]  # so does the by-id route

    destroyed = twenty.http.delete("/rest/companies", params={"filter": id_in(ids["Del1"], ids["Del3"])})
    assert sorted(data_of(destroyed), key=lambda c: c["id"]) == sorted(
        [{"id": ids["Del1"]}, {"id": ids["Del3"]}], key=lambda c: c["id"])  # ids only, soft-deleted one too
    assert list(states(twenty, ids)) == ["Del2"]
    explicit = twenty.http.delete("/rest/companies", params={"filter": id_in(ids["Del2"]), "soft_delete": "false"})
    assert data_of(explicit) == [{"id": ids["Del2"]}] and states(twenty, ids) == {}

    nothing = twenty.http.delete("/rest/companies", params={"filter": id_in(ids["Del2"])})
    not_a_uuid = twenty.http.delete("/rest/companies", params={"filter": "id[in]:[not-a-uuid]"})
    assert (nothing.status_code, data_of(nothing)) == (200, [])
    assert not_a_uuid.status_code == 400
    assert messages(not_a_uuid) == ["Invalid UUID value 'not-a-uuid' for field \"id\""]


def test_delete_without_a_filter_is_refused(twenty: TwentyUnderTest) -> None:
    # Probed on a throw-away custom object, as recorded: a missing guard must never hit real records.
    p = twenty.prefix
    thing = twenty.http.post("/rest/metadata/objects", json={
        "nameSingular": f"{p}Thing", "namePlural": f"{p}Things", "labelSingular": f"{p} thing",
        "labelPlural": f"{p} things", "icon": "IconBox"})
    assert thing.status_code == 201, thing.text
    twenty.track_object(thing.json()["id"])
    route = f"/rest/{p}Things"
    created(twenty.http.post(route, json={"name": "kept"}))

    soft = twenty.http.delete(route, params={"soft_delete": "true"})
    destroy = twenty.http.delete(route)
    empty = twenty.http.delete(f"{route}?filter=")

    assert (soft.status_code, destroy.status_code, empty.status_code) == (400, 400, 400)
    guard = "Please provide at least one filter to prevent accidental deletion of all records."
    assert messages(soft) == [f"Filters are mandatory for bulk delete operations. {guard}"]
    assert messages(destroy) == [f"Filters are mandatory for bulk destroy operations. {guard}"]
    assert messages(empty) == ["'filter' invalid for 'and()'. eg: price[gte]:10"]
    assert len(data_of(twenty.http.get(route))) == 1


def test_the_limit_of_a_delete_by_ids_is_the_url_length_not_a_count(twenty: TwentyUnderTest) -> None:
    def soft_delete_unknown(count: int) -> tuple[int, bytes]:
        ids = [str(uuid.uuid4()) for _ in range(count)]
        response = twenty.http.delete("/rest/companies", params={"filter": id_in(*ids), "soft_delete": "true"})
        return response.status_code, response.content

    assert soft_delete_unknown(300) == (200, b'{"data":{"deleteCompanies":[]}}')
    assert soft_delete_unknown(500) == (431, b"")  # request line + headers over Node's 16 KB


def test_250_rows_soft_delete_restore_and_destroy_in_one_request_but_update_stops_at_200(
    twenty: TwentyUnderTest,
) -> None:
    ids = [c["id"] for c in batch_create(twenty, "companies", [{"name": f"{twenty.prefix} B{i}"} for i in range(200)])]
    ids += [c["id"] for c in batch_create(twenty, "companies", [{"name": f"{twenty.prefix} B{i}"}
                                                                for i in range(200, 250)])]

    soft = twenty.http.delete("/rest/companies", params={"filter": id_in(*ids), "soft_delete": "true"})
    restored = twenty.http.patch("/rest/restore/companies", params={"filter": id_in(*ids)})
    too_many = twenty.http.patch("/rest/companies", params={"filter": id_in(*ids[:201])},
                                 json={"name": f"{twenty.prefix} too many"})
    two_hundred = twenty.http.patch("/rest/companies", params={"filter": id_in(*ids[:200])},
                                    json={"name": f"{twenty.prefix} bulk 200"})
    destroyed = twenty.http.delete("/rest/companies", params={"filter": id_in(*ids)})

    assert (soft.status_code, len(data_of(soft))) == (200, 250)
    assert (restored.status_code, len(data_of(restored))) == (200, 250)
    assert too_many.status_code == 400
    assert too_many.json() == {"statusCode": 400, "error": "Error", "code": "TOO_MANY_RECORDS_TO_UPDATE",
                               "messages": ["Cannot update more than 200 records at once"]}
    assert (two_hundred.status_code, len(data_of(two_hundred))) == (200, 200)
    assert (destroyed.status_code, len(data_of(destroyed))) == (200, 250)


def test_update_by_filter_returns_full_records_and_refuses_unknown_fields(twenty: TwentyUnderTest) -> None:
    ids = companies(twenty, "Upd1", "Upd2")

    updated = twenty.http.patch("/rest/companies", params={"filter": id_in(*ids.values())},
                                json={"name": f"{twenty.prefix} renamed"})
    nothing = twenty.http.patch("/rest/companies", params={"filter": f'name[eq]:"{twenty.prefix} nobody"'},
                                json={"name": "x"})
    unknown = twenty.http.patch("/rest/companies", params={"filter": id_in(*ids.values())},
                                json={"probeNoSuchField": "x"})

    assert updated.status_code == 200 and "updateCompanies" in updated.json()["data"]
    assert {c["name"] for c in data_of(updated)} == {f"{twenty.prefix} renamed"}
    assert {"id", "createdAt", "updatedAt", "deletedAt"} <= set(data_of(updated)[0])
    assert (nothing.status_code, data_of(nothing)) == (200, [])
    assert unknown.status_code == 400
    assert messages(unknown) == ["Object company doesn't have any \"probeNoSuchField\" field."]


def test_an_update_by_filter_that_would_duplicate_a_unique_value_changes_nothing(twenty: TwentyUnderTest) -> None:
    ids = companies(twenty, "Dom1", "Dom2")
    domain = {"domainName": {"primaryLinkUrl": f"https://{twenty.prefix}.example"}}

    response = twenty.http.patch("/rest/companies", params={"filter": id_in(*ids.values())}, json=domain)

    assert response.status_code == 400 and messages(response) == ["A duplicate entry was detected"]
    rows = data_of(listed(twenty, "companies", id_in(*ids.values())))
    assert {row["domainName"]["primaryLinkUrl"] for row in rows} == {""}


def test_update_by_filter_also_changes_soft_deleted_rows(twenty: TwentyUnderTest) -> None:
    ids = companies(twenty, "Hidden", "Shown")
    twenty.http.delete(f"/rest/companies/{ids['Hidden']}", params={"soft_delete": "true"})
    hidden = f'name[eq]:"{twenty.prefix} Hidden"'

    by_id = twenty.http.patch("/rest/companies", params={"filter": id_in(ids["Hidden"])},
                              json={"address": {"addressCity": "City7"}})
    by_name = twenty.http.patch("/rest/companies", params={"filter": hidden}, json={"address": {"addressCity": "City8"}})
    left_alone = twenty.http.patch("/rest/companies", params={"filter": f"and(deletedAt[is]:NULL,{hidden})"},
                                   json={"address": {"addressCity": "City9"}})

    assert [(c["id"], c["address"]["addressCity"], bool(c["deletedAt"])) for c in data_of(by_id)] == \
        [(ids["Hidden"], "City7", True)]
    assert [c["address"]["addressCity"] for c in data_of(by_name)] == ["City8"]
    assert data_of(left_alone) == []  # add deletedAt[is]:NULL to spare soft-deleted rows


def test_deleted_at_is_writable_by_id_and_by_filter_and_restore_takes_live_rows_too(twenty: TwentyUnderTest) -> None:
    ids = companies(twenty, "Live", "Back", "Bulk")

    soft = twenty.http.patch(f"/rest/companies/{ids['Live']}", json={"deletedAt": "2024-01-01T00:00:00Z"})
    assert soft.status_code == 200 and data_of(soft)["deletedAt"] == "2024-01-01T00:00:00.000Z"
    assert twenty.http.get(f"/rest/companies/{ids['Live']}").status_code == 404
    on_deleted = twenty.http.patch(f"/rest/companies/{ids['Live']}", json={"deletedAt": "2023-01-01T00:00:00Z"})
    assert data_of(on_deleted)["deletedAt"] == "2023-01-01T00:00:00.000Z"  # PATCH by id reaches soft-deleted rows
    undeleted = twenty.http.patch(f"/rest/companies/{ids['Live']}", json={"deletedAt": None})
    assert data_of(undeleted)["deletedAt"] is None
    assert twenty.http.get(f"/rest/companies/{ids['Live']}").status_code == 200

    bulk = twenty.http.patch("/rest/companies", params={"filter": id_in(ids["Bulk"], ids["Back"])},
                             json={"deletedAt": "2023-06-15T12:00:00Z"})
    assert {c["deletedAt"] for c in data_of(bulk)} == {"2023-06-15T12:00:00.000Z"}
    assert states(twenty, ids) == {"Live": None, "Back": "2023-06-15T12:00:00.000Z",
                                   "Bulk": "2023-06-15T12:00:00.000Z"}

    restored = twenty.http.patch("/rest/restore/companies", params={"filter": id_in(*ids.values())})
    nothing = twenty.http.patch("/rest/restore/companies", params={"filter": id_in(str(uuid.uuid4()))})
    assert sorted(c["id"] for c in data_of(restored)) == sorted(ids.values())  # the live one is returned too
    assert {c["deletedAt"] for c in data_of(restored)} == {None}
    assert (nothing.status_code, data_of(nothing)) == (200, [])


def test_restore_works_by_filter_only_the_by_id_route_is_broken_on_2_21(twenty: TwentyUnderTest) -> None:
    ids = companies(twenty, "Restorable")
    twenty.http.delete(f"/rest/companies/{ids['Restorable']}", params={"soft_delete": "true"})

    by_path = twenty.http.patch(f"/rest/restore/companies/{ids['Restorable']}")
    by_filter = twenty.http.patch("/rest/restore/companies", params={"filter": f"id[eq]:{ids['Restorable']}"})

    assert by_path.status_code == 400
    assert messages(by_path) == [f"Query path '/rest/restore/companies/{ids['Restorable']}' invalid. Valid "
                                 "examples: /rest/companies/id or /rest/companies or /rest/batch/companies"]
    assert [c["deletedAt"] for c in data_of(by_filter)] == [None]
    assert twenty.http.get(f"/rest/companies/{ids['Restorable']}").status_code == 200
