"""Mapping-declared custom objects on small in-memory frames: validation with clear messages,
the catalogue (a custom object loads after what it relates to), its staged records, and the
schema it needs before any record moves (the object, its custom fields, its RELATION fields)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.schema_needs import schema_spec
from migration_pipeline.engine.staging import KEY, Stager, import_order
from migration_pipeline.factories.assets import load_dependencies

BASE: dict[str, Any] = {
    "version": 1,
    "source": {"slug": "t", "label": "T", "kind": "files", "objects": {
        name: {"file": f"{name}.csv", "key": "id"} for name in ("matters", "contacts", "links")}},
    "defaults": {"external_key_field": "tId", "external_key_label": "T id"},
    "custom_objects": {"matterLink": {"plural": "matterLinks", "label_singular": "Matter link",
                                      "label_plural": "Matter links", "icon": "IconUsers"}},
    "objects": [
        {"name": "matters", "twenty_object": "opportunity", "from": "matters", "key": {"from": "id"},
         "fields": {"name": {"from": "name"}}},
        {"name": "people", "twenty_object": "person", "from": "contacts", "key": {"from": "id"},
         "fields": {"name.firstName": {"from": "name"}}},
        {"name": "links", "twenty_object": "matterLink", "from": "links", "key": {"from": "id"},
         "fields": {"name": {"from": "role"},
                    "linkRole": {"from": "role", "transform": "select", "custom": {"type": "SELECT", "label": "Role"}}},
         "relations": {
             "opportunityId": {"object": "matters", "on_unresolved": "hold", "match": [{"from": "matter", "to": "id"}]},
             "personId": {"object": "people", "match": [{"from": "contact", "to": "id"}]},
         }},
    ],
}
EXTRACTS = {
    "matters": pd.DataFrame([{"id": "m1", "name": "Sale"}, {"id": "m2", "name": "Purchase"}], dtype=object),
    "contacts": pd.DataFrame([{"id": "c1", "name": "Ada"}, {"id": "c2", "name": "Bo"}], dtype=object),
    "links": pd.DataFrame([
        {"id": "l1", "matter": "m1", "contact": "c1", "role": "Client"},
        {"id": "l2", "matter": "m1", "contact": "c2", "role": "Witness"},
        {"id": "l3", "matter": "m2", "contact": "c1", "role": "Witness"},
        {"id": "l4", "matter": "m9", "contact": "c2", "role": "Client"},  # a matter that is not migrated
    ], dtype=object),
}


def _mapping(change=None) -> Mapping:
    raw = copy.deepcopy(BASE)
    if change:
        change(raw)
    return Mapping.model_validate(raw)


def _links(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["objects"][2]


def test_a_custom_object_loads_after_the_objects_its_relations_point_at() -> None:
    mapping = _mapping()
    link = mapping.catalogue["matterLink"]
    assert (link.plural, link.label, link.custom) == ("matterLinks", "Matter links", True)
    assert link.order > max(mapping.catalogue[o].order for o in ("opportunity", "person"))
    assert import_order(mapping.objects, mapping.catalogue) == ["person", "opportunity", "matterLink"]
    assert load_dependencies(mapping, "matterLink") == {"opportunity", "person"}


def test_custom_objects_depending_on_each_other_are_ordered_by_their_relations() -> None:
    def chain(raw: dict[str, Any]) -> None:
        raw["custom_objects"]["linkNote"] = {"plural": "linkNotes", "label_singular": "Link note",
                                             "label_plural": "Link notes"}
        raw["objects"].append({"name": "link_notes", "twenty_object": "linkNote", "from": "links",
                               "key": {"from": "id"}, "relations": {
                                   "matterLinkId": {"object": "links", "same_row": True}}})

    mapping = _mapping(chain)
    assert import_order(mapping.objects, mapping.catalogue)[-2:] == ["matterLink", "linkNote"]


def test_records_of_a_custom_object_hold_their_relations_as_source_keys() -> None:
    staged = Stager(_mapping(), EXTRACTS, {}).stage("matterLink")
    assert staged.plural == "matterLinks"
    records = staged.records.set_index(KEY)
    assert records.loc["links:l2", ["opportunityId", "personId", "linkRole", "tId"]].tolist() == [
        "matters:m1", "people:c2", "WITNESS", "links:l2"]
    assert staged.relations == {"opportunityId": "matters", "personId": "people"}
    (held,) = staged.quarantined.to_dict("records")
    assert held[KEY] == "links:l4" and held["reason"].startswith("opportunityId: matter='m9' matches no matters rows")


def test_the_schema_creates_the_object_then_its_fields_and_relations() -> None:
    mapping = _mapping()
    stager = Stager(mapping, EXTRACTS, {})
    spec = schema_spec([stager.stage(o) for o in stager.staged_objects()], mapping)
    (created,) = spec.objects
    assert (created.name_singular, created.name_plural, created.label_singular, created.icon) == (
        "matterLink", "matterLinks", "Matter link", "IconUsers")
    fields = {(f.object, f.name): f for f in spec.fields}
    assert fields[("matterLink", "tId")].is_unique
    assert [o.value for o in fields[("matterLink", "linkRole")].options] == ["CLIENT", "WITNESS"]
    relations = {f.name: (f.relation_target, f.label, f.inverse_label)
                 for f in spec.fields if f.object == "matterLink" and f.type == "RELATION"}
    assert relations == {"opportunity": ("opportunity", "Opportunity", "Matter links"),
                         "person": ("person", "Person", "Matter links")}
    assert not [f for f in spec.fields if f.object != "matterLink" and f.type == "RELATION"]


def test_two_relations_to_one_object_get_distinct_inverse_fields() -> None:
    def second_person(raw: dict[str, Any]) -> None:
        _links(raw)["relations"]["referrerId"] = {"object": "people", "match": [{"from": "contact", "to": "id"}]}

    mapping = _mapping(second_person)
    stager = Stager(mapping, EXTRACTS, {})
    spec = schema_spec([stager.stage("matterLink")], mapping)
    inverse = {f.name: f.inverse_label for f in spec.fields if f.type == "RELATION"}
    assert inverse == {"opportunity": "Matter links", "person": "Matter links (Person)",
                       "referrer": "Matter links (Referrer)"}


def test_notes_can_target_a_custom_object() -> None:
    def notes(raw: dict[str, Any]) -> None:
        raw["objects"].append({"name": "link_notes", "twenty_object": "note", "from": "links", "key": {"from": "id"},
                               "fields": {"title": {"from": "role"}},
                               "targets": {"matterLink": {"object": "links", "same_row": True}}})

    mapping = _mapping(notes)
    staged = Stager(mapping, EXTRACTS, {}).stage("noteTarget")
    assert staged.relations == {"noteId": "link_notes", "targetMatterLinkId": "links"}
    assert staged.records["targetMatterLinkId"].tolist() == ["links:l1", "links:l2", "links:l3"]
    assert load_dependencies(mapping, "noteTarget") == {"note", "matterLink"}


def _set(path: str, value: Any):
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return change


@pytest.mark.parametrize(("change", "problem"), [
    (_set("objects/2/relations/personId/object", "peeple"), "links.personId relates to unknown object 'peeple'"),
    (_set("objects/2/twenty_object", "matterLnk"), "object 'links': unknown Twenty object 'matterLnk'"),
    (_set("custom_objects/spareLink", {"plural": "spareLinks", "label_singular": "S", "label_plural": "Ss"}),
     "custom object 'spareLink' is declared but no object has `twenty_object: spareLink`"),
    (_set("custom_objects/matterLink/plural", "people"), "custom object 'matterLink': the name 'people' is taken"),
    (_set("custom_objects/matterLink/plural", "matter links"), "'matter links' is not a camelCase name"),
    (_set("objects/2/fields/note", {"from": "role"}), "fields ['note'] need `custom:`"),
    (_set("objects/2/relations/person", {"object": "people", "match": [{"from": "contact", "to": "id"}]}),
     "relation columns of a custom object are named <field>Id"),
    (_set("objects/0/relations", {"linkId": {"object": "links", "same_row": True}}),
     "declare the relation on the custom object's side"),
    (_set("objects/2/targets", {"person": {"object": "people", "same_row": True}}), "`targets:` are for notes"),
])
def test_mistakes_in_custom_objects_are_refused_clearly(change, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        _mapping(change)


def test_custom_objects_relating_in_a_cycle_are_refused() -> None:
    def cycle(raw: dict[str, Any]) -> None:
        raw["custom_objects"]["linkNote"] = {"plural": "linkNotes", "label_singular": "N", "label_plural": "Ns"}
        raw["objects"].append({"name": "link_notes", "twenty_object": "linkNote", "from": "links", "key": {"from": "id"},
                               "relations": {"matterLinkId": {"object": "links", "same_row": True}}})
        _links(raw)["relations"]["linkNoteId"] = {"object": "link_notes", "same_row": True}

    with pytest.raises(ValidationError, match="in a cycle: matterLink -> linkNote -> matterLink"):
        _mapping(cycle)
