"""Field-level diff: what the mapping meant to write against what Twenty holds.

Payloads are compared leaf by leaf (`name.firstName`, `emails.primaryEmail`, `tags`), on the
fields the mapping sent and those it intends empty (what an update sends as empty). A leaf *matches*, *differs* (both values kept), or is *missing* (the
record or the value is gone). Only what Twenty legitimately rewrites is normalised, and that list
is explicit: LEGITIMATE_REWRITES.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

Outcome = Literal["match", "differs", "missing"]

LEGITIMATE_REWRITES: tuple[str, ...] = (
    "only the fields the mapping sets, or intends empty, are compared (Twenty adds ids, timestamps, and bodyV2.blocknote next to bodyV2.markdown)",
    "blank values are equal: '' == null == [] == a composite subfield left out",
    "a field the mapping leaves empty may hold Twenty's default for it (an opportunity's stage NEW)",
    "numbers are compared by value (1 == 1.0)",
    "date-times are compared as instants (Twenty answers in UTC with milliseconds)",
)
_ABSENT = object()


@dataclass(frozen=True)
class Difference:
    twenty_object: str
    source_key: str
    twenty_id: str
    field: str
    outcome: Outcome  # "differs" or "missing"
    intended: Any
    in_twenty: Any

    def as_row(self) -> dict[str, str]:
        return {
            "object": self.twenty_object,
            "source_key": self.source_key,
            "twenty_id": self.twenty_id,
            "field": self.field,
            "outcome": self.outcome,
            "intended": display(self.intended),
            "in_twenty": display(self.in_twenty),
        }


@dataclass
class ObjectDiff:
    twenty_object: str
    records_compared: int = 0
    records_missing: int = 0  # loaded, but not found in Twenty any more
    fields: dict[str, Counter[str]] = field(default_factory=dict)  # field -> outcome -> count
    differences: list[Difference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.fields.values():
            total.update(counts)
        return total

    def field_table(self) -> list[dict[str, Any]]:
        return [
            {"field": name, **{o: counts.get(o, 0) for o in ("match", "differs", "missing")}}
            for name, counts in sorted(self.fields.items())
        ]


def compare_records(
    twenty_object: str,
    intended: Mapping[str, dict[str, Any]],  # source key -> payload the mapping built
    twenty_ids: Mapping[str, str],  # source key -> Twenty id the ledger recorded
    read_back: Mapping[str, dict[str, Any]],  # Twenty id -> record as Twenty answers it
    defaults: Mapping[str, Any] | None = None,  # leaf path -> Twenty's default (`field_defaults`)
) -> ObjectDiff:
    diff = ObjectDiff(twenty_object)
    for source_key, payload in intended.items():
        twenty_id = twenty_ids[source_key]
        actual = read_back.get(twenty_id)
        diff.records_compared += 1
        if actual is None:
            diff.records_missing += 1
        for path, wanted in leaves(payload):
            got = _ABSENT if actual is None else value_at(actual, path)
            outcome: Outcome = "missing" if actual is None else compare_leaf(path, wanted, got, (defaults or {}).get(path))
            diff.fields.setdefault(path, Counter())[outcome] += 1
            if outcome != "match":
                diff.differences.append(Difference(
                    twenty_object, source_key, twenty_id, path, outcome, wanted, None if got is _ABSENT else got
                ))
    return diff


def leaves(payload: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """("emails.primaryEmail", "a@b.c") ...; lists of scalars are one leaf, lists of objects
    are walked by index (`phones.additionalPhones[0].number`)."""
    for name, value in payload.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from leaves(value, f"{path}.")
        elif isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                yield from leaves(item, f"{path}[{index}].") if isinstance(item, Mapping) else [(f"{path}[{index}]", item)]
        else:
            yield path, value


def value_at(record: Mapping[str, Any], path: str) -> Any:
    current: Any = record
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(current, list) or index >= len(current):
                return _ABSENT
            current = current[index]
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _ABSENT
    return current


def compare_leaf(path: str, intended: Any, actual: Any, default: Any = None) -> Outcome:
    if _blank(intended):
        return "match" if _blank(actual) or (default is not None and actual == default) else "differs"
    if _blank(actual):
        return "missing"
    return "match" if _normalise(path, intended) == _normalise(path, actual) else "differs"


def field_defaults(fields: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Leaf path -> the value Twenty gives a field (or composite subfield) created empty, from the
    fields' metadata; quoted strings ("'NEW'") unquoted, blank defaults left out."""
    found: dict[str, Any] = {}
    for meta in fields:
        default = meta.get("defaultValue")
        parts = default.items() if isinstance(default, Mapping) else [(None, default)]
        for sub, value in parts:
            value = value.strip("'") if isinstance(value, str) else value
            if not _blank(value):
                found[meta["name"] if sub is None else f"{meta['name']}.{sub}"] = value
    return found


def _blank(value: Any) -> bool:
    return value is _ABSENT or value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def _normalise(path: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        instant = _instant(value)
        return instant if instant is not None else value
    return value


def _instant(value: str) -> datetime | None:
    if len(value) < 16 or value[10] != "T":  # a date-time, not a date or free text
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@dataclass
class FieldDiffReport:
    """The diff of one run: one ObjectDiff per Twenty object, in load order."""

    run_key: str
    source: str
    objects: list[ObjectDiff]
    read_requests: int  # HTTP requests spent reading records back (retries included)

    @property
    def records_compared(self) -> int:
        return sum(o.records_compared for o in self.objects)

    @property
    def differences(self) -> int:
        return sum(len(o.differences) for o in self.objects)

    @property
    def requests_per_1000_records(self) -> float:
        return round(1000 * self.read_requests / self.records_compared, 2) if self.records_compared else 0.0


__all__ = ["FieldDiffReport", "ObjectDiff", "Difference", "compare_records", "LEGITIMATE_REWRITES"]
