"""The mapping DSL: pydantic models for `mappings/<slug>__twenty.yaml`.

A mapping says which source files/endpoints exist, and for every Twenty object which source
object feeds it, how its stable key is built, which fields come from which columns through which
named transform, and how it relates to other mapped objects. It never holds code or secrets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from migration_pipeline.destinations.twenty.objects import TWENTY_OBJECTS, TARGET_FIELDS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


Columns = str | list[str]


def as_columns(columns: Columns) -> tuple[str, ...]:
    return (columns,) if isinstance(columns, str) else tuple(columns)


class Through(_Strict):
    """Replace the value by a column of another source object (a lookup table such as users)."""

    object: str
    key: str
    value: str
    first_row_for: list[str] = Field(default_factory=list)  # values meaning "the table's first row"


class ValueSpec(_Strict):
    """Where one value comes from: source column(s), then at most one named transform."""

    from_: Columns = Field(alias="from")
    transform: str = "text"
    args: dict[str, Any] = Field(default_factory=dict)
    through: Through | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return as_columns(self.from_)


class CustomField(_Strict):
    """A custom field this mapping needs in Twenty, created through the metadata API."""

    type: Literal["TEXT", "NUMBER", "BOOLEAN", "DATE", "DATE_TIME", "SELECT", "MULTI_SELECT"]
    label: str
    description: str = ""
    unique: bool = False


class Condition(_Strict):
    present: str | None = None
    setting: str | None = None
    equals: Any = None


class FieldMapping(ValueSpec):
    custom: CustomField | None = None
    on_invalid: Literal["quarantine", "blank"] | None = None
    pick: Literal["most_common", "first"] = "most_common"
    enabled_if: Condition | None = None


class Match(_Strict):
    """One way to find the related source row: compare our columns with the target's columns."""

    from_: Columns = Field(alias="from")
    to: Columns
    transform: str = "text"

    @property
    def columns(self) -> tuple[str, ...]:
        return as_columns(self.from_)

    @property
    def target_columns(self) -> tuple[str, ...]:
        return as_columns(self.to)


class Relation(_Strict):
    """A link to another mapped object, resolved to its Twenty id at load time via the ledger.

    `same_row`: the target was built from this very source row (a company derived from a
    contact's company column). `match`: ordered fallbacks; the first that finds exactly one
    target row wins, several matches count as ambiguous, never as a guess.
    """

    object: str
    same_row: bool = False
    match: list[Match] = Field(default_factory=list)
    on_unresolved: Literal["hold", "null"] = "null"

    @model_validator(mode="after")
    def _one_way(self) -> Relation:
        if self.same_row == bool(self.match):
            raise ValueError("a relation needs exactly one of `same_row: true` or `match:`")
        return self


class MemberRelation(_Strict):
    """A workspace member resolved by email; unresolved -> the configured fallback member."""

    email: ValueSpec
    keep_original_in: str


class KeySpec(_Strict):
    """How the stable external key of a record is built (it must survive a re-export)."""

    from_: Columns | None = Field(default=None, alias="from")
    hash_of: list[str] | None = None
    suffix: str = ""

    @model_validator(mode="after")
    def _one_way(self) -> KeySpec:
        if (self.from_ is None) == (self.hash_of is None):
            raise ValueError("a key needs exactly one of `from:` or `hash_of:`")
        return self


class Dedupe(_Strict):
    """Build one record per entity found in a free-text column (e.g. companies).

    Rows with the same `by` key are one entity; `also_by` (e.g. an email domain) links rows that
    have no usable `by` value to an entity, only when exactly one entity carries it.
    """

    by: ValueSpec
    also_by: ValueSpec | None = None


class ObjectMapping(_Strict):
    name: str
    twenty_object: str
    from_: str = Field(alias="from")
    description: str = ""
    key: KeySpec | None = None
    dedupe: Dedupe | None = None
    when: Condition | None = None
    enabled_if: Condition | None = None
    fields: dict[str, FieldMapping] = Field(default_factory=dict)
    relations: dict[str, Relation] = Field(default_factory=dict)
    members: dict[str, MemberRelation] = Field(default_factory=dict)
    targets: dict[str, Relation] = Field(default_factory=dict)

    @field_validator("twenty_object")
    @classmethod
    def _known_object(cls, value: str) -> str:
        if value not in TWENTY_OBJECTS:
            raise ValueError(f"unknown Twenty object {value!r}; known: {sorted(TWENTY_OBJECTS)}")
        return value

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, value: dict[str, Relation]) -> dict[str, Relation]:
        unknown = set(value) - set(TARGET_FIELDS)
        if unknown:
            raise ValueError(f"unknown target kinds {sorted(unknown)}; known: {sorted(TARGET_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _keyed(self) -> ObjectMapping:
        if (self.key is None) == (self.dedupe is None):
            raise ValueError(f"object {self.name!r} needs exactly one of `key:` or `dedupe:`")
        return self


class SourceObject(_Strict):
    file: str
    key: str | None = None
    description: str = ""


class SourceSpec(_Strict):
    slug: str
    label: str
    kind: Literal["files"]
    objects: dict[str, SourceObject]
    settings: dict[str, Any] = Field(default_factory=dict)


class Defaults(_Strict):
    external_key_field: str
    external_key_label: str
    on_invalid: Literal["quarantine", "blank"] = "quarantine"
    max_quarantine_ratio: float = 0.25


class Mapping(_Strict):
    version: Literal[1]
    source: SourceSpec
    defaults: Defaults
    objects: list[ObjectMapping]

    @model_validator(mode="after")
    def _references_resolve(self) -> Mapping:
        names = {obj.name for obj in self.objects}
        if len(names) != len(self.objects):
            raise ValueError("object names must be unique")
        for obj in self.objects:
            if obj.from_ not in self.source.objects:
                raise ValueError(f"object {obj.name!r} reads unknown source object {obj.from_!r}")
            for field, rel in {**obj.relations, **obj.targets}.items():
                if rel.object not in names:
                    raise ValueError(f"{obj.name}.{field} relates to unknown object {rel.object!r}")
        return self

    @property
    def slug(self) -> str:
        return self.source.slug

    def settings(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**self.source.settings, **(overrides or {})}

    def enabled_objects(self, settings: dict[str, Any]) -> list[ObjectMapping]:
        return [obj for obj in self.objects if enabled(obj.enabled_if, settings)]

    def object(self, name: str) -> ObjectMapping:
        return next(obj for obj in self.objects if obj.name == name)


def enabled(cond: Condition | None, settings: dict[str, Any]) -> bool:
    return cond is None or settings.get(cond.setting or "") == cond.equals


def load_mapping(path: Path) -> Mapping:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'top level'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise MappingError(f"{path.name}: {problems}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: not valid YAML: {exc}") from None


def load_mappings(folder: Path) -> list[Mapping]:
    return [load_mapping(path) for path in sorted(folder.glob("*__twenty.yaml"))]


class MappingError(ValueError):
    """A mapping file that does not validate; the message names the file and the problem."""


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "mappings" / "schema.json"


def json_schema_text() -> str:
    """The JSON Schema of mapping files, for editor autocompletion (mappings/schema.json)."""
    import json

    return json.dumps(Mapping.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m migration_pipeline.engine.mapping  -> regenerates schema.json
    SCHEMA_PATH.write_text(json_schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
