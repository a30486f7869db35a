"""Staged data -> the custom objects, fields and options Twenty must have before any record moves.

The staged objects carry the fields and select options of the whole export (a sample run too),
so a sample run and its full run ask for the same schema. A SELECT/MULTI_SELECT field with no
value anywhere in the export and no declared options is skipped (Twenty refuses a select
without options) and listed with its reason; the first run whose export has a value creates it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from migration_pipeline.core.twenty_names import inverse_label, name_from_label, standard_fields
from migration_pipeline.destinations.twenty.metadata import (
    SELECT_TYPES,
    FieldSpec,
    ObjectSpec,
    SchemaSpec,
    SelectOption,
    SkippedField,
)
from migration_pipeline.engine.mapping import Mapping, created_relations
from migration_pipeline.engine.staging import StagedObject

NO_OPTIONS = ("no value in the whole export and no declared options, and Twenty refuses a select without "
              "options: not created (the first run whose export has a value creates it)")


def schema_spec(staged: list[StagedObject], mapping: Mapping) -> SchemaSpec:
    custom = mapping.custom_objects
    objects = tuple(
        ObjectSpec(name, custom[name].plural, custom[name].label_singular, custom[name].label_plural,
                   custom[name].description, custom[name].icon)
        for name in dict.fromkeys(obj.twenty_object for obj in staged) if name in custom
    )
    fields: dict[tuple[str, str], FieldSpec] = {}
    skipped: list[SkippedField] = []
    for obj in staged:
        for need in obj.custom_fields:
            if need.spec.type in SELECT_TYPES and not need.options:
                skipped.append(SkippedField(obj.twenty_object, need.name, need.spec.type, NO_OPTIONS))
                continue
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
                inverse_label=f"{mapping.catalogue[obj.twenty_object].label} {name.title()}",
            )
        fields |= {(obj.twenty_object, f.name): f for f in _relation_fields(obj, mapping)}
    return SchemaSpec(objects=objects, fields=_unclashing_inverses(list(fields.values())), skipped=tuple(skipped))


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
        inverse = f"{mapping.catalogue[obj.twenty_object].label} {label}" if custom is None else (
            custom.label_plural if sharing[target] == 1 else f"{custom.label_plural} ({label})")
        specs.append(FieldSpec(
            object=obj.twenty_object, name=name, label=label, type="RELATION",
            description=rel.custom.description if rel.custom else f"The related {target} record",
            relation_target=target,
            inverse_label=inverse,
        ))
    return specs


def _unclashing_inverses(fields: list[FieldSpec]) -> tuple[FieldSpec, ...]:
    """Twenty names a relation's inverse field from its label and refuses a name its target
    already has (400 NOT_AVAILABLE): each inverse label is suffixed when its name would clash
    with the target's fields (Twenty's own and the ones asked for here) or an earlier inverse."""
    taken: dict[str, set[str]] = {}
    for spec in fields:
        names = taken.setdefault(spec.object, set(standard_fields(spec.object)))
        names |= {spec.name, f"{spec.name}Id"} if spec.type == "RELATION" else {spec.name}
    out = []
    for spec in fields:
        if spec.type == "RELATION" and spec.relation_target and spec.inverse_label:
            names = taken.setdefault(spec.relation_target, set(standard_fields(spec.relation_target)))
            spec = replace(spec, inverse_label=inverse_label(spec.inverse_label, names))
            names.add(name_from_label(spec.inverse_label))
        out.append(spec)
    return tuple(out)


def _words(name: str) -> str:
    """pointOfContact -> "Point of contact"."""
    return re.sub(r"(?<!^)([A-Z])", r" \1", name).lower().capitalize()
