"""Mapping validation refuses, before anything runs, every name Twenty would refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.engine.mapping import MappingError, load_mapping

ACTIONSTEP = MAPPINGS_DIR / "actionstep__twenty.yaml"


def _entry(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(obj for obj in raw["objects"] if obj["name"] == name)


def _rename_field(object_name: str, old: str, new: str):
    def change(raw: dict[str, Any]) -> None:
        fields = _entry(raw, object_name)["fields"]
        fields[new] = fields.pop(old)
    return change


def _rename_relation(object_name: str, old: str, new: str):
    def change(raw: dict[str, Any]) -> None:
        relations = _entry(raw, object_name)["relations"]
        relations[new] = relations.pop(old)
    return change


def _rename_custom_object(old: str, new: str):
    def change(raw: dict[str, Any]) -> None:
        raw["custom_objects"][new] = raw["custom_objects"].pop(old)
        for obj in raw["objects"]:
            if obj["twenty_object"] == old:
                obj["twenty_object"] = new
    return change


def _written(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(ACTIONSTEP.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / ACTIONSTEP.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_the_bundled_actionstep_mapping_names_the_participants_role_validly() -> None:
    mapping = load_mapping(ACTIONSTEP)
    assert "participantRole" in mapping.object("matter_participants").fields


@pytest.mark.parametrize(("change", "problem"), [
    (_rename_field("matter_participants", "participantRole", "role"),
     "object 'matter_participants' (Twenty matterParticipant), custom field 'role': the name 'role' is reserved "
     "by Twenty"),
    (_rename_field("opportunities", "matterType", "type"), "custom field 'type': the name 'type' is reserved"),
    (_rename_field("opportunities", "matterStatus", "stage"),
     "object 'opportunities' (Twenty opportunity), custom field 'stage': the name 'stage' is already a field of "
     "Twenty's opportunity"),
    (_rename_field("opportunities", "matterReference", "matter_reference"),
     "custom field 'matter_reference': the name 'matter_reference' is not a camelCase name"),
    (_rename_field("opportunities", "matterReference", "m" * 64), "is longer than Twenty's 63 characters"),
    (_rename_relation("matter_participants", "personId", "userId"),
     "relation field 'user': the name 'user' is reserved"),
    (_rename_custom_object("matterRecord", "event"), "custom object 'event': the name 'event' is reserved"),
])
def test_a_name_twenty_refuses_is_refused_naming_file_object_and_field(tmp_path: Path, change, problem: str) -> None:
    with pytest.raises(MappingError) as refused:
        load_mapping(_written(tmp_path, change))
    assert str(refused.value).startswith("actionstep__twenty.yaml: ")
    assert problem in str(refused.value)
