"""Metadata model of the fake Twenty server: objects, fields and the standard 2.21 workspace.

Field lists follow `shared/twenty-contract/core-openapi.json` and section 0 of `examples.md`.
Standard metadata ids are uuid5-derived, so they are stable across instances and resets.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_NAMESPACE = uuid.UUID("6f0c3c55-2c1b-4b0e-9d7e-7a3f0d1e2a10")
WORKSPACE_ID = str(uuid.uuid5(_NAMESPACE, "workspace"))
APPLICATION_ID = str(uuid.uuid5(_NAMESPACE, "application"))

MANY_TO_ONE = "MANY_TO_ONE"
ONE_TO_MANY = "ONE_TO_MANY"

# Composite types: subfield -> (kind, empty value). Kinds drive validation and filtering.
COMPOSITES: dict[str, dict[str, tuple[str, Any]]] = {
    "FULL_NAME": {"firstName": ("text", ""), "lastName": ("text", "")},
    "EMAILS": {"primaryEmail": ("text", ""), "additionalEmails": ("string_list", [])},
    "PHONES": {
        "primaryPhoneNumber": ("text", ""),
        "primaryPhoneCountryCode": ("text", ""),
        "primaryPhoneCallingCode": ("text", ""),
        "additionalPhones": ("object_list", []),
    },
    "LINKS": {
        "primaryLinkLabel": ("text", ""),
        "primaryLinkUrl": ("text", ""),
        "secondaryLinks": ("object_list", []),
    },
    "ADDRESS": {
        "addressStreet1": ("text", ""),
        "addressStreet2": ("text", ""),
        "addressCity": ("text", ""),
        "addressPostcode": ("text", ""),
        "addressState": ("text", ""),
        "addressCountry": ("text", ""),
        "addressLat": ("number", None),
        "addressLng": ("number", None),
    },
    "CURRENCY": {"amountMicros": ("number", None), "currencyCode": ("text", None)},
    # Assumption: an empty rich text reads back as nulls (the contract only shows filled bodies).
    "RICH_TEXT": {"blocknote": ("text", None), "markdown": ("text", None)},
    "ACTOR": {
        "source": ("text", "API"),
        "workspaceMemberId": ("text", None),
        "name": ("text", ""),
        "context": ("json", {}),
    },
}

# The subfield a unique index covers on composite fields (Twenty indexes the primary value).
UNIQUE_SUBFIELD = {"EMAILS": "primaryEmail", "LINKS": "primaryLinkUrl", "PHONES": "primaryPhoneNumber"}

SCALAR_TYPES = {"TEXT", "NUMBER", "BOOLEAN", "DATE", "DATE_TIME", "SELECT", "MULTI_SELECT", "UUID", "FILES", "POSITION"}
CUSTOM_FIELD_TYPES = (SCALAR_TYPES - {"FILES", "POSITION"}) | (COMPOSITES.keys() - {"ACTOR"}) | {"RELATION"}
OPTION_VALUE_PATTERN = re.compile(r"^[A-Z0-9]+(_[A-Z0-9]+)*$")
NAME_PATTERN = re.compile(r"^[a-z][a-zA-Z0-9]*$")


_last_stamp = datetime.min.replace(tzinfo=UTC)
_stamp_lock = threading.Lock()


def now_iso() -> str:
    """Now, in Twenty's millisecond format, and always later than the previous stamp: two writes
    within one millisecond (a soft delete, then another) must still be told apart by time."""
    global _last_stamp
    with _stamp_lock:
        _last_stamp = max(datetime.now(UTC), _last_stamp + timedelta(milliseconds=1))
        return _last_stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, ".".join(parts)))


def capitalize_first(name: str) -> str:
    return name[:1].upper() + name[1:]


@dataclass
class FieldMeta:
    id: str
    object_id: str
    name: str
    type: str
    label: str
    description: str | None = None
    icon: str | None = None
    is_nullable: bool = True
    is_unique: bool = False
    is_active: bool = True
    is_custom: bool = False
    is_system: bool = False
    default_value: Any = None
    options: list[dict[str, Any]] | None = None
    settings: dict[str, Any] | None = None
    relation_target_object_id: str | None = None
    relation_target_field_id: str | None = None
    # One target of a morph relation (noteTarget.targetPerson ...): a RELATION for records,
    # reported as MORPH_RELATION by the metadata API, as Twenty does.
    morph: bool = False
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def relation_type(self) -> str | None:
        return (self.settings or {}).get("relationType") if self.type == "RELATION" else None

    @property
    def column(self) -> str | None:
        """Name of the record key holding this field's value; None for ONE_TO_MANY relations."""
        if self.type != "RELATION":
            return self.name
        return f"{self.name}Id" if self.relation_type == MANY_TO_ONE else None

    @property
    def option_values(self) -> list[str]:
        return [option["value"] for option in self.options or []]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "universalIdentifier": self.id,
            "type": "MORPH_RELATION" if self.morph else self.type,
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "icon": self.icon,
            "isActive": self.is_active,
            "isCustom": self.is_custom,
            "isSystem": self.is_system,
            "isUIEditable": not self.is_system,
            "isUIReadOnly": self.is_system,
            "isNullable": self.is_nullable,
            "isUnique": self.is_unique,
            "isLabelSyncedWithName": False,
            "defaultValue": copy.deepcopy(self.default_value),
            "options": copy.deepcopy(self.options),
            "settings": copy.deepcopy(self.settings),
            "objectMetadataId": self.object_id,
            "relationTargetObjectMetadataId": self.relation_target_object_id,
            "relationTargetFieldMetadataId": self.relation_target_field_id,
            "workspaceId": WORKSPACE_ID,
            "applicationId": APPLICATION_ID,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass
class ObjectMeta:
    id: str
    name_singular: str
    name_plural: str
    label_singular: str
    label_plural: str
    description: str | None = None
    icon: str | None = None
    is_custom: bool = False
    is_active: bool = True
    fields: dict[str, FieldMeta] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def table_name(self) -> str:
        """Postgres table name, as quoted in Twenty's raw constraint errors."""
        return f"_{self.name_singular}" if self.is_custom else self.name_singular

    def columns(self) -> dict[str, FieldMeta]:
        """Active record keys (relation FKs as `<name>Id`) mapped to their field."""
        return {f.column: f for f in self.fields.values() if f.is_active and f.column is not None}

    def label_identifier(self) -> FieldMeta | None:
        return self.fields.get("name") or self.fields.get("title")

    def to_json(self) -> dict[str, Any]:
        label_field = self.label_identifier()
        return {
            "id": self.id,
            "universalIdentifier": self.id,
            "nameSingular": self.name_singular,
            "namePlural": self.name_plural,
            "labelSingular": self.label_singular,
            "labelPlural": self.label_plural,
            "description": self.description,
            "icon": self.icon,
            "isCustom": self.is_custom,
            "isActive": self.is_active,
            "isSystem": False,
            "isRemote": False,
            "isSearchable": True,
            "isUIEditable": True,
            "isUICreatable": True,
            "isUIReadOnly": False,
            "isLabelSyncedWithName": False,
            "labelIdentifierFieldMetadataId": label_field.id if label_field else None,
            "imageIdentifierFieldMetadataId": None,
            "workspaceId": WORKSPACE_ID,
            "applicationId": APPLICATION_ID,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "fields": [f.to_json() for f in self.fields.values()],
        }


def quoted(value: str) -> str:
    """Twenty stores text default values SQL-quoted, e.g. "'WEB'"."""
    return f"'{value}'"


def unquoted(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if isinstance(value, list):
        return [unquoted(item) for item in value]
    if isinstance(value, dict):
        return {key: unquoted(item) for key, item in value.items()}
    return value


def make_options(values: list[str]) -> list[dict[str, Any]]:
    colors = ["blue", "green", "red", "purple", "orange", "turquoise", "sky", "yellow"]
    return [
        {"id": str(uuid.uuid4()), "value": value, "label": value.replace("_", " ").title(),
         "color": colors[position % len(colors)], "position": position}
        for position, value in enumerate(values)
    ]


def system_fields(object_id: str, id_factory: Any) -> list[FieldMeta]:
    specs = [
        ("id", "UUID", "Id", False, "uuid"),
        ("createdAt", "DATE_TIME", "Creation date", False, "now"),
        ("updatedAt", "DATE_TIME", "Last update", False, "now"),
        ("deletedAt", "DATE_TIME", "Deleted", True, None),
        ("position", "POSITION", "Position", True, None),
        ("createdBy", "ACTOR", "Created by", False, {"name": "''", "source": "'MANUAL'"}),
        ("updatedBy", "ACTOR", "Updated by", False, {"name": "''", "source": "'MANUAL'"}),
    ]
    return [
        FieldMeta(id=id_factory(name), object_id=object_id, name=name, type=type_, label=label,
                  is_nullable=nullable, is_system=True, default_value=default)
        for name, type_, label, nullable, default in specs
    ]


@dataclass(frozen=True)
class _Field:
    name: str
    type: str
    label: str
    default: Any = None
    options: tuple[str, ...] = ()
    unique: bool = False


@dataclass(frozen=True)
class _Relation:
    """A MANY_TO_ONE relation; `inverse` is the ONE_TO_MANY field created on the target."""

    name: str
    target: str
    inverse: str
    on_delete: str = "SET_NULL"
    morph: bool = False  # one target of the holder's morph relation (`target<Object>`)


_TARGET_RELATIONS = ("person", "company", "opportunity")

_STANDARD_OBJECTS: list[tuple[str, str, str, str, list[_Field | _Relation]]] = [
    ("company", "companies", "Company", "Companies", [
        _Field("name", "TEXT", "Name"),
        _Field("domainName", "LINKS", "Domain", unique=True),
        _Field("address", "ADDRESS", "Address"),
        _Field("linkedinLink", "LINKS", "Linkedin"),
        _Field("annualRevenue", "CURRENCY", "Annual Revenue"),
        _Relation("accountOwner", "workspaceMember", "accountOwnerForCompanies"),
    ]),
    ("person", "people", "Person", "People", [
        _Field("name", "FULL_NAME", "Name"),
        _Field("emails", "EMAILS", "Emails", unique=True),
        _Field("linkedinLink", "LINKS", "Linkedin"),
        _Field("jobTitle", "TEXT", "Job Title"),
        _Field("phones", "PHONES", "Phones"),
        _Field("avatarUrl", "TEXT", "Avatar"),
        _Field("avatarFile", "FILES", "Avatar File"),
        _Relation("company", "company", "people"),
    ]),
    ("opportunity", "opportunities", "Opportunity", "Opportunities", [
        _Field("name", "TEXT", "Name"),
        _Field("amount", "CURRENCY", "Amount"),
        _Field("closeDate", "DATE_TIME", "Close date"),
        _Field("stage", "SELECT", "Stage", quoted("NEW"),
               ("NEW", "SCREENING", "MEETING", "PROPOSAL", "CUSTOMER")),
        _Relation("company", "company", "opportunities"),
        _Relation("pointOfContact", "person", "pointOfContactForOpportunities"),
        _Relation("owner", "workspaceMember", "ownedOpportunities"),
    ]),
    ("note", "notes", "Note", "Notes", [
        _Field("title", "TEXT", "Title"),
        _Field("bodyV2", "RICH_TEXT", "Body"),
    ]),
    ("task", "tasks", "Task", "Tasks", [
        _Field("title", "TEXT", "Title"),
        _Field("bodyV2", "RICH_TEXT", "Body"),
        _Field("dueAt", "DATE_TIME", "Due Date"),
        _Field("status", "SELECT", "Status", quoted("TODO"), ("TODO", "IN_PROGRESS", "DONE")),
        _Relation("assignee", "workspaceMember", "assignedTasks"),
    ]),
    # Assumption: every target relation cascades on destroy (the contract is silent).
    ("noteTarget", "noteTargets", "Note Target", "Note Targets", [
        _Relation("note", "note", "noteTargets", "CASCADE"),
        *[_Relation(f"target{capitalize_first(t)}", t, "noteTargets", "CASCADE", morph=True) for t in _TARGET_RELATIONS],
    ]),
    ("taskTarget", "taskTargets", "Task Target", "Task Targets", [
        _Relation("task", "task", "taskTargets", "CASCADE"),
        *[_Relation(f"target{capitalize_first(t)}", t, "taskTargets", "CASCADE", morph=True) for t in _TARGET_RELATIONS],
    ]),
    ("attachment", "attachments", "Attachment", "Attachments", [
        _Field("name", "TEXT", "Name"),
        _Field("file", "FILES", "File"),
        _Field("fullPath", "TEXT", "Full path"),
        _Field("fileCategory", "SELECT", "File category", quoted("OTHER"),
               ("ARCHIVE", "AUDIO", "IMAGE", "PRESENTATION", "SPREADSHEET", "TEXT_DOCUMENT", "VIDEO", "OTHER")),
        *[_Relation(f"target{capitalize_first(t)}", t, "attachments", "CASCADE", morph=True)
          for t in ("task", "note", *_TARGET_RELATIONS)],
    ]),
    ("workspaceMember", "workspaceMembers", "Workspace Member", "Workspace Members", [
        _Field("name", "FULL_NAME", "Name"),
        _Field("colorScheme", "TEXT", "Color Scheme", quoted("System")),
        _Field("locale", "TEXT", "Language", quoted("en")),
        _Field("avatarUrl", "TEXT", "Avatar Url"),
        _Field("userEmail", "TEXT", "User Email", unique=True),
        _Field("jobTitle", "TEXT", "Job Title"),
        _Field("calendarStartDay", "NUMBER", "Start of the week", 7),
        _Field("userId", "UUID", "User Id"),
        _Field("timeZone", "TEXT", "Time zone", quoted("system")),
        _Field("dateFormat", "SELECT", "Date format", quoted("SYSTEM"),
               ("SYSTEM", "MONTH_FIRST", "DAY_FIRST", "YEAR_FIRST")),
        _Field("timeFormat", "SELECT", "Time format", quoted("SYSTEM"), ("SYSTEM", "HOUR_24", "HOUR_12")),
        _Field("numberFormat", "SELECT", "Number format", quoted("SYSTEM"),
               ("SYSTEM", "COMMAS_AND_DOT", "SPACES_AND_COMMA", "DOTS_AND_COMMA", "APOSTROPHE_AND_DOT")),
    ]),
]


def relation_pair(
    source: ObjectMeta, name: str, target: ObjectMeta, inverse_name: str, *,
    on_delete: str = "SET_NULL", label: str | None = None, inverse_label: str | None = None,
    source_id: str | None = None, inverse_id: str | None = None, is_custom: bool = False,
    description: str | None = None, icon: str | None = None,
) -> tuple[FieldMeta, FieldMeta]:
    """Both sides of a MANY_TO_ONE relation: `source.name` (FK `<name>Id`) and `target.inverse_name`."""
    many = FieldMeta(
        id=source_id or str(uuid.uuid4()), object_id=source.id, name=name, type="RELATION",
        label=label or capitalize_first(name), is_custom=is_custom, description=description, icon=icon,
        settings={"onDelete": on_delete, "relationType": MANY_TO_ONE, "joinColumnName": f"{name}Id"},
        relation_target_object_id=target.id,
    )
    one = FieldMeta(
        id=inverse_id or str(uuid.uuid4()), object_id=target.id, name=inverse_name, type="RELATION",
        label=inverse_label or capitalize_first(inverse_name), is_custom=is_custom,
        settings={"relationType": ONE_TO_MANY}, relation_target_object_id=source.id,
        relation_target_field_id=many.id,
    )
    many.relation_target_field_id = one.id
    return many, one


def standard_objects() -> dict[str, ObjectMeta]:
    """The standard 2.21 objects the fake serves, keyed by object id."""
    by_name: dict[str, ObjectMeta] = {}
    for singular, plural, label_singular, label_plural, _ in _STANDARD_OBJECTS:
        object_id = stable_id(singular)
        obj = ObjectMeta(id=object_id, name_singular=singular, name_plural=plural,
                         label_singular=label_singular, label_plural=label_plural)
        for system_field in system_fields(object_id, lambda name, s=singular: stable_id(s, name)):
            obj.fields[system_field.name] = system_field
        by_name[singular] = obj
    for singular, _, _, _, specs in _STANDARD_OBJECTS:
        obj = by_name[singular]
        for spec in specs:
            if isinstance(spec, _Relation):
                target = by_name[spec.target]
                many, one = relation_pair(
                    obj, spec.name, target, spec.inverse, on_delete=spec.on_delete,
                    source_id=stable_id(singular, spec.name),
                    inverse_id=stable_id(spec.target, spec.inverse, singular),
                )
                many.morph = spec.morph
                obj.fields[many.name] = many
                target.fields.setdefault(one.name, one)
            else:
                obj.fields[spec.name] = FieldMeta(
                    id=stable_id(singular, spec.name), object_id=obj.id, name=spec.name, type=spec.type,
                    label=spec.label, default_value=spec.default, is_unique=spec.unique,
                    options=make_options(list(spec.options)) if spec.options else None,
                )
    return {obj.id: obj for obj in by_name.values()}


def empty_value(field_meta: FieldMeta) -> Any:
    """The value a new record gets when the field is not sent (column default)."""
    if field_meta.default_value is not None:
        return default_from_metadata(field_meta)
    if field_meta.type in COMPOSITES:
        return {sub: copy.deepcopy(empty) for sub, (_, empty) in COMPOSITES[field_meta.type].items()}
    if field_meta.type == "TEXT" and field_meta.is_nullable:
        # Observed: a nullable TEXT custom field without default reads back as "".
        return ""
    return None


def default_from_metadata(field_meta: FieldMeta) -> Any:
    value = unquoted(copy.deepcopy(field_meta.default_value))
    if field_meta.type in COMPOSITES:
        base = {sub: copy.deepcopy(empty) for sub, (_, empty) in COMPOSITES[field_meta.type].items()}
        base.update(value if isinstance(value, dict) else {})
        return base
    if value == "now":
        return now_iso()
    if value == "uuid":
        return str(uuid.uuid4())
    return value
