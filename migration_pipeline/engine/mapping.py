"""The mapping DSL: pydantic models for `mappings/<slug>__twenty.yaml`.

A mapping says which source files/endpoints exist, and for every Twenty object which source
object feeds it, how its stable key is built, which fields come from which columns through which
named transform, and how it relates to other mapped objects. It never holds code or secrets.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from migration_pipeline.core.twenty_names import name_problem, standard_fields
from migration_pipeline.destinations.twenty.objects import (
    ATTACHMENT,
    ATTACHMENT_TARGETS,
    JUNCTIONS,
    STANDARD_OBJECTS,
    STANDARD_TARGETS,
    Catalogue,
    TwentyObject,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


Columns = str | list[str]


def as_columns(columns: Columns) -> tuple[str, ...]:
    return (columns,) if isinstance(columns, str) else tuple(columns)


class Through(_Strict):
    """Replace the value by a column of another source object (a lookup table such as users).

    `where` keeps only the rows whose columns have these values (e.g. one field of a table of
    field values). When several rows carry the key, `many` says which value is used: the
    `last` row's (default), the `first` row's, the `most_common` value (ties: the first seen),
    or `all` distinct values in row order (for a MULTI_SELECT).
    """

    object: str
    key: str
    value: str
    where: dict[str, str] = Field(default_factory=dict)
    many: Literal["last", "first", "most_common", "all"] = "last"
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


class OptionsFrom(_Strict):
    """Every value of a column of a source object (e.g. the source's list of roles) becomes a
    select option, whether or not a record uses it; the value is the option's label."""

    object: str
    column: str


class CustomField(_Strict):
    """A custom field this mapping needs in Twenty, created through the metadata API."""

    type: Literal["TEXT", "NUMBER", "BOOLEAN", "DATE", "DATE_TIME", "SELECT", "MULTI_SELECT", "CURRENCY"]
    label: str
    description: str = ""
    unique: bool = False
    options_from: OptionsFrom | None = None

    @model_validator(mode="after")
    def _options_for_selects(self) -> CustomField:
        if self.options_from is not None and self.type not in ("SELECT", "MULTI_SELECT"):
            raise ValueError("`options_from` is for SELECT and MULTI_SELECT fields")
        return self


class Condition(_Strict):
    """A test on a source row, or on the settings; exactly one of:

    - `present: Col`: the row has a value in Col;
    - `column: Col` with `equals: v` or `one_of: [v, ...]`: the row's value of Col (as text) is
      v / one of them;
    - `setting: name` with `equals: v`: the source setting has the value v;
    - `all_of: [condition, ...]`: every condition holds.
    """

    present: str | None = None
    column: str | None = None
    setting: str | None = None
    equals: Any = None
    one_of: list[str] | None = None
    all_of: list[Condition] | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        tests = [t for t in (self.present, self.column, self.setting, self.all_of) if t is not None]
        if len(tests) != 1:
            raise ValueError("a condition needs exactly one of `present:`, `column:`, `setting:` or `all_of:`")
        if self.column is not None and (self.one_of is None) == (self.equals is None):
            raise ValueError(f"condition on column {self.column!r} needs exactly one of `equals:` or `one_of:`")
        if self.one_of is not None and self.column is None:
            raise ValueError("`one_of:` tests a `column:`")
        return self

    def columns(self) -> list[str]:
        """Source columns the condition reads."""
        own = [c for c in (self.present, self.column) if c is not None]
        return own + [c for cond in self.all_of or () for c in cond.columns()]


class Exclusion(Condition):
    """Rows of a source object the migration leaves out whatever maps them, e.g. records the
    source marks deleted: `exclude_when: {column: isDeleted, equals: "true", reason: deleted in
    Actionstep}`. They are listed as excluded with `reason` by every object reading them, and
    no lookup or relation finds them."""

    reason: str


class FieldMapping(ValueSpec):
    custom: CustomField | None = None
    on_invalid: Literal["quarantine", "blank"] | None = None
    pick: Literal["most_common", "first"] = "most_common"
    enabled_if: Condition | None = None
    when: Condition | None = None  # a row condition: elsewhere the field is left blank
    # A value Twenty keeps unique (a company domain) already used by an earlier record: hold
    # the record as a probable duplicate (default), keep it with this field blank, or (a
    # person's primary email) keep the value among the composite's additional ones, which
    # Twenty does not keep unique. `blank` and `additional` list the record in field issues.
    on_duplicate: Literal["quarantine", "blank", "additional"] = "quarantine"


class Match(_Strict):
    """One way to find the related source row: compare our columns with the target's columns.

    `through` first replaces our value by a column of a lookup table (e.g. the parent's id in a
    table of relationships between contacts)."""

    from_: Columns = Field(alias="from")
    to: Columns
    transform: str = "text"
    through: Through | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return as_columns(self.from_)

    @property
    def target_columns(self) -> tuple[str, ...]:
        return as_columns(self.to)


class RelationField(_Strict):
    """The custom relation field a relation needs; records of the object itself (a parent
    company) are linked after they are all loaded, and circular chains are left unlinked."""

    label: str
    description: str = ""


class Relation(_Strict):
    """A link to another mapped object, resolved to its Twenty id at load time via the ledger.

    `same_row`: the target was built from this very source row (a company derived from a
    contact's company column). `match`: ordered fallbacks; the first that finds exactly one
    target row wins, several matches count as ambiguous, never as a guess.
    """

    object: str
    same_row: bool = False
    match: list[Match] = Field(default_factory=list)
    # hold: the record waits (quarantined with the reason); null: it loads without the link;
    # unlink: it loads without the link and the reason is listed in field_issues.csv (an
    # optional link whose value names nothing must not cost the record).
    on_unresolved: Literal["hold", "null", "unlink"] = "null"
    # A relation Twenty does not have (a company's parent company): created as a custom
    # MANY_TO_ONE relation field before the load.
    custom: RelationField | None = None

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


PivotType = Literal["TEXT", "NUMBER", "CURRENCY", "DATE", "DATE_TIME", "SELECT", "MULTI_SELECT", "BOOLEAN"]


class PivotDefinitions(_Strict):
    """The source object defining the pivoted fields, one row per field: its key (what the
    values' `field` column holds), name, label and data type. `where` keeps only some
    definitions (values of the others are not pivoted)."""

    object: str
    key: str = "id"
    name: str = "name"
    label: str = "label"
    type: str = "type"
    where: dict[str, str] = Field(default_factory=dict)


class PivotChoices(_Strict):
    """Where the choices of select fields come from: one row per choice, `field` holding the
    definition key, `value` the choice as the source spells it (the option's label)."""

    object: str
    field: str
    value: str


class Pivot(_Strict):
    """Custom fields driven by the data (an entity-attribute-value table), not listed here.

    Each row of `values` is one field's value (as text) for one record: `parent` holds the
    record's `parent_key` value, `field` the definition's key. Every definition kept becomes a
    custom field named `<prefix><Name>` in camelCase, the prefix being the record's
    `prefix_from` column (e.g. the matter type), with the Twenty type `types` gives for its
    source data type; the value is cast by that type (invalid -> left blank, a field issue).
    Definitions of a type `types` does not name are not migrated (a field issue per value).
    """

    values: str
    parent: str
    parent_key: str = "id"
    field: str
    value: str
    prefix_from: str | None = None
    definitions: PivotDefinitions
    types: dict[str, PivotType] = Field(min_length=1)
    choices: PivotChoices | None = None


class Attachment(_Strict):
    """Each record carries a file, re-uploaded to Twenty as an Attachment on the record built
    from it (Twenty's two-step upload: the file, then the attachment record naming it).

    `file` is the column holding the source's own file reference (what the source's client
    downloads), `name` the attachment's name, `size` the column holding the size in bytes the
    source declares. A file over `defaults.max_upload_bytes` is never downloaded: it is listed
    (excluded, with the reason) and the record still migrates; `notice_in`, a text field of the
    record, then says that the file was not attached and why. `what` names a record in that
    reason ("download it from Actionstep (document 30017)").
    """

    file: str
    name: ValueSpec
    size: str | None = None
    what: str = "record"
    notice_in: str | None = None


class CustomObject(_Strict):
    """A Twenty custom object the mapping needs (key: its nameSingular, camelCase), created
    through the metadata API before any record moves. Mapped objects write to it with
    `twenty_object: <name>`; their `relations:` (columns named `<field>Id`) become its RELATION
    fields, MANY_TO_ONE to the related record's object, so it loads after those. An object
    related to two others is a junction: how the mapping holds N:N links. Besides `name`
    (built in), a field written to it needs `custom:`, or comes from a `pivot:`."""

    plural: str
    label_singular: str
    label_plural: str
    description: str = ""
    icon: str = "IconBox"


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
    pivot: Pivot | None = None  # custom fields whose set comes from the data
    attachment: Attachment | None = None  # a file per record, uploaded as a Twenty attachment

    @model_validator(mode="after")
    def _keyed(self) -> ObjectMapping:
        if (self.key is None) == (self.dedupe is None):
            raise ValueError(f"object {self.name!r} needs exactly one of `key:` or `dedupe:`")
        if self.pivot is not None and self.dedupe is not None:
            raise ValueError(f"object {self.name!r}: `pivot:` needs a `key:` (one record per source row)")
        if self.twenty_object == ATTACHMENT:
            raise ValueError(f"object {self.name!r}: attachments come from an object's `attachment:` block "
                             "(the file of each record), not from a mapped object")
        if self.attachment is not None:
            if self.dedupe is not None:
                raise ValueError(f"object {self.name!r}: `attachment:` needs a `key:` (one file per source row)")
            if self.twenty_object not in ATTACHMENT_TARGETS:
                raise ValueError(f"object {self.name!r}: Twenty attaches files to {', '.join(ATTACHMENT_TARGETS)}, "
                                 f"not to {self.twenty_object}")
            notice = self.attachment.notice_in
            if notice is not None and notice not in self.fields:
                raise ValueError(f"object {self.name!r}: attachment.notice_in {notice!r} is not one of its fields")
        return self


class SourceObject(_Strict):
    """A file of an export (`kind: files`)."""

    file: str
    key: str | None = None
    description: str = ""
    exclude_when: Exclusion | None = None
    # Detected when not declared: UTF-8 (with or without BOM), cp1252 or latin-1; , ; tab or |.
    encoding: str | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)


class RestObject(_Strict):
    """A resource of a REST API (`kind: rest`), read page by page by the source's client
    resource. `path` is the resource exactly as the API spells it (APIs such as Actionstep's
    are case-sensitive). `include` side-loads related records: link name -> the resource type
    they come back as; each related record's fields are joined onto the row as
    `<link>.<field>` columns (a link holding several ids: their values comma-joined)."""

    path: str
    include: dict[str, str] = Field(default_factory=dict)
    key: str | None = None
    description: str = ""
    exclude_when: Exclusion | None = None  # e.g. records the source marks deleted
    # Export-only: extracted and written to the rebuild package as CSV, never staged or loaded
    # (what Twenty cannot hold, e.g. ledgers); `export_reason` says why, in the package's README.
    export_only: bool = False
    export_reason: str = ""
    # Whether the run can go on without it. A required resource the API refuses (403/404)
    # stops the run; `required: false` (it only feeds the rebuild package or an enrichment)
    # reads it as empty and reports the resource, the status and the reason.
    required: bool = True

    @model_validator(mode="after")
    def _reason_for_export_only(self) -> RestObject:
        if self.export_only and not self.export_reason.strip():
            raise ValueError(f"export-only resource {self.path!r} needs an `export_reason:` (why it is not in Twenty)")
        if self.export_reason and not self.export_only:
            raise ValueError(f"`export_reason:` on {self.path!r} is for `export_only: true` resources")
        return self


class WorkflowChild(_Strict):
    """Records of a source object listed under each root record of the workflow document:
    those whose `link` column holds the root's id (and whose columns have the `where` values)."""

    object: str
    link: str
    where: dict[str, str] = Field(default_factory=dict)
    columns: list[str] = Field(min_length=1)  # shown in workflow.html, in this order


class WorkflowSpec(_Strict):
    """The source's workflow configuration as one document (workflow.json + workflow.html):
    one section per record of `root` (e.g. matter types), each with its `children`."""

    root: str
    title: str = "name"
    columns: list[str] = Field(default_factory=list)
    children: dict[str, WorkflowChild] = Field(default_factory=dict)


class NotExported(_Strict):
    """Something the rebuild package cannot contain (e.g. no documented API), said in its README."""

    what: str
    why: str


class RebuildSpec(_Strict):
    """What the rebuild package holds besides the export-only resources' CSV files."""

    workflow: WorkflowSpec | None = None
    not_exported: list[NotExported] = Field(default_factory=list)


class RequiredSetting(_Strict):
    """A setting nobody may guess (a time zone, a currency): every run states it at its start,
    from `--set`, `<SLUG>__<NAME>`, the export folder's `migration_settings.yaml` or this
    mapping's `settings:`; a run without it stops before anything runs."""

    kind: Literal["timezone", "currency"]
    description: str


class SourceSpec(_Strict):
    slug: str
    label: str
    kind: Literal["files", "rest"]
    # rest: the Dagster resource key of the source's client (default `<slug>_source`).
    resource: str | None = None
    objects: dict[str, SourceObject | RestObject]
    settings: dict[str, Any] = Field(default_factory=dict)
    required_settings: dict[str, RequiredSetting] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _objects_fit_kind(self) -> SourceSpec:
        wanted, spelled = (SourceObject, "`file:`") if self.kind == "files" else (RestObject, "`path:`")
        wrong = [name for name, obj in self.objects.items() if not isinstance(obj, wanted)]
        if wrong:
            raise ValueError(f"a {self.kind} source's objects need {spelled}: {', '.join(wrong)}")
        if self.resource is not None and self.kind != "rest":
            raise ValueError("`resource:` names the client of a rest source")
        return self


# The largest file we upload by default: 10 MiB, Twenty's `settings.storage.maxFileSize: '10MB'`
# (twenty-server src/engine/constants/settings/index.ts, a code constant, not an environment
# variable). Twenty 2.21 applies it to JSON/form bodies and, in src/main.ts, to graphqlUploadExpress's
# `maxFieldSize` (the non-file parts) and the web app's email-attachment picker (MAX_ATTACHMENT_SIZE);
# the files-field upload itself has no size limit (an 11 MB file was accepted: examples-2.md
# section 8) and is held in the server's memory whole. So this is our choice, in line with what
# Twenty's own UI allows; a data engineer raises or lowers it with `max_upload_bytes` in the
# mapping's `defaults`.
TWENTY_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class Defaults(_Strict):
    external_key_field: str
    external_key_label: str
    on_invalid: Literal["quarantine", "blank"] = "quarantine"
    max_quarantine_ratio: float = 0.25
    # Files over this are not uploaded (attachments); they are listed with the reason instead.
    # Default: Twenty's 10 MB `settings.storage.maxFileSize` (see TWENTY_MAX_UPLOAD_BYTES).
    max_upload_bytes: int = Field(default=TWENTY_MAX_UPLOAD_BYTES, gt=0)


class Mapping(_Strict):
    version: Literal[1]
    source: SourceSpec
    defaults: Defaults
    custom_objects: dict[str, CustomObject] = Field(default_factory=dict)
    objects: list[ObjectMapping]
    rebuild: RebuildSpec | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Mapping:
        names = {obj.name for obj in self.objects}
        if len(names) != len(self.objects):
            raise ValueError("object names must be unique")
        exported = set(self.export_only_objects)
        for obj in self.objects:
            if obj.from_ not in self.source.objects:
                raise ValueError(f"object {obj.name!r} reads unknown source object {obj.from_!r}")
            if obj.from_ in exported:
                raise ValueError(f"object {obj.name!r} reads {obj.from_!r}, which is export-only (never staged)")
            for field, rel in {**obj.relations, **obj.targets}.items():
                if rel.object not in names:
                    raise ValueError(f"{obj.name}.{field} relates to unknown object {rel.object!r}")
                through = [m.through.object for m in rel.match if m.through]
                _check_reads(f"{obj.name}.{field}", through, self.source.objects, exported)
            for field, spec in obj.fields.items():
                looked_up = [spec.through.object] if spec.through else []
                looked_up += [spec.custom.options_from.object] if spec.custom and spec.custom.options_from else []
                _check_reads(f"{obj.name}.{field}", looked_up, self.source.objects, exported)
            if obj.attachment is not None and self.source.kind != "rest":
                raise ValueError(f"object {obj.name!r}: `attachment:` needs a rest source (its client downloads the files)")
            if obj.pivot is not None:
                pivot = obj.pivot
                read = [pivot.values, pivot.definitions.object] + ([pivot.choices.object] if pivot.choices else [])
                _check_reads(f"{obj.name}.pivot", read, self.source.objects, exported)
        _check_twenty_objects(self)
        _check_custom_objects(self)
        _check_field_names(self)
        workflow = self.rebuild.workflow if self.rebuild else None
        if workflow is not None:
            for where, source_object in [("root", workflow.root)] + [
                    (f"children.{name}", child.object) for name, child in workflow.children.items()]:
                if source_object not in self.source.objects:
                    raise ValueError(f"rebuild.workflow.{where} names unknown source object {source_object!r}")
        return self

    @property
    def export_only_objects(self) -> list[str]:
        """Source objects extracted only for the rebuild package, in declared order."""
        return [name for name, spec in self.source.objects.items() if getattr(spec, "export_only", False)]

    @property
    def migrated_source_objects(self) -> list[str]:
        """Source objects the stage layer reads (every one that is not export-only)."""
        return [name for name in self.source.objects if name not in self.export_only_objects]

    @property
    def has_rebuild_package(self) -> bool:
        return bool(self.export_only_objects) or bool(self.rebuild and self.rebuild.workflow)

    @property
    def slug(self) -> str:
        return self.source.slug

    def settings(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**self.source.settings, **(overrides or {})}

    def enabled_objects(self, settings: dict[str, Any]) -> list[ObjectMapping]:
        return [obj for obj in self.objects if enabled(obj.enabled_if, settings)]

    def object(self, name: str) -> ObjectMapping:
        return next(obj for obj in self.objects if obj.name == name)

    @cached_property
    def catalogue(self) -> Catalogue:
        """The Twenty objects this mapping can write: the standard ones and its custom objects,
        each custom one ordered after the objects its relations point at."""
        depth: dict[str, int] = {}

        def order(name: str, path: tuple[str, ...]) -> int:
            if name in STANDARD_OBJECTS:
                return STANDARD_OBJECTS[name].order
            if name in path:
                raise ValueError(f"custom objects relate to each other in a cycle: {' -> '.join(path + (name,))}")
            if name not in depth:
                parents = {self.object(rel.object).twenty_object
                           for obj in self.objects if obj.twenty_object == name for rel in obj.relations.values()}
                depth[name] = 1 + max((order(p, path + (name,)) for p in parents - {name}), default=-1)
            return depth[name]

        return Catalogue(
            TwentyObject(name, spec.plural, spec.label_plural, order=order(name, ()), custom=True)
            for name, spec in self.custom_objects.items()
        )


CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def _check_custom_objects(mapping: Mapping) -> None:
    taken = {name for obj in STANDARD_OBJECTS.values() for name in (obj.singular, obj.plural)}
    for name, spec in mapping.custom_objects.items():
        for word in (name, spec.plural):
            problem = name_problem(word)
            if problem:
                raise ValueError(f"custom object {name!r}: the name {word!r} {problem} (Twenty refuses it)")
            if word in taken:
                raise ValueError(f"custom object {name!r}: the name {word!r} is taken by another object")
            taken.add(word)
        if not any(obj.twenty_object == name for obj in mapping.objects):
            raise ValueError(f"custom object {name!r} is declared but no object has `twenty_object: {name}`")


def _check_twenty_objects(mapping: Mapping) -> None:
    """Every mapped object writes a known Twenty object, in a way that object can take."""
    known = sorted({*STANDARD_OBJECTS, *mapping.custom_objects})
    custom = mapping.custom_objects
    for obj in mapping.objects:
        if obj.twenty_object not in known:
            raise ValueError(f"object {obj.name!r}: unknown Twenty object {obj.twenty_object!r}; known: {known} "
                             "(declare a custom object under `custom_objects:`)")
        if obj.targets and obj.twenty_object not in JUNCTIONS:
            raise ValueError(f"object {obj.name!r}: `targets:` are for notes and tasks ({', '.join(JUNCTIONS)})")
        targetable = (*STANDARD_TARGETS, *custom)
        unknown = sorted(set(obj.targets) - set(targetable))
        if unknown:
            raise ValueError(f"object {obj.name!r}: unknown target kinds {unknown}; known: {sorted(targetable)}")
        unnamed = [c for c in created_relations(obj, custom) if not (c.endswith("Id") and CAMEL_CASE.match(c[:-2] or "-"))]
        if unnamed:
            raise ValueError(f"object {obj.name!r}: relation columns of a custom object are named <field>Id "
                             f"(the RELATION field's join column), as are relations declared `custom:`: {unnamed}")
        to_custom = [c for c, rel in obj.relations.items() if mapping.object(rel.object).twenty_object in custom]
        if obj.twenty_object not in custom:
            if to_custom:
                raise ValueError(f"object {obj.name!r}: relations {to_custom} point at a custom object from a "
                                 "standard one; declare the relation on the custom object's side")
            continue
        plain = [f for f, spec in obj.fields.items() if spec.custom is None and f != "name"]
        if plain:
            raise ValueError(f"object {obj.name!r} writes the custom object {obj.twenty_object!r}: fields {plain} "
                             "need `custom:` (a custom object has only `name` built in)")
    mapping.catalogue  # noqa: B018  (raises on relation cycles between custom objects)


def _check_field_names(mapping: Mapping) -> None:
    """Every field name the mapping makes Twenty create is one Twenty accepts (checked before
    anything runs): custom fields, relation fields, the fields keeping an owner's original
    value, the external key. A new field may not take the name of a field Twenty already has."""
    custom = mapping.custom_objects
    key_problem = name_problem(mapping.defaults.external_key_field)
    if key_problem:
        raise ValueError(f"defaults.external_key_field {mapping.defaults.external_key_field!r} {key_problem}")
    for obj in mapping.objects:
        new = {name: "custom field" for name, spec in obj.fields.items() if spec.custom is not None}
        new |= {column.removesuffix("Id"): "relation field" for column in created_relations(obj, custom)}
        new |= {member.keep_original_in: "field keeping the original owner" for member in obj.members.values()}
        for name, what in new.items():
            problem = name_problem(name)
            if problem is None and name in standard_fields(obj.twenty_object):
                problem = f"is already a field of Twenty's {obj.twenty_object}"
            if problem:
                raise ValueError(f"object {obj.name!r} (Twenty {obj.twenty_object}), {what} {name!r}: the name "
                                 f"{name!r} {problem}; rename it in the mapping")


def created_relations(obj: ObjectMapping, custom_objects: Collection[str]) -> dict[str, Relation]:
    """The relations Twenty gets a new RELATION field for: every relation of a custom object, and
    those a standard object's mapping declares `custom:` (a company's parent company)."""
    return {c: rel for c, rel in obj.relations.items() if obj.twenty_object in custom_objects or rel.custom is not None}


def _check_reads(where: str, source_objects: list[str], known: dict[str, Any], exported: set[str]) -> None:
    for source_object in source_objects:
        if source_object not in known:
            raise ValueError(f"{where} reads unknown source object {source_object!r}")
        if source_object in exported:
            raise ValueError(f"{where} reads {source_object!r}, which is export-only")


def enabled(cond: Condition | None, settings: dict[str, Any]) -> bool:
    return cond is None or settings.get(cond.setting or "") == cond.equals


def unmet(cond: Condition | None, row: dict[str, Any], settings: dict[str, Any]) -> str | None:
    """Why a source row fails a row condition (a reason an operator can read), or None if it holds."""
    if cond is None:
        return None
    if cond.all_of is not None:
        return next((why for c in cond.all_of if (why := unmet(c, row, settings)) is not None), None)
    if cond.setting is not None:
        return None if enabled(cond, settings) else f"setting {cond.setting} is not {cond.equals!r}"
    column = cond.present if cond.present is not None else cond.column
    raw = row.get(column or "")
    value = None if raw is None or (isinstance(raw, float) and raw != raw) else str(raw).strip() or None
    if cond.present is not None:
        return None if value is not None else f"no value in {cond.present}"
    if cond.one_of is not None:
        return None if value in cond.one_of else f"{column} is {value!r}, not one of {', '.join(cond.one_of)}"
    wanted = str(cond.equals).lower() if isinstance(cond.equals, bool) else str(cond.equals)  # YAML true -> "true"
    return None if value == wanted else f"{column} is {value!r}, not {wanted!r}"


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
