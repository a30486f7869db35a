"""Staged rows -> Twenty JSON payloads: dotted columns nested, blanks dropped, relation keys
replaced by Twenty ids (looked up in bulk, never one request per record)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.staging import FILE_REFERENCE, FILE_SIZE, KEY, ROW, ROW_COUNT, StagedObject

META_COLUMNS = {KEY, ROW, ROW_COUNT, FILE_REFERENCE, FILE_SIZE, "source_object", "object"}


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and pd.isna(value):
        return True
    return isinstance(value, (str, list, dict)) and len(value) == 0


def nest(flat: dict[str, Any], *, keep_blanks: bool = False) -> dict[str, Any]:
    """{"name.firstName": "Ada"} -> {"name": {"firstName": "Ada"}}; blanks are left out, or
    with `keep_blanks` only the blanks are kept (as None): what the mapping says is empty."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if is_blank(value) != keep_blanks:
            continue
        head, _, rest = path.partition(".")
        if rest:
            out.setdefault(head, {})[rest] = None if keep_blanks else value
        else:
            out[head] = None if keep_blanks else value
    return out


# Twenty ignores a whole composite sent as null (examples-2 section 6): these are cleared by
# sending each subfield empty. Subfields sent as null (a dotted column) are stored empty.
EMPTY_COMPOSITES: dict[str, dict[str, Any]] = {
    "emails": {"primaryEmail": "", "additionalEmails": []},
    "phones": {"primaryPhoneNumber": "", "primaryPhoneCountryCode": "", "primaryPhoneCallingCode": "",
               "additionalPhones": []},
}


# Twenty's own timestamps are never sent empty (a source without a creation date leaves
# Twenty's as it is).
NEVER_CLEARED = frozenset({"createdAt", "updatedAt"})


def empty_update_values(blanks: dict[str, Any]) -> dict[str, Any]:
    """The values an update sends to clear what `nest(..., keep_blanks=True)` found empty."""
    return {name: dict(EMPTY_COMPOSITES[name]) if value is None and name in EMPTY_COMPOSITES else value
            for name, value in blanks.items()}


def with_cleared(payload: dict[str, Any], cleared: dict[str, Any]) -> dict[str, Any]:
    """An update's body: the payload, plus an explicit empty value for every field the mapping
    now leaves empty (a link to a parent on a circular chain, a phone removed at the source),
    so a value an earlier run wrote does not stay behind."""
    body = {**cleared, **payload}
    for name, value in cleared.items():
        if isinstance(value, dict) and isinstance(payload.get(name), dict):
            body[name] = {**value, **payload[name]}
    return body


@dataclass
class PayloadBatch:
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (source_key, payload)
    # source_key -> what an update of the record must clear (see `with_cleared`)
    cleared: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (source_key, reason)
    # optional links left out because their record is not in Twenty: ISSUE_COLUMNS rows
    field_issues: list[dict[str, str]] = field(default_factory=list)
    unresolved_members: list[dict[str, str]] = field(default_factory=list)


def build_payloads(
    frame: pd.DataFrame,
    relations: dict[str, str],
    members: dict[str, str],
    resolve_keys: Callable[[str, Iterable[str]], dict[str, str]],
    member_ids: dict[str, str],
    fallback_member_id: str | None,
    others_columns: dict[str, set[str]] | None = None,
    optional: Collection[str] = (),
) -> PayloadBatch:
    """`relations` maps a column to the mapped object whose source keys it holds;
    `resolve_keys(object, keys)` returns Twenty ids for those keys (from the ledger).
    `others_columns`: mapped object -> columns only other mapped objects of the frame write
    (a second person has no phones column), never cleared on its records.
    `optional`: relation columns a record can do without: when their record is not in Twenty
    (refused, or held) the record is written without the link and the link is a field issue;
    any other unresolved relation refuses the record."""
    batch = PayloadBatch()
    resolved = {
        column: resolve_keys(target, {k for k in frame[column] if not is_blank(k)})
        for column, target in relations.items()
        if column in frame
    }
    for row in frame.to_dict("records"):
        key = row[KEY]
        flat = {k: v for k, v in row.items() if k not in META_COLUMNS}
        problems = []
        for column in resolved:
            wanted = flat.get(column)
            if is_blank(wanted):
                continue
            if wanted in resolved[column]:
                flat[column] = resolved[column][wanted]
            elif column in optional:
                flat[column] = None
                batch.field_issues.append({"object": str(row.get("object") or ""), KEY: key, "field": column,
                                           "reason": f"related record {wanted} is not in Twenty (not loaded); left unlinked"})
            else:
                problems.append(f"{column}: related record {wanted} is not in Twenty (not loaded)")
        if problems:
            batch.rejected.append((key, "; ".join(problems)))
            continue
        for column, original_field in members.items():
            email = flat.get(column)
            member = member_ids.get(email) if not is_blank(email) else None
            if member is None:
                batch.unresolved_members.append(
                    {KEY: key, "owner": str(flat.get(original_field) or ""), "email": "" if is_blank(email) else email}
                )
                member = fallback_member_id
            flat[column] = member
        batch.records.append((key, nest(flat)))
        foreign = (others_columns or {}).get(row.get("object"), set()) | NEVER_CLEARED
        if blanks := nest({k: v for k, v in flat.items() if k not in foreign}, keep_blanks=True):
            batch.cleared[key] = empty_update_values(blanks)
    return batch


class TwentyIds(Protocol):
    def twenty_ids(self, object: str, source_keys: Sequence[str]) -> dict[str, str]: ...


def staged_payloads(
    staged: StagedObject, mapping: Mapping, ids: TwentyIds, member_ids: dict[str, str], fallback_email: str
) -> PayloadBatch:
    """The payloads of a staged object, built the one way loads and verifications share:
    relation keys become Twenty ids through the ledger, owners become workspace members by
    email, else the fallback member (`fallback_email`, if it is a member)."""
    by_name = {obj.name: obj for obj in mapping.objects}

    def resolve(target: str, keys: Iterable[str]) -> dict[str, str]:
        return ids.twenty_ids(mapping.catalogue.plural(by_name[target].twenty_object), list(keys))

    fallback = member_ids.get(fallback_email.lower()) if fallback_email else None
    optional = {column for obj in mapping.objects if obj.twenty_object == staged.twenty_object
                for column, rel in obj.relations.items() if rel.on_unresolved in ("null", "unlink")}
    return build_payloads(staged.records, staged.relations, staged.members, resolve, member_ids, fallback,
                          _others_columns(mapping, staged.twenty_object), optional)


def _others_columns(mapping: Mapping, twenty_object: str) -> dict[str, set[str]]:
    """Per mapped object writing `twenty_object`: the columns only the others declare."""
    declared = {
        obj.name: {*obj.fields, *obj.relations, *obj.members, *(m.keep_original_in for m in obj.members.values())}
        for obj in mapping.objects if obj.twenty_object == twenty_object
    }
    return {name: set().union(*(c for other, c in declared.items() if other != name)) - own
            for name, own in declared.items()}
