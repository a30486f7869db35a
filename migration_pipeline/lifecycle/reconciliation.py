"""Reconciliation: after a run, does Twenty hold what the run says it loaded?

Every object is counted three ways and the counts compared: the source side (source rows,
staged, quarantined, excluded and loaded, from the stage and load assets), the ledger (records
whose last write in this run succeeded, so they should exist) and Twenty, read back through
the API in bulk by the ids the ledger holds. Then field totals (values per select option,
currency sums per select option, linked vs unlinked relations, targets per target record) are
computed from the staged rows and from the records as Twenty returns them, and compared.

Totals cover the records found in Twenty, on both sides: a missing record shows up once, in the
counts, and a changed value once, in the totals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.objects import is_target_junction, junction_parent
from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.payloads import is_blank
from migration_pipeline.engine.staging import KEY, StagedObject
from migration_pipeline.ledger.ledger import SUCCESSFUL, Ledger
from migration_pipeline.reports.run_report import LoadSummary

EMPTY = "(empty)"
MISSING_SAMPLE = 20  # source keys of missing records listed per object
LINKED, UNLINKED, LINKED_AS_EXPECTED = "linked", "unlinked", "linked to the expected record"

Number = int | float


@dataclass
class ObjectCounts:
    """One Twenty object: source side, ledger and Twenty side by side."""

    object: str  # Twenty plural
    source_rows: int
    rows_loaded: int
    rows_quarantined: int
    rows_excluded: int
    staged: int
    loaded: int  # created + updated + unchanged, as the load step reported
    ledger_operations: dict[str, int]  # last operation of this run per record -> records
    ledger_should_exist: int
    in_twenty: int
    missing_in_twenty: list[str] = field(default_factory=list)  # source keys, capped

    @property
    def rows_balanced(self) -> bool:
        return self.source_rows == self.rows_loaded + self.rows_quarantined + self.rows_excluded

    @property
    def matches(self) -> bool:
        return self.rows_balanced and self.loaded == self.ledger_should_exist == self.in_twenty

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_balanced": self.rows_balanced, "matches": self.matches}


@dataclass
class FieldTotal:
    """One total of one object, per bucket (an option value, "linked", "2 notes")."""

    object: str
    name: str
    kind: str  # select | multi_select | currency | relation | targets
    expected: dict[str, Number]
    actual: dict[str, Number]

    def buckets(self) -> list[str]:
        return list(dict.fromkeys([*self.expected, *self.actual]))

    def differences(self) -> list[dict[str, Any]]:
        return [
            {"object": self.object, "total": self.name, "bucket": bucket,
             "expected": self.expected.get(bucket, 0), "actual": self.actual.get(bucket, 0)}
            for bucket in self.buckets()
            if self.expected.get(bucket, 0) != self.actual.get(bucket, 0)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "matches": not self.differences()}


@dataclass
class Reconciliation:
    run_key: str
    counts: list[ObjectCounts]
    totals: list[FieldTotal]
    read_requests: int  # record requests made to read Twenty back
    records_read: int

    @property
    def counts_match(self) -> bool:
        return all(c.matches for c in self.counts)

    @property
    def totals_match(self) -> bool:
        return not self.total_differences()

    def count_mismatches(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.counts if not c.matches]

    def total_differences(self) -> list[dict[str, Any]]:
        return [d for total in self.totals for d in total.differences()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_key": self.run_key,
            "counts_match": self.counts_match,
            "totals_match": self.totals_match,
            "read_requests": self.read_requests,
            "records_read": self.records_read,
            "counts": [c.to_dict() for c in self.counts],
            "totals": [t.to_dict() for t in self.totals],
        }


@dataclass(frozen=True)
class LedgerEntry:
    """Where one record stands after this run, according to the ledger."""

    operation: str  # the run's last operation on it; "pending" for an intent never completed
    twenty_id: str | None

    @property
    def should_exist(self) -> bool:
        return self.operation in SUCCESSFUL and bool(self.twenty_id)


# --- the whole run ---------------------------------------------------------------------------


def reconcile(
    client: TwentyClient,
    ledger: Ledger,
    mapping: Mapping,
    run_key: str,
    loaded: Sequence[tuple[StagedObject, LoadSummary]],
) -> Reconciliation:
    """`loaded`: every object's stage output and load summary, in load order."""
    field_types = _field_types(client.metadata_objects())
    requests_before = client.request_count
    found_ids: dict[str, set[str]] = {}  # Twenty object -> ids found, for targets per record
    counts: list[ObjectCounts] = []
    totals: list[FieldTotal] = []
    records_read = 0
    for staged, load in loaded:
        entries = run_writes(ledger, run_key, staged.plural, mapping.slug)
        should = {key: e.twenty_id for key, e in entries.items() if e.should_exist and e.twenty_id}
        read_back = {r["id"]: r for r in client.get_by_ids(staged.plural, should.values())}
        records_read += len(read_back)
        key_field = mapping.defaults.external_key_field if mapping.catalogue[staged.twenty_object].has_external_key else None
        found = {
            key: read_back[twenty_id]
            for key, twenty_id in should.items()
            if twenty_id in read_back and (key_field is None or read_back[twenty_id].get(key_field) == key)
        }
        found_ids[staged.twenty_object] = {record["id"] for record in found.values()}
        counts.append(_counts(staged, load, entries, should, found))
        pairs = _pairs(staged, found)
        totals += _value_totals(staged, pairs, field_types.get(staged.twenty_object, {}))
        totals += _relation_totals(staged, pairs, mapping, ledger, found_ids)
    read_requests = client.request_count - requests_before
    return Reconciliation(run_key, counts, totals, read_requests, records_read)


def run_writes(ledger: Ledger, run_key: str, plural: str, source: str | None = None) -> dict[str, LedgerEntry]:
    """source key -> the run's last operation on that record (and the Twenty id it had); with
    `source`, nothing when the run is not one of that source's."""
    entries: dict[str, LedgerEntry] = {}
    for source_key, twenty_id, operation, status in ledger.run_writes(run_key, plural, source):
        previous = entries.get(source_key)
        entries[source_key] = LedgerEntry(
            "pending" if status == "pending" else operation,
            twenty_id or (previous.twenty_id if previous else None),
        )
    return entries


def _counts(
    staged: StagedObject,
    load: LoadSummary,
    entries: dict[str, LedgerEntry],
    should: dict[str, str],
    found: dict[str, dict[str, Any]],
) -> ObjectCounts:
    accounting = load.accounting.values()
    return ObjectCounts(
        object=staged.plural,
        source_rows=sum(a.source_rows for a in accounting),
        rows_loaded=sum(a.loaded for a in accounting),
        rows_quarantined=sum(a.quarantined for a in accounting),
        rows_excluded=sum(a.excluded for a in accounting),
        staged=load.staged,
        loaded=load.created + load.updated + load.unchanged,
        ledger_operations=dict(sorted(Counter(e.operation for e in entries.values()).items())),
        ledger_should_exist=len(should),
        in_twenty=len(found),
        missing_in_twenty=sorted(set(should) - set(found))[:MISSING_SAMPLE],
    )


def _pairs(staged: StagedObject, found: dict[str, dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(staged row, record read back) for every record found in Twenty."""
    rows = staged.records
    if not len(rows):
        return []
    mine = rows[rows[KEY].isin(set(found))].to_dict("records")
    return [(row, found[row[KEY]]) for row in mine]


# --- values: selects and currency sums --------------------------------------------------------


def _field_types(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Twenty object -> field name -> field metadata (type, default value)."""
    return {obj["nameSingular"]: {f["name"]: f for f in obj.get("fields", [])} for obj in objects}


def _value_totals(
    staged: StagedObject, pairs: list[tuple[dict[str, Any], dict[str, Any]]], fields: dict[str, dict[str, Any]]
) -> list[FieldTotal]:
    """Counts per option of every SELECT/MULTI_SELECT field the mapping sets, and the sum of
    every CURRENCY field it sets per option of each of those SELECT fields (or in total)."""
    columns = set(staged.records.columns)
    by_type: dict[str, list[str]] = {}
    for name, meta in fields.items():
        if name in columns or f"{name}.amountMicros" in columns:
            by_type.setdefault(meta["type"], []).append(name)
    selects = sorted(by_type.get("SELECT", []))
    totals = [_select_total(staged.plural, name, pairs, _default_option(fields[name])) for name in selects]
    totals += [_multi_select_total(staged.plural, name, pairs) for name in sorted(by_type.get("MULTI_SELECT", []))]
    for currency in sorted(by_type.get("CURRENCY", [])):
        with_code = f"{currency}.currencyCode" in columns
        for select in selects or [None]:
            totals.append(_currency_total(staged.plural, currency, select, with_code, pairs, fields))
    return totals


def _select_total(obj: str, name: str, pairs: list[tuple[dict, dict]], default: str | None) -> FieldTotal:
    expected = Counter(_option(row.get(name), default) for row, _ in pairs)
    actual = Counter(_option(record.get(name), None) for _, record in pairs)
    return FieldTotal(obj, f"{name}: records per value", "select", _sorted(expected), _sorted(actual))


def _multi_select_total(obj: str, name: str, pairs: list[tuple[dict, dict]]) -> FieldTotal:
    def values(value: Any) -> list[str]:
        return [str(v) for v in value] if isinstance(value, list) and value else [EMPTY]

    expected = Counter(v for row, _ in pairs for v in values(row.get(name)))
    actual = Counter(v for _, record in pairs for v in values(record.get(name)))
    return FieldTotal(obj, f"{name}: records per value", "multi_select", _sorted(expected), _sorted(actual))


def _currency_total(
    obj: str, currency: str, select: str | None, with_code: bool,
    pairs: list[tuple[dict, dict]], fields: dict[str, dict[str, Any]],
) -> FieldTotal:
    default = _default_option(fields[select]) if select else None
    expected: dict[str, Decimal] = {}
    actual: dict[str, Decimal] = {}
    for row, record in pairs:
        amount = row.get(f"{currency}.amountMicros")
        if not is_blank(amount):
            code = row.get(f"{currency}.currencyCode") if with_code else None
            bucket = _currency_bucket(_option(row.get(select), default) if select else "total", code)
            expected[bucket] = expected.get(bucket, Decimal(0)) + Decimal(str(amount))
        money = record.get(currency) or {}
        if not is_blank(money.get("amountMicros")):
            code = money.get("currencyCode") if with_code else None
            bucket = _currency_bucket(_option(record.get(select), None) if select else "total", code)
            actual[bucket] = actual.get(bucket, Decimal(0)) + Decimal(str(money["amountMicros"]))
    name = f"{currency}: sum per {select}" if select else f"{currency}: sum"
    return FieldTotal(obj, name, "currency", _numbers(expected), _numbers(actual))


def _currency_bucket(option: str, code: Any) -> str:
    return f"{option} {code}" if not is_blank(code) else option


def _option(value: Any, default: str | None) -> str:
    if is_blank(value):
        return default or EMPTY
    return str(value)


def _default_option(meta: dict[str, Any]) -> str | None:
    """Twenty fills a SELECT left blank with its default value, stored quoted ("'NEW'")."""
    default = meta.get("defaultValue")
    return default.strip("'") if isinstance(default, str) and default.strip("'") else None


# --- relations: linked vs unlinked, targets per target record ---------------------------------


def _relation_totals(
    staged: StagedObject,
    pairs: list[tuple[dict, dict]],
    mapping: Mapping,
    ledger: Ledger,
    found_ids: dict[str, set[str]],
) -> list[FieldTotal]:
    totals: list[FieldTotal] = []
    for column, target_name in sorted(staged.relations.items()):
        target = mapping.object(target_name).twenty_object
        expected_ids = ledger.twenty_ids(
            mapping.catalogue.plural(target), list({row[column] for row, _ in pairs if not is_blank(row.get(column))})
        )
        totals.append(_linked_total(staged.plural, column, pairs, expected_ids))
        if is_target_junction(staged.twenty_object) and column != junction_parent(staged.twenty_object)[1]:
            target_ids = found_ids.get(target, set())
            totals.append(_targets_per_record(staged, column, target, pairs, expected_ids, target_ids, mapping))
    return totals


def _linked_total(obj: str, column: str, pairs: list[tuple[dict, dict]], expected_ids: dict[str, str]) -> FieldTotal:
    linked = sum(1 for row, _ in pairs if not is_blank(row.get(column)))
    actual_linked = sum(1 for _, record in pairs if not is_blank(record.get(column)))
    as_expected = sum(
        1 for row, record in pairs
        if not is_blank(row.get(column)) and record.get(column) == expected_ids.get(row[column])
    )
    return FieldTotal(
        obj, f"{column}: records linked", "relation",
        {LINKED: linked, UNLINKED: len(pairs) - linked, LINKED_AS_EXPECTED: linked},
        {LINKED: actual_linked, UNLINKED: len(pairs) - actual_linked, LINKED_AS_EXPECTED: as_expected},
    )


def _targets_per_record(
    staged: StagedObject, column: str, target: str, pairs: list[tuple[dict, dict]],
    expected_ids: dict[str, str], target_ids: set[str], mapping: Mapping,
) -> FieldTotal:
    """How many target records (people) have 0, 1, 2, ... junction rows (notes)."""
    # A target key the ledger cannot resolve stays itself, so it counts apart from every id.
    expected = Counter(expected_ids.get(row[column], row[column]) for row, _ in pairs if not is_blank(row.get(column)))
    actual = Counter(record[column] for _, record in pairs if not is_blank(record.get(column)))
    universe = target_ids | set(expected) | set(actual)
    parent, _ = junction_parent(staged.twenty_object)
    return FieldTotal(
        staged.plural, f"{mapping.catalogue.plural(parent)} per {target}", "targets",
        _histogram(expected, universe), _histogram(actual, universe),
    )


def _histogram(per_record: Counter[str], universe: set[str]) -> dict[str, Number]:
    sizes = Counter(per_record.get(record_id, 0) for record_id in universe)
    return {str(size): sizes[size] for size in sorted(sizes)}


# --- helpers ---------------------------------------------------------------------------------


def _sorted(counter: Counter[str]) -> dict[str, Number]:
    return dict(sorted(counter.items(), key=lambda item: (item[0] == EMPTY, -item[1], item[0])))


def _numbers(sums: dict[str, Decimal]) -> dict[str, Number]:
    return {k: int(v) if v == v.to_integral_value() else float(v) for k, v in sorted(sums.items())}


__all__ = ["FieldTotal", "LedgerEntry", "ObjectCounts", "Reconciliation", "reconcile", "run_writes"]
