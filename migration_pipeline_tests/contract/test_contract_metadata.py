"""Metadata API behaviour both servers must agree on (examples-2.md sections 4, 5 and 12).

Probe names start with `twenty.prefix`; whatever a test creates is tracked and deleted. No test
deletes a MORPH_RELATION field on the real server: that destroys every target of a workspace.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from migration_pipeline.core.twenty_names import name_from_label
from migration_pipeline_tests.contract.conftest import TwentyUnderTest

RESERVED = 'This name is reserved. Use a different name or the system will add "Custom" suffix.'


def _field(twenty: TwentyUnderTest, object_name: str, **body: Any) -> httpx.Response:
    response = twenty.http.post("/rest/metadata/fields", json={
        "objectMetadataId": twenty.object_id(object_name), "isNullable": True, **body})
    if response.status_code == 201:
        twenty.track_field(response.json()["id"])
    return response


def _field_errors(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body["error"] == "METADATA_VALIDATION_ERROR", body
    return [e for entity in body["errors"]["fieldMetadata"] for e in entity["errors"]]


def _fields(twenty: TwentyUnderTest, object_name: str) -> dict[str, dict[str, Any]]:
    objects = twenty.http.get("/rest/metadata/objects").json()["data"]
    return {f["name"]: f for f in next(o for o in objects if o["nameSingular"] == object_name)["fields"]}


@pytest.mark.parametrize("options", [None, [], "absent"])
@pytest.mark.parametrize("field_type", ["SELECT", "MULTI_SELECT"])
def test_a_select_without_options_is_refused(twenty: TwentyUnderTest, field_type: str, options: Any) -> None:
    body: dict[str, Any] = {"type": field_type, "name": f"{twenty.prefix}Sel", "label": f"{twenty.prefix} sel"}
    if options != "absent":
        body["options"] = options

    response = _field(twenty, "person", **body)

    assert response.status_code == 400
    assert response.json()["message"] == "Multiple validation errors occurred while creating fields"
    assert _field_errors(response) == [{"code": "INVALID_FIELD_INPUT", "message": "Options are required for enum fields",
                                        "userFriendlyMessage": "Options are required for enum fields", "value": []}]


@pytest.mark.parametrize("name", ["role", "type", "search", "currency"])
def test_a_reserved_field_name_is_refused(twenty: TwentyUnderTest, name: str) -> None:
    response = _field(twenty, "person", type="TEXT", name=name, label=f"{twenty.prefix} {name}")

    assert response.status_code == 400
    assert [(e["code"], e["message"]) for e in _field_errors(response)] == [("INVALID_FIELD_INPUT", RESERVED)]


def test_a_malformed_field_name_is_refused(twenty: TwentyUnderTest) -> None:
    response = _field(twenty, "person", type="TEXT", name=f"{twenty.prefix}_bad", label=f"{twenty.prefix} bad")

    assert response.status_code == 400
    assert [e["message"] for e in _field_errors(response)] == [
        "Name is not valid: it must start with lowercase letter and contain only alphanumeric letters"]


def test_a_reserved_object_name_is_refused(twenty: TwentyUnderTest) -> None:
    response = twenty.http.post("/rest/metadata/objects", json={
        "nameSingular": "event", "namePlural": f"{twenty.prefix}Events",
        "labelSingular": f"{twenty.prefix} event", "labelPlural": f"{twenty.prefix} events"})
    if response.status_code == 201:
        twenty.track_object(response.json()["id"])

    assert response.status_code == 400
    body = response.json()
    messages = [e["message"] for entity in body["errors"]["objectMetadata"] for e in entity["errors"]]
    assert RESERVED in messages


def test_the_inverse_name_is_the_camel_case_of_the_target_field_label(twenty: TwentyUnderTest) -> None:
    label = f"{twenty.prefix} owned people"
    response = _field(twenty, "person", type="RELATION", name=f"{twenty.prefix}Owner", label=f"{twenty.prefix} owner",
                      relationCreationPayload={"type": "MANY_TO_ONE", "targetFieldLabel": label,
                                               "targetObjectMetadataId": twenty.object_id("workspaceMember"),
                                               "targetFieldIcon": "IconUsers"})
    assert response.status_code == 201, response.text

    inverse = _fields(twenty, "workspaceMember")[name_from_label(label)]
    assert inverse["label"] == label and inverse["type"] == "RELATION"

    # The same label again: the inverse name is taken, and Twenty does not suffix it itself.
    clash = _field(twenty, "person", type="RELATION", name=f"{twenty.prefix}Owner2", label=f"{twenty.prefix} owner 2",
                   relationCreationPayload={"type": "MANY_TO_ONE", "targetFieldLabel": label,
                                            "targetObjectMetadataId": twenty.object_id("workspaceMember"),
                                            "targetFieldIcon": "IconUsers"})
    assert clash.status_code == 400
    assert [(e["code"], e["message"]) for e in _field_errors(clash)] == [
        ("NOT_AVAILABLE", f'Name "{name_from_label(label)}" is not available as it is already used by another field')]


def test_an_inverse_named_like_a_standard_field_is_refused(twenty: TwentyUnderTest) -> None:
    response = _field(twenty, "person", type="RELATION", name=f"{twenty.prefix}Owner", label=f"{twenty.prefix} owner",
                      relationCreationPayload={"type": "MANY_TO_ONE", "targetFieldLabel": "Assigned tasks",
                                               "targetObjectMetadataId": twenty.object_id("workspaceMember"),
                                               "targetFieldIcon": "IconUsers"})

    assert response.status_code == 400
    assert [e["code"] for e in _field_errors(response)] == ["NOT_AVAILABLE"]


def test_options_are_edited_by_sending_the_full_list_with_ids(twenty: TwentyUnderTest) -> None:
    options = [{"value": "BRONZE", "label": "Bronze", "color": "orange", "position": 0}]
    created = _field(twenty, "person", type="SELECT", name=f"{twenty.prefix}Tier", label=f"{twenty.prefix} tier",
                     options=options)
    assert created.status_code == 201, created.text
    field = created.json()
    bronze_id = field["options"][0]["id"]

    patched = twenty.http.patch(f"/rest/metadata/fields/{field['id']}", json={"options": [
        *field["options"], {"value": "GOLD", "label": "Gold", "color": "yellow", "position": 1}]})

    assert patched.status_code == 200, patched.text
    after = {o["value"]: o["id"] for o in patched.json()["options"]}
    assert after["BRONZE"] == bronze_id and "GOLD" in after


def test_an_active_custom_field_is_deleted_directly_then_is_gone(twenty: TwentyUnderTest) -> None:
    created = _field(twenty, "person", type="TEXT", name=f"{twenty.prefix}Note", label=f"{twenty.prefix} note")
    assert created.status_code == 201, created.text
    field_id = created.json()["id"]

    deleted = twenty.http.delete(f"/rest/metadata/fields/{field_id}")
    again = twenty.http.delete(f"/rest/metadata/fields/{field_id}")

    assert deleted.status_code == 200
    assert again.status_code == 404 and again.json()["code"] == "FIELD_METADATA_NOT_FOUND"
    assert f"{twenty.prefix}Note" not in _fields(twenty, "person")


def test_a_custom_object_adds_morph_targets_that_go_with_the_object(twenty: TwentyUnderTest) -> None:
    created = twenty.http.post("/rest/metadata/objects", json={
        "nameSingular": f"{twenty.prefix}Thing", "namePlural": f"{twenty.prefix}Things",
        "labelSingular": f"{twenty.prefix} thing", "labelPlural": f"{twenty.prefix} things", "icon": "IconBox"})
    assert created.status_code == 201, created.text
    object_id = twenty.track_object(created.json()["id"])
    target = f"target{twenty.prefix[:1].upper()}{twenty.prefix[1:]}Thing"
    standard = {"targetPerson", "targetCompany", "targetOpportunity"}

    note_targets = _fields(twenty, "noteTarget")
    assert note_targets[target]["type"] == "MORPH_RELATION"
    assert standard <= {name for name, f in note_targets.items() if f["type"] == "MORPH_RELATION"}

    assert twenty.http.delete(f"/rest/metadata/objects/{object_id}").status_code == 200
    after = _fields(twenty, "noteTarget")
    assert target not in after and standard <= set(after)  # the standard targets stay


def test_deleting_one_morph_target_destroys_every_target(twenty: TwentyUnderTest) -> None:
    if twenty.fake is None:
        pytest.skip("destructive on a real workspace (examples-2.md section 12 recorded it); the fake reproduces it")
    target = _fields(twenty, "noteTarget")["targetPerson"]

    assert twenty.http.delete(f"/rest/metadata/fields/{target['id']}").status_code == 200

    assert not [name for name in _fields(twenty, "noteTarget") if name.startswith("target")]
