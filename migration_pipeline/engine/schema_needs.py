"""Staged data -> the custom objects, fields and options Twenty must have before any record moves."""

from __future__ import annotations

import re
from collections import Counter

from migration_pipeline.destinations.twenty.metadata import FieldSpec, ObjectSpec, SchemaSpec, SelectOption
from migration_pipeline.engine.mapping import Mapping, created_relations
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
        fields |= {(obj.twenty_object, f.name): f for f in _relation_fields(obj, mapping)}
    return SchemaSpec(objects=objects, fields=tuple(fields.values()))


def _relation_fields(obj: StagedObject, mapping: Mapping) -> list[FieldSpec]:
    """The RELATION fields the object's relations need (`created_relations`), MANY_TO_ONE
    (`opportunityId` -> field `opportunity`). A relation declared `custom:` carries its own label;
    on a custom object, the field Twenty adds on the target (the list seen from an opportunity)
    is labelled with the custom object's plural label, qualified when two relations share a target."""
    relations = {column: rel for entry in mapping.objects if entry.twenty_object == obj.twenty_object
                 for column, rel in created_relations(entry, mapping.custom_objects).items() if column in obj.relations}
    targets = {column: mapping.object(rel.object).twenty_object for column, rel in relations.items()}
    sharing = Counter(targets.values())
    custom = mapping.custom_objects.get(obj.twenty_object)
    specs = []
    for column, rel in relations.items():
        name, target = column.removesuffix("Id"), targets[column]
        label = rel.custom.label if rel.custom else _words(name)
        inverse = None if custom is None else (
            custom.label_plural if sharing[target] == 1 else f"{custom.label_plural} ({label})")
        specs.append(FieldSpec(
            object=obj.twenty_object, name=name, label=label, type="RELATION",
            description=rel.custom.description if rel.custom else f"The related {target} record",
            relation_target=target,
            inverse_label=inverse,
        ))
    return specs


def _words(name: str) -> str:
    """pointOfContact -> "Point of contact"."""
    return re.sub(r"(?<!^)([A-Z])", r" \1", name).lower().capitalize()
