"""Create the custom objects, fields and select options a migration needs, idempotently,
through Twenty's metadata REST API; report exactly what was created so it can be undone.

`ensure_schema` reads the metadata once, refuses to touch anything if an existing field is
incompatible, creates objects then fields, appends missing select options (existing options
keep their ids), never deletes, and finally reads the metadata back to verify every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from migration_pipeline.destinations.twenty.client import TwentyClient, TwentyRequestError

SELECT_TYPES = ("SELECT", "MULTI_SELECT")
_OPTION_COLORS = ("blue", "green", "red", "orange", "purple", "sky", "turquoise", "yellow", "pink", "gray")


@dataclass(frozen=True)
class SelectOption:
    value: str  # UPPER_SNAKE, what records carry
    label: str


@dataclass(frozen=True)
class ObjectSpec:
    name_singular: str
    name_plural: str
    label_singular: str
    label_plural: str
    description: str = ""
    icon: str = "IconBox"


@dataclass(frozen=True)
class FieldSpec:
    object: str  # nameSingular of the object carrying the field, e.g. "person"
    name: str
    label: str
    type: str  # TEXT, NUMBER, BOOLEAN, DATE, DATE_TIME, SELECT, MULTI_SELECT, CURRENCY, RELATION...
    description: str = ""
    is_unique: bool = False
    options: tuple[SelectOption, ...] = ()
    relation_target: str | None = None  # nameSingular of the target; MANY_TO_ONE, adds `<name>Id`
    inverse_label: str | None = None  # of the field Twenty adds on the target; default "<labelPlural> <label>"


@dataclass(frozen=True)
class SchemaSpec:
    objects: tuple[ObjectSpec, ...] = ()
    fields: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True)
class SchemaItem:
    kind: Literal["object", "field", "option"]
    object: str  # nameSingular
    name: str  # object: its nameSingular; field: field name; option: option value
    metadata_id: str  # the object's or field's id; for an option, its field's id
    field: str | None = None  # option only: the field it belongs to


@dataclass(frozen=True)
class SchemaReport:
    created_objects: tuple[SchemaItem, ...] = ()
    created_fields: tuple[SchemaItem, ...] = ()
    added_options: tuple[SchemaItem, ...] = ()
    already_present: tuple[SchemaItem, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created_objects or self.created_fields or self.added_options)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {name: [asdict(item) for item in items] for name, items in self._groups().items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[Mapping[str, Any]]]) -> SchemaReport:
        return cls(**{name: tuple(SchemaItem(**item) for item in data.get(name, ())) for name in _GROUPS})

    def _groups(self) -> dict[str, tuple[SchemaItem, ...]]:
        return {name: getattr(self, name) for name in _GROUPS}


_GROUPS = ("created_objects", "created_fields", "added_options", "already_present")


class SchemaError(Exception):
    """The workspace cannot take the requested schema, or did not end up with it."""


@dataclass
class _Plan:
    objects: list[ObjectSpec] = field(default_factory=list)
    fields: list[FieldSpec] = field(default_factory=list)
    options: dict[str, tuple[FieldSpec, list[SelectOption]]] = field(default_factory=dict)
    present: list[SchemaItem] = field(default_factory=list)


def ensure_schema(client: TwentyClient, spec: SchemaSpec) -> SchemaReport:
    """Make the workspace carry `spec`; safe to call on every run."""
    objects = _by_name(client.metadata_objects())
    plan = _plan(spec, objects)

    created_objects: list[SchemaItem] = []
    for object_spec in plan.objects:
        created = client.create_object(_object_payload(object_spec))
        objects[object_spec.name_singular] = {"fields": [], **created}
        created_objects.append(
            SchemaItem("object", object_spec.name_singular, object_spec.name_singular, created["id"])
        )

    created_fields: list[SchemaItem] = []
    for field_spec in plan.fields:
        came_with_object = _field(objects, field_spec.object, field_spec.name)
        if came_with_object:  # e.g. `name` on a custom object we just created
            _raise_if_incompatible(field_spec, came_with_object)
            plan.present.append(_field_item(field_spec, came_with_object))
            continue
        created = client.create_field(_field_payload(field_spec, objects))
        created_fields.append(_field_item(field_spec, created))

    added_options: list[SchemaItem] = []
    for field_id, (field_spec, missing) in plan.options.items():
        existing = _field(objects, field_spec.object, field_spec.name)["options"] or []
        client.update_field(field_id, {"options": _extended_options(existing, missing)})
        added_options.extend(
            SchemaItem("option", field_spec.object, o.value, field_id, field=field_spec.name)
            for o in missing
        )

    _verify(spec, _by_name(client.metadata_objects()))
    return SchemaReport(
        tuple(created_objects), tuple(created_fields), tuple(added_options), tuple(plan.present)
    )


def drop_created(client: TwentyClient, report: SchemaReport | Mapping[str, Any]) -> None:
    """Undo `ensure_schema`: remove the options it added, then deactivate and delete the
    fields and objects it created. Items already gone are skipped."""
    if not isinstance(report, SchemaReport):
        report = SchemaReport.from_dict(report)
    dropped_objects = {item.object for item in report.created_objects}
    if report.added_options:
        fields_by_id = {
            f["id"]: f for o in client.metadata_objects() for f in o.get("fields") or []
        }
        removals: dict[str, set[str]] = {}
        for option in report.added_options:
            if option.object not in dropped_objects:
                removals.setdefault(option.metadata_id, set()).add(option.name)
        for field_id, values in removals.items():
            current = fields_by_id.get(field_id)
            if current is not None:
                kept = [o for o in current.get("options") or [] if o["value"] not in values]
                client.update_field(field_id, {"options": kept})
    for item in report.created_fields:
        if item.object not in dropped_objects:
            _deactivate_and_delete(client.update_field, client.delete_field, item.metadata_id)
    for item in report.created_objects:
        _deactivate_and_delete(client.update_object, client.delete_object, item.metadata_id)


def _plan(spec: SchemaSpec, objects: dict[str, dict[str, Any]]) -> _Plan:
    plan = _Plan()
    problems: list[str] = []
    for object_spec in spec.objects:
        existing = objects.get(object_spec.name_singular)
        if existing is None:
            plan.objects.append(object_spec)
        else:
            plan.present.append(
                SchemaItem("object", object_spec.name_singular, object_spec.name_singular, existing["id"])
            )
    planned_objects = {o.name_singular for o in plan.objects}
    for field_spec in spec.fields:
        if field_spec.type == "RELATION" and not field_spec.relation_target:
            problems.append(f"{_label(field_spec)} is a RELATION without relation_target")
            continue
        for needed in (field_spec.object, field_spec.relation_target):
            if needed and needed not in objects and needed not in planned_objects:
                problems.append(f"{_label(field_spec)} needs object {needed!r}, which does not exist")
        existing = field_spec.object in objects and _field(objects, field_spec.object, field_spec.name)
        if not existing:
            plan.fields.append(field_spec)
            continue
        problem = _incompatibility(field_spec, existing)
        if problem:
            problems.append(problem)
            continue
        plan.present.append(_field_item(field_spec, existing))
        have = {o["value"] for o in existing.get("options") or []}
        missing = [o for o in field_spec.options if o.value not in have]
        if missing:
            plan.options[existing["id"]] = (field_spec, missing)
        plan.present.extend(
            SchemaItem("option", field_spec.object, o.value, existing["id"], field=field_spec.name)
            for o in field_spec.options
            if o.value in have
        )
    if problems:
        raise SchemaError(
            "The Twenty workspace cannot take the requested schema; nothing was changed:\n- "
            + "\n- ".join(problems)
        )
    return plan


def _incompatibility(spec: FieldSpec, existing: Mapping[str, Any]) -> str | None:
    if existing.get("type") != spec.type:
        return (
            f"{_label(spec)} already exists as {existing.get('type')}, not {spec.type}: rename "
            "the field in the mapping or change its type in Twenty"
        )
    if existing.get("isActive") is False:
        return f"{_label(spec)} exists but is deactivated: reactivate or delete it in Twenty"
    if spec.is_unique and not existing.get("isUnique"):
        return (
            f"{_label(spec)} exists but is not unique; the loader relies on it being unique to "
            "never create a record twice: make it unique in Twenty"
        )
    return None


def _raise_if_incompatible(spec: FieldSpec, existing: Mapping[str, Any]) -> None:
    problem = _incompatibility(spec, existing)
    if problem:
        raise SchemaError(problem)


def _verify(spec: SchemaSpec, objects: dict[str, dict[str, Any]]) -> None:
    missing: list[str] = [
        f"object {o.name_singular}" for o in spec.objects if o.name_singular not in objects
    ]
    for field_spec in spec.fields:
        found = field_spec.object in objects and _field(objects, field_spec.object, field_spec.name)
        if not found or found.get("type") != field_spec.type:
            missing.append(_label(field_spec))
            continue
        have = {o["value"] for o in found.get("options") or []}
        missing.extend(
            f"option {o.value} of {_label(field_spec)}" for o in field_spec.options if o.value not in have
        )
    if missing:
        raise SchemaError(
            "After the schema update, Twenty's metadata still lacks: " + ", ".join(missing)
        )


def _object_payload(spec: ObjectSpec) -> dict[str, Any]:
    payload = {
        "nameSingular": spec.name_singular,
        "namePlural": spec.name_plural,
        "labelSingular": spec.label_singular,
        "labelPlural": spec.label_plural,
        "icon": spec.icon,
    }
    if spec.description:
        payload["description"] = spec.description
    return payload


def _field_payload(spec: FieldSpec, objects: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    owner = objects[spec.object]
    payload: dict[str, Any] = {
        "objectMetadataId": owner["id"],
        "type": spec.type,
        "name": spec.name,
        "label": spec.label,
        "isNullable": True,
    }
    if spec.description:
        payload["description"] = spec.description
    if spec.is_unique:
        payload["isUnique"] = True
    if spec.type in SELECT_TYPES:
        payload["options"] = _extended_options([], list(spec.options))
    if spec.type == "RELATION":
        assert spec.relation_target is not None
        payload["relationCreationPayload"] = {
            "type": "MANY_TO_ONE",
            "targetObjectMetadataId": objects[spec.relation_target]["id"],
            # the inverse field on the target; must not clash with other inverse fields there
            "targetFieldLabel": spec.inverse_label or f"{owner.get('labelPlural') or spec.object} {spec.label}",
            "targetFieldIcon": "IconLink",
        }
    return payload


def _extended_options(
    existing: Sequence[Mapping[str, Any]], new: Sequence[SelectOption]
) -> list[dict[str, Any]]:
    """Existing options untouched (ids kept, so records keep their values), new ones after."""
    options = [dict(o) for o in existing]
    position = max((o.get("position", -1) for o in options), default=-1) + 1
    for offset, option in enumerate(new):
        options.append(
            {
                "value": option.value,
                "label": option.label,
                "color": _OPTION_COLORS[(len(options)) % len(_OPTION_COLORS)],
                "position": position + offset,
            }
        )
    return options


def _deactivate_and_delete(
    update: Callable[[str, Mapping[str, Any]], Any], delete: Callable[[str], None], metadata_id: str
) -> None:
    # Twenty refuses to delete an active field or object.
    try:
        update(metadata_id, {"isActive": False})
        delete(metadata_id)
    except TwentyRequestError as error:
        if error.status != 404:
            raise


def _by_name(objects: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["nameSingular"]: o for o in objects}


def _field(objects: Mapping[str, Mapping[str, Any]], object: str, name: str) -> dict[str, Any] | None:
    return next((f for f in objects[object].get("fields") or [] if f["name"] == name), None)


def _field_item(spec: FieldSpec, metadata: Mapping[str, Any]) -> SchemaItem:
    return SchemaItem("field", spec.object, spec.name, metadata["id"])


def _label(spec: FieldSpec) -> str:
    return f"field {spec.object}.{spec.name}"
