"""Staged data -> the custom objects, fields and options Twenty must have before any record moves."""

from __future__ import annotations

import re
from collections import Counter

from migration_pipeline.destinations.twenty.metadata import FieldSpec, ObjectSpec, SchemaSpec, SelectOption
from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.staging import StagedObject


def schema_spec(staged: list[StagedObject], mapping: Mapping) -> SchemaSpec:
    custom = mapping.custom_objects
    objects = tuple(
        ObjectSpec(name, custom[name].plural, custom[name].label_singular, custom[name].label_plural,
                   custom[name].description, custom[name].icon)
        for name in dict.fromkeys(obj.twenty_object for obj in staged) if name in custom
    )
    fields: dict[tuple[str, str], FieldSpec] = {}
    for obj in staged:
        for need in obj.custom_fields:
            fields[(obj.twenty_object, need.name)] = FieldSpec(
                object=obj.twenty_object,
                name=need.name,
                label=need.spec.label,
                type=need.spec.type,
                description=need.spec.description,
                is_unique=need.spec.unique,
                options=tuple(SelectOption(value=v, label=label) for v, label in need.options.items()),
            )
        for column, (target, relation) in obj.custom_relations.items():
            name = column.removesuffix("Id")
            fields[(obj.twenty_object, name)] = FieldSpec(
                object=obj.twenty_object,
                name=name,
                label=relation.label,
                type="RELATION",
                description=relation.description,
                relation_target=target,
            )
        for column in obj.members:
            name = column.removesuffix("Id")
            fields[(obj.twenty_object, name)] = FieldSpec(
                object=obj.twenty_object,
                name=name,
                label=name.title(),
                type="RELATION",
                description="Workspace member responsible for this record (resolved by email)",
                relation_target="workspaceMember",
            )
        if obj.twenty_object in custom:
            fields |= {(obj.twenty_object, f.name): f for f in _relation_fields(obj, mapping)}
    return SchemaSpec(objects=objects, fields=tuple(fields.values()))


def _relation_fields(obj: StagedObject, mapping: Mapping) -> list[FieldSpec]:
    """A custom object's relations as MANY_TO_ONE RELATION fields (`opportunityId` -> field
    `opportunity`). The field Twenty adds on the target (the list seen from an opportunity) is
    labelled with the custom object's plural label, qualified when two relations share a target."""
    plural_label = mapping.custom_objects[obj.twenty_object].label_plural
    targets = {column: mapping.object(name).twenty_object for column, name in obj.relations.items()}
    sharing = Counter(targets.values())
    specs = []
    for column, target in targets.items():
        name = column.removesuffix("Id")
        label = _words(name)
        specs.append(FieldSpec(
            object=obj.twenty_object, name=name, label=label, type="RELATION",
            description=f"The related {target} record",
            relation_target=target,
            inverse_label=plural_label if sharing[target] == 1 else f"{plural_label} ({label})",
        ))
    return specs


def _words(name: str) -> str:
    """pointOfContact -> "Point of contact"."""
    return re.sub(r"(?<!^)([A-Z])", r" \1", name).lower().capitalize()
