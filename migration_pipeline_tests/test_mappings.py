"""Conformance of every mapping file: it validates, it reads only columns the documented
export has, and the editor schema is current."""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

import pytest

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.engine.mapping import (
    SCHEMA_PATH,
    Mapping,
    MappingError,
    RestObject,
    json_schema_text,
    load_mapping,
)
from migration_pipeline.resources import SAMPLE_DATA

MAPPING_FILES = sorted(MAPPINGS_DIR.glob("*__twenty.yaml"))
ALLCLIENTS = MAPPINGS_DIR / "allclients__twenty.yaml"
ACTIONSTEP = MAPPINGS_DIR / "actionstep__twenty.yaml"


@pytest.fixture(params=MAPPING_FILES, ids=lambda p: p.name)
def mapping(request: pytest.FixtureRequest) -> Mapping:
    return load_mapping(request.param)


def _headers(mapping: Mapping, source_object: str) -> set[str]:
    spec = mapping.source.objects[source_object]
    if isinstance(spec, RestObject):
        return _api_columns(mapping.slug, spec)
    path = SAMPLE_DATA / mapping.slug / spec.file
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return set(next(csv.reader(handle)))


@cache
def _normalised_columns(slug: str, resource: str) -> frozenset[str]:
    """Columns the connector makes of the fake API's records of one resource."""
    assert slug == "actionstep", f"no fake API data for {slug}"
    from migration_pipeline.sources.actionstep.client import normalise_record
    from migration_pipeline.sources.actionstep.generate import generate_dataset

    return frozenset(name for raw in generate_dataset().resources[resource] for name in normalise_record(resource, raw))


def _api_columns(slug: str, spec: RestObject) -> set[str]:
    """A REST source object's columns: its resource's, plus `<link>.<field>` of each include."""
    columns = set(_normalised_columns(slug, spec.path))
    for link, kind in spec.include.items():
        columns |= {f"{link}.{name}" for name in _normalised_columns(slug, kind) if not name.startswith("links.")}
    return columns


def _columns_read(mapping: Mapping) -> list[tuple[str, str, str]]:
    """(object name, source object, column) for every column a mapping reads."""
    used = []
    for obj in mapping.objects:
        specs = list(obj.fields.values()) + [m.email for m in obj.members.values()]
        for field in obj.fields.values():
            if field.when:
                used += [(obj.name, obj.from_, c) for c in field.when.columns()]
            if field.through:
                used += [(obj.name, field.through.object, c) for c in field.through.where]
            if field.custom and field.custom.options_from:
                used.append((obj.name, field.custom.options_from.object, field.custom.options_from.column))
        if obj.dedupe:
            specs += [obj.dedupe.by] + ([obj.dedupe.also_by] if obj.dedupe.also_by else [])
        used += [(obj.name, obj.from_, c) for spec in specs for c in spec.columns]
        for spec in specs:
            if spec.through:
                used += [(obj.name, spec.through.object, c) for c in (spec.through.key, spec.through.value)]
        for rel in [*obj.relations.values(), *obj.targets.values()]:
            target_source = mapping.object(rel.object).from_
            for match in rel.match:
                used += [(obj.name, obj.from_, c) for c in match.columns]
                used += [(obj.name, target_source, c) for c in match.target_columns]
        if obj.key and obj.key.from_:
            used += [(obj.name, obj.from_, c) for c in ([obj.key.from_] if isinstance(obj.key.from_, str) else obj.key.from_)]
        if obj.key and obj.key.hash_of:
            used += [(obj.name, obj.from_, c) for c in obj.key.hash_of]
        if obj.when:
            used += [(obj.name, obj.from_, c) for c in obj.when.columns()]
        if obj.attachment:
            files = obj.attachment
            used += [(obj.name, obj.from_, c) for c in (files.file, files.size, *files.name.columns) if c]
    return used


def test_every_column_a_mapping_reads_is_in_the_documented_export(mapping: Mapping) -> None:
    missing = [(o, s, c) for o, s, c in _columns_read(mapping) if c not in _headers(mapping, s)]
    assert not missing, f"columns not in the bundled sample export: {missing}"


def test_mapping_schema_json_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == json_schema_text(), (
        "mappings/schema.json is stale: run python -m migration_pipeline.engine.mapping"
    )


def test_a_broken_mapping_is_reported_with_its_file_name(tmp_path: Path) -> None:
    good = ALLCLIENTS.read_text(encoding="utf-8")
    broken = tmp_path / "broken__twenty.yaml"
    broken.write_text(good.replace("twenty_object: person", "twenty_object: persn", 1), encoding="utf-8")
    with pytest.raises(MappingError, match=r"broken__twenty.yaml.*unknown Twenty object 'persn'"):
        load_mapping(broken)


def test_unknown_keys_are_refused_not_ignored(tmp_path: Path) -> None:
    good = ALLCLIENTS.read_text(encoding="utf-8")
    broken = tmp_path / "typo__twenty.yaml"
    broken.write_text(good.replace("on_unresolved: hold", "on_unresolvd: hold", 1), encoding="utf-8")
    with pytest.raises(MappingError, match="on_unresolvd"):
        load_mapping(broken)


@pytest.mark.parametrize(("path", "old", "new", "problem"), [
    (ACTIONSTEP, "{path: participants, key: id", "{file: participants.json, key: id", "a rest source's objects need `path:`"),
    (ALLCLIENTS, "{file: Users.csv", "{path: users", "a files source's objects need `file:`"),
    (ACTIONSTEP, '{column: isCompany, equals: "true"}', "{column: isCompany}", "needs exactly one of `equals:` or `one_of:`"),
    (ACTIONSTEP, '{column: isCompany, equals: "true"}', '{present: email, setting: x, equals: "true"}', "exactly one of `present:`"),
    (ACTIONSTEP, "through: {object: matter_values", "through: {object: matter_valuez", "unknown source object 'matter_valuez'"),
    (ACTIONSTEP, "type: MULTI_SELECT", "type: TEXT", "`options_from` is for SELECT and MULTI_SELECT fields"),
])
def test_the_rest_and_condition_vocabulary_is_strict(tmp_path: Path, path: Path, old: str, new: str, problem: str) -> None:
    good = path.read_text(encoding="utf-8")
    assert old in good
    broken = tmp_path / "broken__twenty.yaml"
    broken.write_text(good.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(MappingError, match=re.escape(problem)):
        load_mapping(broken)
