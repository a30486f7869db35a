"""Create the custom objects, fields and select options a migration needs, idempotently,
through Twenty's metadata REST API; report exactly what was created so it can be undone.

`ensure_schema` reads the metadata once, refuses to touch anything if an existing field is
incompatible or a relation's inverse name is taken, creates objects then fields, appends
missing select options (the full list is sent, existing options with their ids, so records keep
their values), never deletes, and finally reads the metadata back to verify every request. Each
change is written to a journal (the ledger) before and after its request. `drop_created` undoes
what the journal says was created.

A metadata write whose answer is lost (timeout, dropped connection, 5xx after Twenty applied it)
is retried by the client, and the retried create then meets its own first attempt: Twenty
answers `400 NOT_AVAILABLE`. So after any failed write the metadata is read back: a field or
object that is now there with exactly the requested definition, options that are now there, a
field or object that is now gone, is what this attempt did (and is ledgered so); anything else
is a clear error naming the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import httpx

from migration_pipeline.core.twenty_names import name_from_label
from migration_pipeline.destinations.twenty.client import TwentyClient, TwentyRequestError
from migration_pipeline.engine.retry import RetriesExhausted

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
class SkippedField:
    """A field the data needs but that is not created, and why (a select no row has a value for)."""

    object: str
    name: str
    type: str
    reason: str


@dataclass(frozen=True)
class SchemaSpec:
    objects: tuple[ObjectSpec, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    skipped: tuple[SkippedField, ...] = ()


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
    already_present: tuple[SchemaItem, ...] = ()  # there before any run of ours: never dropped by us
    ours_from_earlier: tuple[SchemaItem, ...] = ()  # made by an earlier run (or attempt) of ours
    skipped: tuple[SkippedField, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created_objects or self.created_fields or self.added_options)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {name: [asdict(item) for item in getattr(self, name)] for name in _GROUPS}


_GROUPS = ("created_objects", "created_fields", "added_options", "already_present", "ours_from_earlier", "skipped")
_ITEM_KEY = tuple[str, str, str, str | None]  # kind, object, name, field


class SchemaError(Exception):
    """The workspace cannot take the requested schema, or did not end up with it."""


# What a failed metadata write can raise. Only a refusal (TwentyRequestError) says for sure that
# the request changed nothing, and only if it was the first attempt; the others may hide a write
# that landed. Every one of them is settled by reading the metadata back.
_WRITE_FAILURES = (TwentyRequestError, RetriesExhausted, httpx.TransportError)
_Objects = dict[str, dict[str, Any]]


class SchemaJournal(Protocol):
    """Where each schema change is written as it happens (the ledger's schema log)."""

    def intent(self, operation: Literal["create", "add_option", "use"], kind: Literal["object", "field", "option"],
               object: str, name: str, field: str | None = None, metadata_id: str | None = None) -> int: ...

    def outcome(self, intent_id: int, metadata_id: str | None = None, failure: str | None = None) -> None: ...

    def ours(self) -> list[dict[str, Any]]: ...


class _NoJournal:
    def intent(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def outcome(self, *args: Any, **kwargs: Any) -> None:
        return None

    def ours(self) -> list[dict[str, Any]]:
        return []


@dataclass
class _Plan:
    objects: list[ObjectSpec] = field(default_factory=list)
    fields: list[FieldSpec] = field(default_factory=list)
    options: dict[str, tuple[FieldSpec, list[SelectOption]]] = field(default_factory=dict)
    present: list[SchemaItem] = field(default_factory=list)


def ensure_schema(client: TwentyClient, spec: SchemaSpec, journal: SchemaJournal | None = None) -> SchemaReport:
    """Make the workspace carry `spec`; safe to call on every run. With a `journal`, each
    change is recorded before its request (intent) and after it (outcome), so what a failed
    attempt created is known; something an earlier run of ours created is reported as ours,
    never as pre-existing."""
    journal = journal or _NoJournal()
    objects = _by_name(client.metadata_objects())
    plan = _plan(spec, objects)
    recorder = _Recorder(journal, client)

    created_objects: list[SchemaItem] = []
    for object_spec in plan.objects:
        name = object_spec.name_singular
        created = recorder.create(
            lambda s=object_spec: client.create_object(_object_payload(s)), "object", name, name,
            find=lambda fresh, n=name: fresh.get(n),
            differs=lambda found, fresh, s=object_spec: _object_difference(s, found))
        objects[name] = {"fields": [], **created}
        created_objects.append(SchemaItem("object", name, name, created["id"]))

    created_fields: list[SchemaItem] = []
    for field_spec in plan.fields:
        came_with_object = _field(objects, field_spec.object, field_spec.name)
        if came_with_object:  # e.g. `name` on a custom object we just created
            _raise_if_incompatible(field_spec, came_with_object)
            plan.present.append(_field_item(field_spec, came_with_object))
            continue
        created = recorder.create(
            lambda s=field_spec: client.create_field(_field_payload(s, objects)), "field", field_spec.object,
            field_spec.name, find=lambda fresh, s=field_spec: _field(fresh, s.object, s.name) if s.object in fresh else None,
            differs=lambda found, fresh, s=field_spec: _field_difference(s, found, fresh))
        created_fields.append(_field_item(field_spec, created))

    added_options: list[SchemaItem] = []
    for field_id, (field_spec, missing) in plan.options.items():
        existing = _field(objects, field_spec.object, field_spec.name)["options"] or []
        items = [SchemaItem("option", field_spec.object, o.value, field_id, field=field_spec.name) for o in missing]
        recorder.add_options(lambda: client.update_field(field_id, {"options": _extended_options(existing, missing)}),
                             items, landed=lambda fresh, s=field_spec: _has_options(fresh, s, missing))
        added_options.extend(items)

    _verify(spec, _by_name(client.metadata_objects()))
    earlier, present = recorder.classify(plan.present)
    return SchemaReport(tuple(created_objects), tuple(created_fields), tuple(added_options), tuple(present),
                        tuple(earlier), spec.skipped)


class _Recorder:
    """Writes intents and outcomes to the journal around each metadata request."""

    def __init__(self, journal: SchemaJournal, client: TwentyClient) -> None:
        self.journal, self.client = journal, client
        self.ours: dict[_ITEM_KEY, dict[str, Any]] = {
            (row["kind"], row["object"], row["name"], row.get("field")): row for row in journal.ours()
        }

    def create(self, request: Callable[[], dict[str, Any]], kind: Literal["object", "field"], object: str, name: str,
               *, find: Callable[[_Objects], dict[str, Any] | None],
               differs: Callable[[dict[str, Any], _Objects], str | None]) -> dict[str, Any]:
        """Send a create; after a failure, read back: `find` the item in the fresh metadata and
        adopt it as this attempt's if nothing `differs` from what was asked."""
        intent = self.journal.intent("create", kind, object, name)
        try:
            created = request()
        except _WRITE_FAILURES as error:
            fresh = _by_name(self.client.metadata_objects())
            found = find(fresh)
            if found is None:
                named = _named(error, f"{kind} {object}" if kind == "object" else f"{kind} {object}.{name}")
                self._unsettled(intent, named)
                raise named from None
            difference = differs(found, fresh)
            if difference:
                what = f"{kind} {object}" + (f".{name}" if kind == "field" else "")
                message = (f"{what}: the create failed ({error}) and Twenty now has a {kind} of that name that is "
                           f"not the one requested: {difference}. Rename it in the mapping, or change or delete it "
                           "in Twenty, then rerun")
                self.journal.outcome(intent, failure=message)
                raise SchemaError(message) from error
            created = found  # the answer was lost, the create was not
        self.journal.outcome(intent, metadata_id=created["id"])
        return created

    def add_options(self, request: Callable[[], Any], items: list[SchemaItem],
                    *, landed: Callable[[_Objects], bool]) -> None:
        intents = [self.journal.intent("add_option", "option", i.object, i.name, i.field, i.metadata_id)
                   for i in items]
        try:
            request()
        except _WRITE_FAILURES as error:
            if not landed(_by_name(self.client.metadata_objects())):
                named = _named(error, f"options {', '.join(i.name for i in items)} of field "
                                      f"{items[0].object}.{items[0].field}" if items else "options")
                for intent in intents:
                    self._unsettled(intent, named)
                raise named from None
        for intent in intents:
            self.journal.outcome(intent)

    def _unsettled(self, intent: int, error: Exception) -> None:
        """The write is not in Twenty. A refusal is final; after a timeout or a 5xx it may still
        land, so the intent stays pending and the next prepare or a rollback settles it by name."""
        if isinstance(error, TwentyRequestError):
            self.journal.outcome(intent, failure=str(error))

    def classify(self, present: list[SchemaItem]) -> tuple[list[SchemaItem], list[SchemaItem]]:
        """(made by an earlier run of ours, there before us). An earlier intent left pending is
        settled now that the item is found; this run's use of it is recorded."""
        earlier, before_us = [], []
        for item in present:
            row = self.ours.get((item.kind, item.object, item.name, item.field))
            if row is None:
                before_us.append(item)
                continue
            if row["status"] == "pending":
                self.journal.outcome(row["id"], metadata_id=item.metadata_id)
            self.journal.intent("use", item.kind, item.object, item.name, item.field, item.metadata_id)
            earlier.append(item)
        return earlier, before_us


@dataclass(frozen=True)
class DropResult:
    """What dropping one recorded schema change did."""

    row: Mapping[str, Any]  # the schema log row
    dropped: bool  # removed now, or already gone
    failure: str | None = None


def drop_created(client: TwentyClient, rows: Sequence[Mapping[str, Any]]) -> list[DropResult]:
    """Remove what these schema log rows created: options first (fields and objects that stay
    keep their other options and their ids), then fields, then objects. A field of an object
    being dropped goes with its object. A MORPH_RELATION field is never deleted: deleting one
    target of a morph relation removes every target of it (examples-2.md section 12), so the
    targets Twenty adds for a custom object are removed only by deleting the object."""
    objects = _by_name(client.metadata_objects())
    by_id = {f["id"]: (o, f) for o in objects.values() for f in o.get("fields") or []}
    dropped_objects = {row["object"] for row in rows if row["kind"] == "object"}
    results: list[DropResult] = []

    def current_field(row: Mapping[str, Any]) -> dict[str, Any] | None:
        found = by_id.get(row["metadata_id"] or "")
        if found is None and row["object"] in objects:  # an intent never settled: find it by name
            found = (objects[row["object"]], _field(objects, row["object"], row["field"] or row["name"]))
        return found[1] if found else None

    removals: dict[str, tuple[dict[str, Any], list[Mapping[str, Any]]]] = {}
    for row in (r for r in rows if r["kind"] == "option"):
        current = None if row["object"] in dropped_objects else current_field(row)
        if current is None or row["name"] not in {o["value"] for o in current.get("options") or []}:
            results.append(DropResult(row, dropped=True))  # gone already, or goes with its field/object
            continue
        removals.setdefault(current["id"], (current, []))[1].append(row)
    for field_id, (current, option_rows) in removals.items():
        values = {row["name"] for row in option_rows}
        kept = [o for o in current.get("options") or [] if o["value"] not in values]
        results += _attempt(client, lambda: client.update_field(field_id, {"options": kept}), option_rows,
                            gone=lambda fresh, v=values, i=field_id: not v & _option_values(fresh, i))
    for row in (r for r in rows if r["kind"] == "field"):
        current = None if row["object"] in dropped_objects else current_field(row)
        if current is None:
            results.append(DropResult(row, dropped=True))
        elif current.get("type") == "MORPH_RELATION":
            results.append(DropResult(row, dropped=False, failure=(
                f"field {row['object']}.{row['name']} is a MORPH_RELATION: deleting it would remove every target "
                "of that relation; left in place")))
        else:
            results += _attempt(client, lambda c=current: _delete_if_present(client.delete_field, c["id"]), [row],
                                gone=lambda fresh, i=current["id"]: not _field_ids(fresh) & {i})
    for row in (r for r in rows if r["kind"] == "object"):
        current_object = objects.get(row["object"])
        if current_object is None or (row["metadata_id"] and current_object["id"] != row["metadata_id"]):
            results.append(DropResult(row, dropped=True))
        else:
            results += _attempt(client, lambda o=current_object: _delete_if_present(client.delete_object, o["id"]),
                                [row], gone=lambda fresh, i=current_object["id"]: i not in {o["id"] for o in fresh})
    return results


def _attempt(client: TwentyClient, request: Callable[[], Any], rows: list[Mapping[str, Any]],
             gone: Callable[[Sequence[Mapping[str, Any]]], bool]) -> list[DropResult]:
    """Send one removal; after a failure, read the metadata back: what is `gone` was removed (the
    answer was lost, not the delete)."""
    try:
        request()
    except _WRITE_FAILURES as error:
        if not gone(client.metadata_objects()):
            return [DropResult(row, dropped=False, failure=str(error)) for row in rows]
    return [DropResult(row, dropped=True) for row in rows]


def _field_ids(objects: Sequence[Mapping[str, Any]]) -> set[str]:
    return {f["id"] for o in objects for f in o.get("fields") or []}


def _option_values(objects: Sequence[Mapping[str, Any]], field_id: str) -> set[str]:
    found = next((f for o in objects for f in o.get("fields") or [] if f["id"] == field_id), None)
    return {o["value"] for o in (found or {}).get("options") or []}


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
            problems += _inverse_clash(field_spec, objects)
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


def _inverse_clash(spec: FieldSpec, objects: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Twenty names a new relation's inverse field from `targetFieldLabel` and refuses a name its
    target already uses (400 NOT_AVAILABLE, no suffixing): say so before anything changes."""
    if spec.type != "RELATION" or not spec.inverse_label or spec.relation_target not in objects:
        return []
    inverse = name_from_label(spec.inverse_label)
    if _field(objects, spec.relation_target, inverse) is None:
        return []
    return [f"{_label(spec)}: its inverse field {spec.relation_target}.{inverse} (from the label "
            f"{spec.inverse_label!r}) is already a field of {spec.relation_target} in this workspace: rename or "
            "delete that field in Twenty, or change the relation's label in the mapping"]


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


def _object_difference(spec: ObjectSpec, found: Mapping[str, Any]) -> str | None:
    """How an object Twenty has differs from the one `spec` asks for (None: it is that object)."""
    if found.get("isCustom") is False:
        return f"{spec.name_singular} is a standard object of Twenty"
    # Twenty stores object labels with a capital first letter (2.21: capitalize() on create).
    return _differences({"namePlural": (found.get("namePlural"), spec.name_plural),
                         "labelSingular": (found.get("labelSingular"), _capitalized(spec.label_singular)),
                         "labelPlural": (found.get("labelPlural"), _capitalized(spec.label_plural))})


def _capitalized(label: str) -> str:
    return label[:1].upper() + label[1:]


def _field_difference(spec: FieldSpec, found: Mapping[str, Any], objects: Mapping[str, Mapping[str, Any]]) -> str | None:
    """How a field Twenty has differs from the one `spec` asks for: what `create_field` sends
    (type, label, uniqueness, options, relation target) decides, so a field made by someone else
    with the same name is told apart from the one this attempt created."""
    if found.get("isCustom") is False:
        return f"{_label(spec)} is a standard field of Twenty"
    pairs: dict[str, tuple[Any, Any]] = {
        "type": (found.get("type"), spec.type), "label": (found.get("label"), spec.label),
        "isUnique": (bool(found.get("isUnique")), spec.is_unique),
    }
    if spec.type in SELECT_TYPES:
        pairs["options"] = (sorted(o["value"] for o in found.get("options") or []), sorted(o.value for o in spec.options))
    if spec.type == "RELATION" and spec.relation_target in objects:
        relation_type = (found.get("settings") or {}).get("relationType", "MANY_TO_ONE")
        pairs["relationType"] = (relation_type, "MANY_TO_ONE")
        # Twenty's field listing does not name the target: its inverse field there does.
        inverse = name_from_label(_inverse_label(spec, objects[spec.object]))
        on_target = _field(objects, spec.relation_target, inverse)
        pairs[f"inverse field {spec.relation_target}.{inverse}"] = (
            (on_target or {}).get("type", "missing"), "RELATION")
    return _differences(pairs)


def _differences(pairs: Mapping[str, tuple[Any, Any]]) -> str | None:
    found = [f"{key} is {have!r}, not {asked!r}" for key, (have, asked) in pairs.items() if have != asked]
    return "; ".join(found) or None


def _has_options(objects: Mapping[str, Mapping[str, Any]], spec: FieldSpec, options: Sequence[SelectOption]) -> bool:
    found = _field(objects, spec.object, spec.name) if spec.object in objects else None
    return found is not None and {o.value for o in options} <= {o["value"] for o in found.get("options") or []}


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
            "targetFieldLabel": _inverse_label(spec, owner),
            "targetFieldIcon": "IconLink",
        }
    return payload


def _inverse_label(spec: FieldSpec, owner: Mapping[str, Any]) -> str:
    return spec.inverse_label or f"{owner.get('labelPlural') or spec.object} {spec.label}"


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


def _delete_if_present(delete: Callable[[str], None], metadata_id: str) -> None:
    # Twenty 2.21 deletes active fields and objects (no deactivation first); 404: already gone.
    try:
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


def _named(error: Exception, sent: str) -> Exception:
    """A refusal names what was sent (a metadata route alone does not say which field); other
    failures (Twenty unreachable) pass as they are."""
    return error.about(sent) if isinstance(error, TwentyRequestError) else error
