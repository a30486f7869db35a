"""Staged rows -> Twenty JSON payloads: dotted columns nested, blanks dropped, relation keys
replaced by Twenty ids (looked up in bulk, never one request per record)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"name.firstName": "Ada"} -> {"name": {"firstName": "Ada"}}; blanks are left out."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if is_blank(value):
            continue
        head, _, rest = path.partition(".")
        if rest:
            out.setdefault(head, {})[rest] = value
        else:
            out[head] = value
    return out


@dataclass
class PayloadBatch:
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (source_key, payload)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (source_key, reason)
    unresolved_members: list[dict[str, str]] = field(default_factory=list)


def build_payloads(
    frame: pd.DataFrame,
    relations: dict[str, str],
    members: dict[str, str],
    resolve_keys: Callable[[str, Iterable[str]], dict[str, str]],
    member_ids: dict[str, str],
    fallback_member_id: str | None,
) -> PayloadBatch:
    """`relations` maps a column to the mapped object whose source keys it holds;
    `resolve_keys(object, keys)` returns Twenty ids for those keys (from the ledger)."""
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
    return build_payloads(staged.records, staged.relations, staged.members, resolve, member_ids, fallback)
