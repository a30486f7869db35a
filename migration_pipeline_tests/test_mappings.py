"""Conformance of every mapping file: it validates, it reads only columns the documented
export has, and the editor schema is current."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.engine.mapping import SCHEMA_PATH, Mapping, MappingError, json_schema_text, load_mapping
from migration_pipeline.resources import SAMPLE_DATA

MAPPING_FILES = sorted(MAPPINGS_DIR.glob("*__twenty.yaml"))


@pytest.fixture(params=MAPPING_FILES, ids=lambda p: p.name)
def mapping(request: pytest.FixtureRequest) -> Mapping:
    return load_mapping(request.param)


def _headers(mapping: Mapping, source_object: str) -> set[str]:
    path = SAMPLE_DATA / mapping.slug / mapping.source.objects[source_object].file
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return set(next(csv.reader(handle)))


def _columns_read(mapping: Mapping) -> list[tuple[str, str, str]]:
    """(object name, source object, column) for every column a mapping reads."""
    used = []
    for obj in mapping.objects:
        specs = list(obj.fields.values()) + [m.email for m in obj.members.values()]
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
        if obj.when and obj.when.present:
            used.append((obj.name, obj.from_, obj.when.present))
    return used


def test_every_column_a_mapping_reads_is_in_the_documented_export(mapping: Mapping) -> None:
    missing = [(o, s, c) for o, s, c in _columns_read(mapping) if c not in _headers(mapping, s)]
    assert not missing, f"columns not in the bundled sample export: {missing}"


def test_mapping_schema_json_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == json_schema_text(), (
        "mappings/schema.json is stale: run python -m migration_pipeline.engine.mapping"
    )


def test_a_broken_mapping_is_reported_with_its_file_name(tmp_path: Path) -> None:
    good = MAPPING_FILES[0].read_text(encoding="utf-8")
    broken = tmp_path / "broken__twenty.yaml"
    broken.write_text(good.replace("twenty_object: person", "twenty_object: persn", 1), encoding="utf-8")
    with pytest.raises(MappingError, match=r"broken__twenty.yaml.*unknown Twenty object 'persn'"):
        load_mapping(broken)


def test_unknown_keys_are_refused_not_ignored(tmp_path: Path) -> None:
    good = MAPPING_FILES[0].read_text(encoding="utf-8")
    broken = tmp_path / "typo__twenty.yaml"
    broken.write_text(good.replace("on_unresolved: hold", "on_unresolvd: hold", 1), encoding="utf-8")
    with pytest.raises(MappingError, match="on_unresolvd"):
        load_mapping(broken)
