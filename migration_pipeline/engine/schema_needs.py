"""Staged data -> the custom fields/options Twenty must have before any record moves."""

from __future__ import annotations

from migration_pipeline.destinations.twenty.metadata import FieldSpec, SchemaSpec, SelectOption
from migration_pipeline.engine.staging import StagedObject


def schema_spec(staged: list[StagedObject]) -> SchemaSpec:
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
    return SchemaSpec(objects=(), fields=tuple(fields.values()))
