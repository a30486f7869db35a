"""Metadata REST operations of the fake Twenty server: custom fields and custom objects."""

from __future__ import annotations

import uuid
from typing import Any

from migration_pipeline.core.twenty_names import MAX_NAME_LENGTH, RESERVED_NAMES, name_from_label
from migration_pipeline_tests.fakes.twenty_errors import (
    ApiError,
    class_validator_error,
    metadata_validation_error,
)
from migration_pipeline_tests.fakes.twenty_schema import (
    CUSTOM_FIELD_TYPES,
    MANY_TO_ONE,
    NAME_PATTERN,
    ONE_TO_MANY,
    OPTION_VALUE_PATTERN,
    FieldMeta,
    ObjectMeta,
    capitalize_first,
    empty_value,
    now_iso,
    relation_pair,
    system_fields,
    unquoted,
)
from migration_pipeline_tests.fakes.twenty_store import Workspace
from migration_pipeline_tests.fakes.twenty_values import is_uuid, normalise_value

# Standard objects that get a `target<Object>` relation to every new custom object, as in Twenty.
_TARGET_HOLDERS = ("noteTarget", "taskTarget", "attachment")
_FIELD_UPDATABLE = ("label", "description", "icon", "isActive", "options", "defaultValue", "isNullable", "isUnique",
                    "settings")
_OBJECT_UPDATABLE = ("labelSingular", "labelPlural", "description", "icon", "isActive")


def _required_strings(body: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    messages = []
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            messages.append(f"{name} should not be empty")
        if not isinstance(value, str):
            messages.append(f"{name} must be a string")
    return messages


def _field_error(obj: ObjectMeta, name: str, code: str, message: str, value: Any = None,
                 action: str = "create") -> ApiError:
    return metadata_validation_error(code=code, message=message, name=name, object_universal_id=obj.id,
                                     value=value, action=action)


def _taken_names(obj: ObjectMeta) -> set[str]:
    return {f.name for f in obj.fields.values()} | {f.column for f in obj.fields.values() if f.column}


# Twenty 2.21's name rules (validate-flat-field-metadata-name.util.ts and its object twin).
RESERVED_MESSAGE = 'This name is reserved. Use a different name or the system will add "Custom" suffix.'
INVALID_NAME_MESSAGE = "Name is not valid: it must start with lowercase letter and contain only alphanumeric letters"


def name_errors(name: str) -> list[str]:
    """Twenty's messages for a name it refuses, in its order."""
    errors = ["Name is too long"] if len(name) > MAX_NAME_LENGTH else []
    errors += ["Name is too short"] if not name else []
    errors += [INVALID_NAME_MESSAGE] if not NAME_PATTERN.match(name) else []
    return errors + ([RESERVED_MESSAGE] if name in RESERVED_NAMES else [])


def _check_name_available(obj: ObjectMeta, name: str) -> None:
    errors = name_errors(name)
    if errors:
        raise _field_error(obj, name, "INVALID_FIELD_INPUT", errors[0], name)
    if name in _taken_names(obj) or f"{name}Id" in _taken_names(obj):
        raise _field_error(obj, name, "NOT_AVAILABLE",
                           f"Name \"{name}\" is not available as it is already used by another field", name)


def _validated_options(obj: ObjectMeta, name: str, options: Any, action: str) -> list[dict[str, Any]]:
    if not isinstance(options, list) or not options:
        raise _field_error(obj, name, "INVALID_FIELD_INPUT", "Options are required for enum fields", [], action)
    seen: set[str] = set()
    validated = []
    for position, option in enumerate(options):
        value = option.get("value") if isinstance(option, dict) else None
        if not isinstance(value, str) or not OPTION_VALUE_PATTERN.match(value):
            message = f"Value must be in UPPER_CASE and follow snake_case \"{value}\""
            raise _field_error(obj, name, "INVALID_FIELD_INPUT", message, value, action)
        if value in seen:
            raise _field_error(obj, name, "INVALID_FIELD_INPUT", f"Duplicated option value \"{value}\"", value, action)
        seen.add(value)
        validated.append({"id": option.get("id") or str(uuid.uuid4()), "color": option.get("color", "gray"),
                          "label": option.get("label", value), "value": value,
                          "position": option.get("position", position)})
    return validated


def _check_default_value(obj: ObjectMeta, field: FieldMeta, action: str) -> None:
    if field.default_value is None:
        return
    value = unquoted(field.default_value)
    try:
        normalise_value(obj.name_singular, field, value, None, lambda _: None)
    except ApiError as error:
        message = f"Invalid default value {field.default_value!r}: {error.body['messages'][0]}"
        raise _field_error(obj, field.name, "INVALID_FIELD_INPUT", message, action=action) from None


def _fill_column(ws: Workspace, obj: ObjectMeta, field: FieldMeta) -> None:
    if field.column is not None:
        for row in ws.tables[obj.id].values():
            row.setdefault(field.column, empty_value(field))


def _drop_column(ws: Workspace, obj: ObjectMeta, field: FieldMeta) -> None:
    del obj.fields[field.name]
    if field.column is not None:
        for row in ws.tables[obj.id].values():
            row.pop(field.column, None)


def _add_fields(ws: Workspace, placements: list[tuple[ObjectMeta, FieldMeta]]) -> None:
    for obj, field in placements:
        obj.fields[field.name] = field
        _fill_column(ws, obj, field)
    for object_id in {obj.id for obj, _ in placements}:
        ws.rebuild_unique_index(ws.objects[object_id])


# ---- fields ------------------------------------------------------------------------------------


def create_field(ws: Workspace, body: dict[str, Any]) -> FieldMeta:
    messages = [] if is_uuid(body.get("objectMetadataId")) else ["objectMetadataId must be a UUID"]
    if not isinstance(body.get("type"), str) or not body.get("type"):
        messages.append("type should not be empty")
    messages += _required_strings(body, ("name", "label"))
    if messages:
        raise class_validator_error(messages)
    obj = ws.objects.get(body["objectMetadataId"])
    if obj is None:
        # Assumption: wording of the real unknown-object error is not recorded.
        raise metadata_validation_error(code="OBJECT_METADATA_NOT_FOUND", message="Object metadata not found",
                                        name=body["name"], object_universal_id=body["objectMetadataId"])
    name, field_type = body["name"], body["type"]
    if field_type not in CUSTOM_FIELD_TYPES:
        raise _field_error(obj, name, "INVALID_FIELD_INPUT",
                           f"Field type {field_type} is not supported by FakeTwenty "
                           f"(supported: {', '.join(sorted(CUSTOM_FIELD_TYPES))})", field_type)
    _check_name_available(obj, name)
    if field_type == "RELATION":
        return _create_relation(ws, obj, body)
    field = FieldMeta(
        id=str(uuid.uuid4()), object_id=obj.id, name=name, type=field_type, label=body["label"],
        description=body.get("description"), icon=body.get("icon"), is_nullable=body.get("isNullable", True),
        is_unique=bool(body.get("isUnique", False)), is_custom=True, default_value=body.get("defaultValue"),
        settings=body.get("settings"),
    )
    if field_type in ("SELECT", "MULTI_SELECT"):
        field.options = _validated_options(obj, name, body.get("options"), "create")
    _check_default_value(obj, field, "create")
    try:
        _add_fields(ws, [(obj, field)])
    except ApiError:
        _drop_column(ws, obj, field)
        ws.rebuild_unique_index(obj)
        raise
    return field


def _create_relation(ws: Workspace, obj: ObjectMeta, body: dict[str, Any]) -> FieldMeta:
    payload = body.get("relationCreationPayload")
    name = body["name"]
    if not isinstance(payload, dict) or payload.get("type") not in (MANY_TO_ONE, ONE_TO_MANY):
        raise _field_error(obj, name, "INVALID_FIELD_INPUT",
                           "relationCreationPayload.type must be MANY_TO_ONE or ONE_TO_MANY")
    target = ws.objects.get(payload.get("targetObjectMetadataId") or "")
    if target is None:
        raise _field_error(obj, name, "INVALID_FIELD_INPUT", "Target object metadata not found",
                           payload.get("targetObjectMetadataId"))
    target_label = payload.get("targetFieldLabel")
    if not isinstance(target_label, str):
        raise metadata_validation_error(
            code="FIELD_METADATA_RELATION_MALFORMED", name="", object_universal_id=obj.id, value=payload,
            message="Relation creation payload is invalid: targetFieldLabel must be a string")
    target_name = name_from_label(target_label)  # Twenty names the inverse from the label
    _check_name_available(target, target_name)
    common = {"is_custom": True, "description": body.get("description"), "icon": body.get("icon")}
    if payload["type"] == MANY_TO_ONE:
        field, inverse = relation_pair(obj, name, target, target_name, label=body["label"],
                                       inverse_label=target_label, **common)
    else:
        inverse, field = relation_pair(target, target_name, obj, name, label=target_label,
                                       inverse_label=body["label"], **common)
    inverse.icon = payload.get("targetFieldIcon")
    _add_fields(ws, [(ws.objects[f.object_id], f) for f in (field, inverse)])
    return field


def update_field(ws: Workspace, field_id: str, body: dict[str, Any]) -> FieldMeta:
    obj, field = _existing_field(ws, field_id)
    if "name" in body and body["name"] != field.name:
        raise _field_error(obj, field.name, "INVALID_FIELD_INPUT", "FakeTwenty does not support renaming fields",
                           body["name"], "update")
    if body.get("isActive") is False and (field.is_system or field is obj.label_identifier()):
        raise _field_error(obj, field.name, "INVALID_FIELD_INPUT",
                           "System and label identifier fields cannot be deactivated", action="update")
    previous = {key: getattr(field, key) for key in ("options", "is_unique", "is_active")}
    options = _validated_options(obj, field.name, body["options"], "update") \
        if "options" in body and field.type in ("SELECT", "MULTI_SELECT") else None
    for key in _FIELD_UPDATABLE:
        if key in body and key != "options":
            setattr(field, _snake(key), body[key])
    if options is not None:
        field.options = options
        _drop_removed_options(ws, obj, field)
    _check_default_value(obj, field, "update")
    try:
        ws.rebuild_unique_index(obj)
    except ApiError:
        for key, value in previous.items():
            setattr(field, key, value)
        ws.rebuild_unique_index(obj)
        raise
    field.updated_at = now_iso()
    return field


def _snake(key: str) -> str:
    return {"isActive": "is_active", "isNullable": "is_nullable", "isUnique": "is_unique",
            "defaultValue": "default_value"}.get(key, key)


def _drop_removed_options(ws: Workspace, obj: ObjectMeta, field: FieldMeta) -> None:
    """Assumption: values of removed options are cleared, like Twenty's option-removal migration."""
    valid = set(field.option_values)
    for row in ws.tables[obj.id].values():
        value = row.get(field.name)
        if field.type == "SELECT" and value is not None and value not in valid:
            row[field.name] = None
        elif field.type == "MULTI_SELECT" and isinstance(value, list):
            row[field.name] = [item for item in value if item in valid]


def delete_field(ws: Workspace, field_id: str) -> FieldMeta:
    """Observed on 2.21: active fields are deleted directly; deleting either side of a relation
    removes both; deleting ONE target of a morph relation removes EVERY target of it
    (examples-2.md section 12), standard ones included."""
    found = ws.find_field(field_id)
    if found is None:
        raise ApiError(404, {"statusCode": 404, "error": "Error", "messages": ["Field to delete not found"],
                             "code": "FIELD_METADATA_NOT_FOUND"})
    obj, field = found
    if not field.is_custom and not field.morph:
        raise _field_error(obj, field.name, "FIELD_MUTATION_NOT_ALLOWED", "Standard fields cannot be deleted",
                           action="delete")
    for doomed in [f for f in obj.fields.values() if f.morph] if field.morph else [field]:
        _drop_relation(ws, obj, doomed)
    return field


def _drop_relation(ws: Workspace, obj: ObjectMeta, field: FieldMeta) -> None:
    _drop_column(ws, obj, field)
    if field.relation_target_field_id:
        counterpart = ws.find_field(field.relation_target_field_id)
        if counterpart is not None:
            _drop_column(ws, *counterpart)
            ws.rebuild_unique_index(counterpart[0])
    ws.rebuild_unique_index(obj)


def _existing_field(ws: Workspace, field_id: str) -> tuple[ObjectMeta, FieldMeta]:
    found = ws.find_field(field_id)
    if found is None:
        raise ApiError(404, {"statusCode": 404, "error": "NotFoundException",
                             "messages": [f"Field metadata with id {field_id} not found"]})
    return found


def get_field(ws: Workspace, field_id: str) -> FieldMeta:
    return _existing_field(ws, field_id)[1]


# ---- objects -----------------------------------------------------------------------------------


def create_object(ws: Workspace, body: dict[str, Any]) -> ObjectMeta:
    messages = _required_strings(body, ("nameSingular", "namePlural", "labelSingular", "labelPlural"))
    if messages:
        raise class_validator_error(messages)
    singular, plural = body["nameSingular"], body["namePlural"]
    object_id = str(uuid.uuid4())
    used = {name for o in ws.objects.values() for name in (o.name_singular, o.name_plural)}
    for name in (singular, plural):
        errors = name_errors(name)
        if errors:
            raise metadata_validation_error(code="INVALID_OBJECT_INPUT", message=errors[0], name=singular,
                                            object_universal_id=object_id, value=name, metadata_name="objectMetadata")
        if name in used or singular == plural:
            # Assumption: wording of the real object-name clash error is not recorded.
            raise metadata_validation_error(
                code="NOT_AVAILABLE", message=f"Name \"{name}\" is not available", name=name,
                object_universal_id=object_id, value=name, metadata_name="objectMetadata",
            )
    obj = ObjectMeta(id=object_id, name_singular=singular, name_plural=plural,
                     # as Twenty 2.21 does (capitalize() of both labels on create)
                     label_singular=capitalize_first(body["labelSingular"]),
                     label_plural=capitalize_first(body["labelPlural"]),
                     description=body.get("description"), icon=body.get("icon"), is_custom=True)
    for field in system_fields(obj.id, lambda _: str(uuid.uuid4())):
        obj.fields[field.name] = field
    obj.fields["name"] = FieldMeta(id=str(uuid.uuid4()), object_id=obj.id, name="name", type="TEXT", label="Name",
                                   description="Name", icon="IconAbc", default_value="''")
    ws.objects[obj.id] = obj
    ws.tables[obj.id] = {}
    placements: list[tuple[ObjectMeta, FieldMeta]] = []
    for holder_name in _TARGET_HOLDERS:
        holder = ws.object_by_singular(holder_name)
        many, one = relation_pair(holder, f"target{capitalize_first(singular)}", obj, holder.name_plural,
                                  on_delete="CASCADE")
        many.morph = True
        placements += [(holder, many), (obj, one)]
    _add_fields(ws, placements)
    return obj


def update_object(ws: Workspace, object_id: str, body: dict[str, Any]) -> ObjectMeta:
    obj = get_object(ws, object_id)
    if not obj.is_custom and body.get("isActive") is False:
        raise bad_object_input(obj, "Standard objects cannot be deactivated by FakeTwenty", "update")
    for key in _OBJECT_UPDATABLE:
        if key in body:
            setattr(obj, {"labelSingular": "label_singular", "labelPlural": "label_plural",
                          "isActive": "is_active"}.get(key, key), body[key])
    obj.updated_at = now_iso()
    return obj


def delete_object(ws: Workspace, object_id: str) -> ObjectMeta:
    obj = get_object(ws, object_id)
    if not obj.is_custom:
        raise bad_object_input(obj, "Standard objects cannot be deleted", "delete")
    for other in ws.objects.values():
        if other is obj:
            continue
        for field in [f for f in other.fields.values() if f.relation_target_object_id == obj.id]:
            _drop_column(ws, other, field)
        ws.rebuild_unique_index(other)
    del ws.objects[obj.id]
    del ws.tables[obj.id]
    return obj


def bad_object_input(obj: ObjectMeta, message: str, action: str) -> ApiError:
    return metadata_validation_error(code="OBJECT_MUTATION_NOT_ALLOWED", message=message, name=obj.name_singular,
                                     object_universal_id=obj.id, metadata_name="objectMetadata", action=action)


def get_object(ws: Workspace, object_id: str) -> ObjectMeta:
    obj = ws.objects.get(object_id)
    if obj is None:
        raise ApiError(404, {"statusCode": 404, "error": "NotFoundException",
                             "messages": [f"Object metadata with id {object_id} not found"]})
    return obj
