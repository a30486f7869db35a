"""Turn extracted source frames into Twenty-shaped frames, following a mapping.

Every source row considered by a mapped object ends in exactly one of three places: a staged
record, the quarantine (with the reason a person can act on), or the excluded list (the mapping
deliberately leaves it out, with the reason). Relations are kept as the *source keys* of the
related records; the load step turns them into Twenty ids through the ledger, in bulk.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from migration_pipeline.core.twenty_names import standard_fields, tenant_name
from migration_pipeline.destinations.twenty.objects import (
    ATTACHMENT,
    JUNCTIONS,
    Catalogue,
    is_target_junction,
    target_field,
)
from migration_pipeline.engine.cycles import describe, find_cycles
from migration_pipeline.engine.mapping import (
    CustomField,
    FieldMapping,
    Mapping,
    ObjectMapping,
    Relation,
    Through,
    ValueSpec,
    enabled,
    unmet,
)
from migration_pipeline.engine.transforms import (
    InvalidValue,
    TransformContext,
    get_transform,
    human_size,
    option_value,
    stable_hash,
)

KEY = "source_key"
ROW = "source_row"
ROW_COUNT = "source_row_count"  # source rows merged into the record (1 unless deduplicated)
# An attachment's file as the source knows it; read by the attachment load, never sent to Twenty.
FILE_REFERENCE = "source_file"
FILE_SIZE = "source_file_bytes"
# A unique subfield whose composite also holds a list of further values that Twenty does not
# keep unique: where `on_duplicate: additional` moves a value another record already uses.
ADDITIONAL_LISTS = {"primaryEmail": "additionalEmails"}
DISPOSITION_COLUMNS = ["object", "source_object", ROW, KEY, "reason"]
ISSUE_COLUMNS = ["object", KEY, "field", "reason"]


@dataclass
class CustomFieldNeed:
    """A custom field the staged data needs, with the select options seen in the data."""

    twenty_object: str
    name: str
    spec: CustomField
    options: dict[str, str] = field(default_factory=dict)  # value -> label


@dataclass
class StagedObject:
    twenty_object: str
    plural: str  # REST name of the Twenty object
    records: pd.DataFrame
    relations: dict[str, str]  # payload column -> mapped object name whose key it holds
    members: dict[str, str]  # payload column (an email) -> custom field keeping the original
    quarantined: pd.DataFrame
    excluded: pd.DataFrame
    field_issues: pd.DataFrame
    custom_fields: list[CustomFieldNeed]
    input_rows: dict[str, int]  # mapped object -> source rows it considered
    cycles: list[list[str]] = field(default_factory=list)  # source keys of each circular chain left unlinked


@dataclass
class _EntryResult:
    records: list[dict[str, Any]]
    quarantined: list[dict[str, Any]]
    excluded: list[dict[str, Any]]
    issues: list[dict[str, Any]]
    row_keys: dict[int, str]  # source row position -> key of the record built from it
    row_problems: dict[int, str]  # source row position -> why no record was built from it
    input_rows: int
    cycles: list[list[str]] = field(default_factory=list)  # circular chains of a relation to itself


class Stager:
    """Stages the objects of one mapping; results per mapped object are computed once."""

    def __init__(
        self, mapping: Mapping, extracts: dict[str, pd.DataFrame], settings: dict[str, Any],
        owners: dict[tuple[str, str], dict[str, str]] | None = None,
    ):
        """`owners`: who holds each unique value, as `unique_owners()` of a Stager of the whole
        export decided it; a sample's slice is staged with them, so the sample and its full run
        give a shared value to the same record."""
        self.mapping = mapping
        self.owners: dict[tuple[str, str], dict[str, str]] = {k: dict(v) for k, v in (owners or {}).items()}
        self.catalogue = mapping.catalogue
        self.extracts = extracts
        self.settings = settings
        self._results: dict[str, _EntryResult] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._tables: dict[tuple[Any, ...], dict[str, tuple[str | None, ...]]] = {}
        self._indexes: dict[tuple[str, int, int], defaultdict[Any, set[int]]] = {}
        self._pivots: dict[str, _PivotTable] = {}
        self._pivot_needs: dict[str, dict[str, CustomFieldNeed]] = defaultdict(dict)
        self._taken: dict[str, frozenset[str]] = {}

    @cached_property
    def entries(self) -> dict[str, ObjectMapping]:
        return {obj.name: obj for obj in self.mapping.enabled_objects(self.settings)}

    # --- public ------------------------------------------------------------------------------

    def stage(self, twenty_object: str) -> StagedObject:
        if is_target_junction(twenty_object):
            return self._stage_junction(twenty_object)
        if twenty_object == ATTACHMENT:
            return self._stage_attachments()
        entries = [e for e in self.entries.values() if e.twenty_object == twenty_object]
        results = {e.name: self._entry(e.name) for e in entries}
        records = [r for res in results.values() for r in res.records]
        relations = {col: rel.object for e in entries for col, rel in e.relations.items()}
        members = {col: m.keep_original_in for e in entries for col, m in e.members.items()}
        return StagedObject(
            twenty_object=twenty_object,
            plural=self.catalogue.plural(twenty_object),
            records=_frame(records, [KEY, "source_object", ROW, "object"]),
            relations=relations,
            members=members,
            quarantined=_frame([q for r in results.values() for q in r.quarantined], DISPOSITION_COLUMNS),
            excluded=_frame([x for r in results.values() for x in r.excluded], DISPOSITION_COLUMNS),
            field_issues=_frame([i for r in results.values() for i in r.issues], ISSUE_COLUMNS),
            custom_fields=self._custom_fields(entries, records),
            input_rows={name: res.input_rows for name, res in results.items()},
            cycles=[c for res in results.values() for c in res.cycles],
        )

    def unique_owners(self, twenty_object: str) -> dict[tuple[str, str], dict[str, str]]:
        """(mapped object, unique path) -> folded value -> source key of the record keeping it:
        the first record in export order (the others are blanked, moved or held as `on_duplicate`
        says)."""
        self.stage(twenty_object)
        return {k: v for k, v in self.owners.items() if self.entries[k[0]].twenty_object == twenty_object}

    def staged_objects(self) -> list[str]:
        """Twenty objects this run produces, in Twenty's import order."""
        return import_order(self.entries.values(), self.catalogue)

    # --- one mapped object -------------------------------------------------------------------

    def _entry(self, name: str) -> _EntryResult:
        if name not in self._results:
            entry = self.entries[name]
            self._results[name] = self._stage_dedupe(entry) if entry.dedupe else self._stage_rows(entry)
        return self._results[name]

    def _source_rows(self, source_object: str) -> list[dict[str, Any]]:
        if source_object not in self._rows:
            self._rows[source_object] = self.extracts[source_object].to_dict("records")
        return self._rows[source_object]

    def _exclusion(self, source_object: str, row: dict[str, Any]) -> str | None:
        """Why the source object's `exclude_when` leaves the row out (deleted at the source), or None."""
        rule = self.mapping.source.objects[source_object].exclude_when
        if rule is None or unmet(rule, row, self.settings) is not None:
            return None
        return rule.reason

    def _kept_rows(self, source_object: str) -> Iterable[tuple[int, dict[str, Any]]]:
        """(position, row) of the rows no `exclude_when` leaves out: what lookups and matches see."""
        return ((p, row) for p, row in enumerate(self._source_rows(source_object))
                if self._exclusion(source_object, row) is None)

    def _row_label(self, entry: ObjectMapping, position: int, row: dict[str, Any]) -> str:
        key_column = self.mapping.source.objects[entry.from_].key
        return str(row.get(key_column) or "") if key_column else f"line {position + 2}"

    def _stage_rows(self, entry: ObjectMapping) -> _EntryResult:
        rows = self._source_rows(entry.from_)
        result = _EntryResult([], [], [], [], {}, {}, len(rows))
        seen_keys: dict[str, int] = {}
        hash_occurrences: Counter[str] = Counter()
        for position, row in enumerate(rows):
            label = self._row_label(entry, position, row)
            base = {"object": entry.name, "source_object": entry.from_, ROW: label, ROW_COUNT: 1}
            reason = self._exclusion(entry.from_, row) or unmet(entry.when, row, self.settings)
            if reason is not None:
                result.excluded.append({**base, KEY: None, "reason": reason})
                result.row_problems[position] = reason
                continue
            try:
                key = self._key(entry, row, hash_occurrences)
                base[KEY] = key
                if key in seen_keys:
                    raise InvalidValue(f"duplicate key {key}: also on line {seen_keys[key] + 2}")
                seen_keys[key] = position
                record = {**base, **self._fields(entry, row, key, result.issues)}
                record.update(self._relations(entry, position, row, key, result.issues))
                record.update(self._members(entry, row))
                record.update(self._pivoted(entry, row, key, result.issues))
                self._require_targets(entry, row)
                self._say_file_not_attached(entry, record, row, label)
            except InvalidValue as exc:
                result.quarantined.append({KEY: None, **base, "reason": str(exc)})
                result.row_problems[position] = str(exc)
                continue
            result.records.append(record)
            result.row_keys[position] = key
        self._quarantine_duplicate_unique_values(entry, result)
        self._link_within(entry, result)
        return result

    def _key(self, entry: ObjectMapping, row: dict[str, Any], occurrences: Counter[str]) -> str:
        spec = entry.key
        assert spec is not None
        if spec.hash_of is not None:
            digest = stable_hash(tuple(_cell(row.get(c)) for c in spec.hash_of))
            occurrences[digest] += 1
            if occurrences[digest] > 1:  # identical rows stay distinct records, in file order
                digest = f"{digest}-{occurrences[digest]}"
            return f"{entry.name}:{digest}{spec.suffix}"
        columns = (spec.from_,) if isinstance(spec.from_, str) else tuple(spec.from_ or ())
        raw = "-".join((_cell(row.get(c)) or "").strip() for c in columns)
        if not raw.strip("-"):
            raise InvalidValue(f"no key: {', '.join(columns)} is blank")
        return f"{entry.name}:{raw}{spec.suffix}"

    def _value(self, spec: ValueSpec, row: dict[str, Any], notes: list[str] | None = None) -> Any:
        """The field's value; what the transform left out of it (with `notes`) goes to `notes`."""
        values = tuple(_cell(row.get(c)) for c in spec.columns)
        if spec.through is not None:
            values = self._through(spec.through, values[0])
        ctx = TransformContext(settings=self.settings, args=spec.args, notes=notes if notes is not None else [])
        return get_transform(spec.transform)(values, ctx)

    def _through(self, through: Through, value: str | None) -> tuple[str | None, ...]:
        """The looked-up value(s): one, or with `many: all` every distinct one (possibly none)."""
        table = self._lookup_table(through)
        wanted = (value or "").strip()
        if wanted in through.first_row_for and table:
            return next(iter(table.values()))
        return table.get(wanted, () if through.many == "all" else (None,))

    def _lookup_table(self, through: Through) -> dict[str, tuple[str | None, ...]]:
        cache_key = (through.object, through.key, through.value, tuple(sorted(through.where.items())), through.many)
        if cache_key not in self._tables:
            found: dict[str, list[str | None]] = defaultdict(list)
            for _, row in self._kept_rows(through.object):
                key = _cell(row.get(through.key))
                if key is None or any(_cell(row.get(c)) != v for c, v in through.where.items()):
                    continue
                found[key.strip()].append(_cell(row.get(through.value)))
            self._tables[cache_key] = {key: _choose(values, through.many) for key, values in found.items()}
        return self._tables[cache_key]

    def _fields(
        self, entry: ObjectMapping, row: dict[str, Any], key: str, issues: list[dict[str, Any]]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {self.mapping.defaults.external_key_field: key}
        for name, spec in entry.fields.items():
            if not enabled(spec.enabled_if, self.settings):
                continue
            if unmet(spec.when, row, self.settings) is not None:
                out[name] = None
                continue
            notes: list[str] = []
            try:
                out[name] = self._value(spec, row, notes)
            except InvalidValue as exc:
                if (spec.on_invalid or self.mapping.defaults.on_invalid) == "quarantine":
                    raise InvalidValue(f"{name}: {exc}") from None
                out[name] = None
                notes.append(str(exc))
            issues.extend({"object": entry.name, KEY: key, "field": name, "reason": n} for n in notes)
        return out

    def _members(self, entry: ObjectMapping, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, member in entry.members.items():
            raw = ", ".join(f"{c}={_cell(row.get(c)) or ''}" for c in member.email.columns)
            through = member.email.through
            key_column = self.mapping.source.objects[through.object].key if through else None
            if through is not None and key_column and key_column != through.key:  # and that row's id (a user id)
                (looked_up, *_) = self._through(through.model_copy(update={"value": key_column, "many": "last"}),
                                                _cell(row.get(member.email.columns[0]))) or (None,)
                raw += f", {through.object}.{key_column}={looked_up or ''}"
            try:
                email = self._value(member.email, row)
            except InvalidValue:
                email = None
            out[name] = email
            out[member.keep_original_in] = raw
        return out

    # --- pivoted custom fields (entity-attribute-value tables) ------------------------------

    def _pivot_table(self, entry: ObjectMapping) -> _PivotTable:
        if entry.name not in self._pivots:
            pivot = entry.pivot
            assert pivot is not None
            defs = pivot.definitions
            definitions = {
                key.strip(): row for row in self._source_rows(defs.object)
                if (key := _cell(row.get(defs.key))) is not None
                and all(_cell(row.get(c)) == v for c, v in defs.where.items())
            }
            values: dict[str, dict[str, str | None]] = defaultdict(dict)  # parent -> field -> value
            for _, row in self._kept_rows(pivot.values):
                parent, field_key = _cell(row.get(pivot.parent)), _cell(row.get(pivot.field))
                if parent is not None and field_key is not None and field_key.strip() in definitions:
                    values[parent.strip()][field_key.strip()] = _cell(row.get(pivot.value))
            choices: dict[str, list[str]] = defaultdict(list)
            for row in self._source_rows(pivot.choices.object) if pivot.choices else ():
                field_key, label = _cell(row.get(pivot.choices.field)), _cell(row.get(pivot.choices.value))
                if field_key is not None and label is not None:
                    choices[field_key.strip()].append(label.strip())
            self._pivots[entry.name] = _PivotTable(definitions, values, choices)
        return self._pivots[entry.name]

    def _names_taken(self, twenty_object: str) -> frozenset[str]:
        """Names a pivoted field of this object may not take: Twenty's own fields and the
        fields and relations the mapping declares on it (from the mapping alone, so the same
        every run)."""
        if twenty_object not in self._taken:
            entries = [e for e in self.mapping.objects if e.twenty_object == twenty_object]
            declared = {name for e in entries for name in (*e.fields, *e.members, *e.relations)}
            declared |= {column.removesuffix("Id") for e in entries for column in (*e.relations, *e.members)}
            self._taken[twenty_object] = standard_fields(twenty_object) | declared
        return self._taken[twenty_object]

    def _pivoted(
        self, entry: ObjectMapping, row: dict[str, Any], key: str, issues: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The record's pivoted custom-field values, cast by each field's data type."""
        pivot = entry.pivot
        if pivot is None:
            return {}
        table = self._pivot_table(entry)
        prefix = (_cell(row.get(pivot.prefix_from)) or "") if pivot.prefix_from else ""
        out: dict[str, Any] = {}
        for field_key, raw in table.values.get((_cell(row.get(pivot.parent_key)) or "").strip(), {}).items():
            definition = table.definitions[field_key]
            source_name = _cell(definition.get(pivot.definitions.name)) or field_key
            source_type = _cell(definition.get(pivot.definitions.type)) or ""
            name = pivot_field_name(prefix, source_name, self._names_taken(entry.twenty_object))
            twenty_type = pivot.types.get(source_type)
            if twenty_type is None:
                if raw is not None:
                    issues.append({"object": entry.name, KEY: key, "field": name,
                                   "reason": f"data type {source_type or '(none)'} of {source_name} is not migrated"})
                continue
            need = self._pivot_needs[entry.name].get(name)
            if need is None:
                label = _cell(definition.get(pivot.definitions.label)) or source_name
                spec = CustomField(type=twenty_type, label=f"{prefix}: {label}" if prefix else label,
                                   description=f"{self.mapping.source.label} {source_type} field {source_name}"
                                               + (f" of {prefix}" if prefix else ""))
                need = self._pivot_needs[entry.name][name] = CustomFieldNeed(entry.twenty_object, name, spec)
                if twenty_type in ("SELECT", "MULTI_SELECT"):
                    need.options = {option_value(c): c for c in table.choices.get(field_key, [])}
            transform = PIVOT_TRANSFORMS[twenty_type]
            try:
                value = get_transform(transform)((raw,), TransformContext(settings=self.settings))
            except InvalidValue as exc:
                issues.append({"object": entry.name, KEY: key, "field": name, "reason": str(exc)})
                value = None
            if twenty_type == "CURRENCY":
                value = value or {}
                out[f"{name}.amountMicros"] = value.get("amountMicros")
                out[f"{name}.currencyCode"] = value.get("currencyCode")
            else:
                out[name] = value
        return out

    # --- relations ---------------------------------------------------------------------------

    def _relations(
        self, entry: ObjectMapping, position: int, row: dict[str, Any], key: str, issues: list[dict[str, Any]]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for column, rel in entry.relations.items():
            if rel.object == entry.name:
                continue
            try:
                out[column] = self._resolve(entry, rel, column, position, row)
            except _Unlinked as unlinked:
                out[column] = None
                issues.append({"object": entry.name, KEY: key, "field": column,
                               "reason": f"{unlinked}: loaded without the link"})
        return out

    def _link_within(self, entry: ObjectMapping, result: _EntryResult) -> None:
        """Relations of an object to itself (a company's parent company), once every record of
        it is staged; a record pointing at itself or on a circular chain is left unlinked, with
        the chain in its field issues, so the cycle is reported before anything is loaded."""
        own = {column: rel for column, rel in entry.relations.items() if rel.object == entry.name}
        if not own:
            return
        self._results[entry.name] = result  # _match looks the targets up among these records
        rows = self._source_rows(entry.from_)
        by_key = {record[KEY]: record for record in result.records}
        for column, rel in own.items():
            parent_of: dict[str, str] = {}
            for position, key in result.row_keys.items():
                parent, _ = self._match(rel, rows[position])
                by_key[key][column] = None
                if parent is not None:
                    parent_of[key] = parent
            for cycle in find_cycles(parent_of):
                chain = describe(cycle)
                result.cycles.append(cycle)
                for key in cycle:
                    del parent_of[key]
                    result.issues.append({"object": entry.name, KEY: key, "field": column, "reason":
                                          f"circular reference {chain}: left unlinked, set it in Twenty by hand"})
            for key, parent in parent_of.items():
                by_key[key][column] = parent

    def _resolve(
        self, entry: ObjectMapping, rel: Relation, column: str, position: int, row: dict[str, Any]
    ) -> str | None:
        target = self._entry(rel.object)
        if rel.same_row:
            if position in target.row_keys:
                return target.row_keys[position]
            problem = target.row_problems.get(position)
        else:
            found, problem = self._match(rel, row)
            if found is not None:
                return found
        if problem and rel.on_unresolved == "hold":
            raise InvalidValue(f"{column}: {problem}")
        if problem and rel.on_unresolved == "unlink":
            raise _Unlinked(problem)
        return None

    def _require_targets(self, entry: ObjectMapping, row: dict[str, Any]) -> None:
        """A note/task whose target must exist is held when it cannot be found."""
        for kind, rel in entry.targets.items():
            if rel.on_unresolved == "hold" and not rel.same_row:
                found, problem = self._match(rel, row)
                if found is None:
                    raise InvalidValue(f"no {kind} to attach to: {problem}")

    def _match(self, rel: Relation, row: dict[str, Any]) -> tuple[str | None, str | None]:
        target_entry = self.entries[rel.object]
        target = self._entry(rel.object)
        tried: list[str] = []
        for index, match in enumerate(rel.match):
            ctx = TransformContext(settings=self.settings)
            values = tuple(_cell(row.get(c)) for c in match.columns)
            if match.through is not None:
                values = self._through(match.through, values[0])
            try:
                wanted = get_transform(match.transform)(values, ctx)
            except InvalidValue:
                wanted = None
            if wanted is None:
                continue
            positions = self._match_index(target_entry, index, rel)[wanted]
            described = f"{'+'.join(match.columns)}={wanted!r}"
            if len(positions) == 1:
                (hit,) = positions
                if hit in target.row_keys:
                    return target.row_keys[hit], None
                return None, f"the matching {target_entry.from_} row ({described}) is not migrated: {target.row_problems.get(hit)}"
            tried.append(f"{described} matches {'several' if positions else 'no'} {target_entry.from_} rows")
        return None, ("; ".join(tried) or f"nothing to match a {target_entry.from_} row with")

    def _match_index(self, target: ObjectMapping, index: int, rel: Relation) -> defaultdict[Any, set[int]]:
        cache_key = (target.name, id(rel), index)
        if cache_key not in self._indexes:
            match = rel.match[index]
            ctx = TransformContext(settings=self.settings)
            fn = get_transform(match.transform)
            found: defaultdict[Any, set[int]] = defaultdict(set)
            for position, row in self._kept_rows(target.from_):
                if unmet(target.when, row, self.settings) is not None:
                    continue  # not a row of the target kind (e.g. a person when companies are wanted)
                # One target column per value; several target columns are alternatives
                # (Email or OtherEmail), unless the match compares a tuple of columns.
                groups = (
                    [match.target_columns]
                    if len(match.columns) == len(match.target_columns) and len(match.columns) > 1
                    else [(c,) for c in match.target_columns]
                )
                for columns in groups:
                    try:
                        value = fn(tuple(_cell(row.get(c)) for c in columns), ctx)
                    except InvalidValue:
                        continue
                    if value is not None:
                        found[value].add(position)
            self._indexes[cache_key] = found
        return self._indexes[cache_key]

    # --- entities found by deduplication -----------------------------------------------------

    def _stage_dedupe(self, entry: ObjectMapping) -> _EntryResult:
        dedupe = entry.dedupe
        assert dedupe is not None
        rows = self._source_rows(entry.from_)
        result = _EntryResult([], [], [], [], {}, {}, len(rows))
        clusters: dict[str, list[int]] = defaultdict(list)
        domains_by_position: dict[int, str | None] = {}
        unnamed: dict[int, str | None] = {}  # position -> why it has no usable name
        for position, row in enumerate(rows):
            if (excluded := self._exclusion(entry.from_, row)) is not None:
                result.row_problems[position] = excluded
                result.excluded.append({"object": entry.name, "source_object": entry.from_, KEY: None,
                                        ROW: self._row_label(entry, position, row), "reason": excluded})
                continue
            domains_by_position[position] = self._value(dedupe.also_by, row) if dedupe.also_by else None
            try:
                name_key = self._value(dedupe.by, row)
            except InvalidValue as exc:
                unnamed[position] = str(exc)
                continue
            if name_key is None:
                unnamed[position] = None
            else:
                clusters[name_key].append(position)

        entity_domains = self._entity_domains(clusters, domains_by_position)
        all_domains = defaultdict(set)  # any domain seen on an entity's rows -> entity keys
        for name_key, positions in clusters.items():
            for p in positions:
                if domains_by_position[p]:
                    all_domains[domains_by_position[p]].add(name_key)

        for position, why in unnamed.items():
            label = self._row_label(entry, position, rows[position])
            base = {"object": entry.name, "source_object": entry.from_, ROW: label, KEY: None}
            domain = domains_by_position[position]
            owners = all_domains.get(domain, set()) if domain else set()
            if len(owners) == 1:
                result.row_keys[position] = f"{entry.name}:{next(iter(owners))}"
                continue
            if domain and len(owners) > 1:
                reason = f"{why + '; ' if why else ''}domain {domain} belongs to several: {', '.join(sorted(owners))}"
                result.row_problems[position] = reason
                result.excluded.append({**base, "reason": reason})
            elif why:
                result.row_problems[position] = why
                result.excluded.append({**base, "reason": why})
            else:
                result.excluded.append({**base, "reason": f"no value in {', '.join(dedupe.by.columns)}"})

        linked_by_domain: defaultdict[str, list[int]] = defaultdict(list)
        for position, entity_key in result.row_keys.items():
            linked_by_domain[entity_key].append(position)
        domain_field = next(
            (n for n, s in entry.fields.items() if dedupe.also_by and s.columns == dedupe.also_by.columns), None
        )
        for name_key, positions in clusters.items():
            key = f"{entry.name}:{name_key}"
            for p in positions:
                result.row_keys[p] = key
            linked = sorted(positions + linked_by_domain[key])
            record = {"object": entry.name, "source_object": entry.from_, KEY: key, ROW_COUNT: len(linked),
                      ROW: ", ".join(self._row_label(entry, p, rows[p]) for p in linked[:20])}
            record[self.mapping.defaults.external_key_field] = key
            for name, spec in entry.fields.items():
                record[name] = self._pick(spec, [rows[p] for p in positions])
            if domain_field and record.get(domain_field) and entity_domains.get(name_key) is None:
                result.issues.append({"object": entry.name, KEY: key, "field": domain_field,
                                      "reason": f"domain {record[domain_field]} is claimed by another company; left blank"})
                record[domain_field] = None
            result.records.append(record)
        return result

    @staticmethod
    def _entity_domains(clusters: dict[str, list[int]], domains: dict[int, str | None]) -> dict[str, str | None]:
        """Give each entity its most common domain; a domain claimed by several entities goes to
        the one with most rows (Twenty keeps company domains unique)."""
        wanted = {}
        for name_key, positions in clusters.items():
            counts = Counter(domains[p] for p in positions if domains[p])
            wanted[name_key] = counts.most_common(1)[0] if counts else None
        winner: dict[str, tuple[int, str]] = {}
        for name_key, choice in wanted.items():
            if choice and (choice[0] not in winner or winner[choice[0]][0] < choice[1]):
                winner[choice[0]] = (choice[1], name_key)
        return {k: (c[0] if c and winner[c[0]][1] == k else None) for k, c in wanted.items()}

    def _pick(self, spec: FieldMapping, rows: list[dict[str, Any]]) -> Any:
        """One value for an entity from its rows: the most common (or first) valid one."""
        values = []
        for row in rows:
            if unmet(spec.when, row, self.settings) is not None:
                continue
            try:
                value = self._value(spec, row)
            except InvalidValue:
                continue
            if value is not None:
                values.append(value)
        if not values:
            return None
        if spec.pick == "first":
            return values[0]
        counts = Counter(map(repr, values))
        best = max(counts.values())
        return next(v for v in values if counts[repr(v)] == best)

    # --- uniqueness Twenty enforces ---------------------------------------------------------

    def _quarantine_duplicate_unique_values(self, entry: ObjectMapping, result: _EntryResult) -> None:
        """Twenty rejects a second record with the same unique value (e.g. a person's primary
        email); hold the later one for review as a probable duplicate instead, or, when the
        field says `on_duplicate: blank`, keep it with that field left blank (a field issue)."""
        position_of = {k: p for p, k in result.row_keys.items()}
        for path in self.catalogue[entry.twenty_object].unique_fields:
            column, _, sub = path.partition(".")
            field = path if path in entry.fields else column  # flat "a.b", or a composite "a"
            rule = entry.fields[field].on_duplicate if field in entry.fields else "quarantine"
            owners = self.owners.setdefault((entry.name, path), {})
            kept = []
            for record in result.records:
                value = record.get(path) if path in record else record.get(column)
                composite = value if isinstance(value, dict) else None
                value = value.get(sub) if composite is not None else value
                folded = str(value).lower() if value else None
                if folded and owners.get(folded, record[KEY]) == record[KEY]:
                    owners[folded] = record[KEY]
                    kept.append(record)
                    continue
                if folded and rule == "additional" and sub in ADDITIONAL_LISTS:
                    others = ADDITIONAL_LISTS[sub]
                    record[field] = {others: [value, *(composite or {}).get(others, [])]}
                    result.issues.append({"object": entry.name, KEY: record[KEY], "field": field, "reason":
                                          f"{path} {value} is already used by {owners[folded]}; kept in {column}.{others}"})
                elif folded and rule != "quarantine":
                    record[field] = None
                    result.issues.append({"object": entry.name, KEY: record[KEY], "field": field,
                                          "reason": f"{path} {value} is already used by {owners[folded]}; left blank"})
                elif folded:
                    reason = f"{path} {value} is already used by {owners[folded]}: probable duplicate"
                    result.quarantined.append({**record, "reason": reason})
                    position = position_of[record[KEY]]
                    del result.row_keys[position]
                    result.row_problems[position] = reason
                    continue
                kept.append(record)
            result.records = kept

    # --- junction records (noteTargets, taskTargets) ----------------------------------------

    def _stage_junction(self, junction: str) -> StagedObject:
        """One junction record per target found. Accounting: a note/task counts one source row
        per target found (a note on its opportunity and its contact: two), and one excluded row,
        with the reasons, when none of its targets is found."""
        parents = [e for e in self.entries.values() if e.targets and JUNCTIONS[e.twenty_object][0] == junction]
        records = []
        excluded = []
        input_rows: dict[str, int] = {}
        relations: dict[str, str] = {}
        for parent in parents:
            parent_column = JUNCTIONS[parent.twenty_object][1]
            relations[parent_column] = parent.name
            parent_result = self._entry(parent.name)
            source = self._source_rows(parent.from_)
            name = f"{parent.name}_targets"
            input_rows[name] = 0
            for position, key in parent_result.row_keys.items():
                label = self._row_label(parent, position, source[position])
                found, problems = 0, []
                for kind, rel in parent.targets.items():
                    target_key, problem = (
                        (self._entry(rel.object).row_keys.get(position), "not migrated")
                        if rel.same_row
                        else self._match(rel, source[position])
                    )
                    if target_key is None:
                        problems.append(f"{kind}: {problem}")
                        continue
                    found += 1
                    column = target_field(kind)
                    relations[column] = rel.object
                    records.append({
                        "object": name, "source_object": parent.from_, ROW: label,
                        KEY: f"{key}->{target_key}", ROW_COUNT: 1, parent_column: key, column: target_key,
                    })
                if not found:
                    excluded.append({"object": name, "source_object": parent.from_, ROW: label, KEY: key,
                                     "reason": f"no target found ({'; '.join(problems)})"})
                input_rows[name] += max(found, 1)
        return StagedObject(junction, self.catalogue.plural(junction), _frame(records, [KEY, "source_object", ROW, "object"]),
                            relations, {}, _frame([], DISPOSITION_COLUMNS), _frame(excluded, DISPOSITION_COLUMNS),
                            _frame([], ISSUE_COLUMNS), [], input_rows)

    # --- files re-uploaded as attachments -------------------------------------------------

    def _file_problem(self, entry: ObjectMapping, row: dict[str, Any], label: str) -> str | None:
        """Why the record's file will not be uploaded (none; over Twenty's upload limit, decided
        from the size the source declares, so it is never downloaded), or None."""
        spec = entry.attachment
        assert spec is not None
        if _cell(row.get(spec.file)) is None:
            return f"no file: {spec.file} is blank"
        size = _file_size(row, spec.size)
        limit = self.mapping.defaults.max_upload_bytes
        if size is None or size <= limit:
            return None
        return (f"file {self._file_name(entry, row, label)} is {human_size(size)}, over Twenty's {human_size(limit)} "
                f"upload limit: download it from {self.mapping.source.label} ({spec.what} {label})")

    def _file_name(self, entry: ObjectMapping, row: dict[str, Any], label: str) -> str:
        spec = entry.attachment
        assert spec is not None
        try:
            name = self._value(spec.name, row)
        except InvalidValue:
            name = None
        return str(name) if name else f"{spec.what} {label}"

    def _say_file_not_attached(self, entry: ObjectMapping, record: dict[str, Any], row: dict[str, Any],
                               label: str) -> None:
        """The record's `notice_in` field ends with why its file is not attached, if it is not."""
        spec = entry.attachment
        if spec is None or spec.notice_in is None:
            return
        problem = self._file_problem(entry, row, label)
        if problem is not None:
            notice = f"**File not attached:** {problem}"
            text = record.get(spec.notice_in)
            record[spec.notice_in] = f"{text}\n\n{notice}" if text else notice

    def _stage_attachments(self) -> StagedObject:
        """One attachment per staged record of an object declaring `attachment:`, carrying the
        file's source reference and size for the load. Accounting: each such record counts one
        source row; a file that will not be uploaded is excluded, with the reason."""
        records, excluded = [], []
        relations: dict[str, str] = {}
        input_rows: dict[str, int] = {}
        for parent in (e for e in self.entries.values() if e.attachment is not None):
            spec = parent.attachment
            assert spec is not None
            column = target_field(parent.twenty_object)
            relations[column] = parent.name
            name = f"{parent.name}_files"
            rows = self._source_rows(parent.from_)
            staged = self._entry(parent.name).row_keys
            input_rows[name] = len(staged)
            for position, key in staged.items():
                row = rows[position]
                label = self._row_label(parent, position, row)
                base = {"object": name, "source_object": parent.from_, ROW: label, KEY: f"{key}#file"}
                problem = self._file_problem(parent, row, label)
                if problem is not None:
                    excluded.append({**base, "reason": problem})
                    continue
                records.append({**base, ROW_COUNT: 1, "name": self._file_name(parent, row, label), column: key,
                                FILE_REFERENCE: _cell(row.get(spec.file)), FILE_SIZE: _file_size(row, spec.size)})
        return StagedObject(ATTACHMENT, self.catalogue.plural(ATTACHMENT), _frame(records, [KEY, "source_object", ROW, "object"]), relations, {},
                            _frame([], DISPOSITION_COLUMNS), _frame(excluded, DISPOSITION_COLUMNS),
                            _frame([], ISSUE_COLUMNS), [], input_rows)

    # --- custom fields -----------------------------------------------------------------------

    def _custom_fields(self, entries: list[ObjectMapping], records: list[dict[str, Any]]) -> list[CustomFieldNeed]:
        twenty_object = entries[0].twenty_object if entries else ""
        defaults = self.mapping.defaults
        needs = {defaults.external_key_field: CustomFieldNeed(
            twenty_object, defaults.external_key_field,
            CustomField(type="TEXT", label=defaults.external_key_label, unique=True,
                        description=f"Record id in {self.mapping.source.label}; the migration's upsert key"))}
        for entry in entries:
            for name, spec in entry.fields.items():
                if spec.custom and enabled(spec.enabled_if, self.settings):
                    needs.setdefault(name, CustomFieldNeed(twenty_object, name, spec.custom))
            for name, need in self._pivot_needs.get(entry.name, {}).items():
                needs.setdefault(name, need)
            for member in entry.members.values():
                needs.setdefault(member.keep_original_in, CustomFieldNeed(
                    twenty_object, member.keep_original_in,
                    CustomField(type="TEXT", label="Original owner", description=f"Owner as recorded in {self.mapping.source.label}")))
        for need in needs.values():
            if need.spec.type in ("SELECT", "MULTI_SELECT"):
                # Declared options (used or not) keep the source's own labels over title case.
                seen = _options_seen(records, need.name, entries)
                declared = {**need.options, **self._options_declared(need.spec)}
                need.options = dict(sorted({**seen, **declared}.items()))
        return list(needs.values())

    def _options_declared(self, spec: CustomField) -> dict[str, str]:
        """Options named by `options_from`: every value of that source column, labelled as the source spells it."""
        if spec.options_from is None:
            return {}
        labels = (_cell(row.get(spec.options_from.column)) for row in self._source_rows(spec.options_from.object))
        return {option_value(label): label.strip() for label in labels if label is not None}


# How a pivoted value (text) is cast for each Twenty type (TEXT keeps its line breaks).
PIVOT_TRANSFORMS: dict[str, str] = {
    "TEXT": "join_lines", "NUMBER": "number", "CURRENCY": "currency", "DATE": "iso_date",
    "DATE_TIME": "iso_datetime", "SELECT": "select", "MULTI_SELECT": "tags", "BOOLEAN": "boolean",
}


@dataclass
class _PivotTable:
    definitions: dict[str, dict[str, Any]]  # definition key -> its row
    values: dict[str, dict[str, str | None]]  # parent key -> definition key -> value (last row wins)
    choices: dict[str, list[str]]  # definition key -> choice labels, in source order


def pivot_field_name(prefix: str, name: str, taken: Collection[str] = ()) -> str:
    """The Twenty field name of a pivoted field (`tenant_name`, avoiding `taken`):
    ("Family Law", "AgreedFee") -> "familyLawAgreedFee", ("", "Type") -> "typeCustom"."""
    return tenant_name(f"{prefix} {name}", taken)


def import_order(entries: Iterable[ObjectMapping], catalogue: Catalogue) -> list[str]:
    """The Twenty objects these mapped objects produce (junctions included), parents first."""
    entries = list(entries)
    objects = {e.twenty_object for e in entries}
    objects |= {JUNCTIONS[e.twenty_object][0] for e in entries if e.targets}
    objects |= {ATTACHMENT for e in entries if e.attachment is not None}
    return sorted(objects, key=lambda o: (catalogue[o].order, o))


def _options_seen(records: list[dict[str, Any]], column: str, entries: list[ObjectMapping]) -> dict[str, str]:
    """Option values seen in the staged data, labelled in title case."""
    options: dict[str, str] = {}
    for record in records:
        value = record.get(column)
        for item in value if isinstance(value, list) else [value] if value else []:
            options.setdefault(item, item.replace("_", " ").title())
    return dict(sorted(options.items()))


def _file_size(row: dict[str, Any], column: str | None) -> int | None:
    """The size in bytes the source declares for a file; None when it declares none (or no number)."""
    raw = (_cell(row.get(column)) or "").strip() if column else ""
    return int(raw) if raw.isdigit() else None


def _choose(values: list[str | None], many: str) -> tuple[str | None, ...]:
    """One value of a lookup key's rows (see `Through.many`), or with `all` every distinct one."""
    present = [v for v in values if v is not None]
    if many == "all":
        return tuple(dict.fromkeys(present))
    if many == "first":
        return (values[0],)
    if many == "most_common" and present:
        counts = Counter(present)
        best = max(counts.values())
        return (next(v for v in present if counts[v] == best),)
    return (values[-1],)


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    if columns in (DISPOSITION_COLUMNS, ISSUE_COLUMNS):
        rows = [{c: row.get(c) for c in columns} for row in rows]
    frame = pd.DataFrame(rows, dtype=object)  # values as the transforms made them: no int -> float for blanks
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    return frame.astype(object) if len(frame) else frame


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value)
    return text if text.strip() else None


__all__ = ["Stager", "StagedObject", "CustomFieldNeed", "KEY", "ROW", "ROW_COUNT", "FILE_REFERENCE", "FILE_SIZE"]


class _Unlinked(Exception):
    """An `on_unresolved: unlink` relation found nothing: the record loads without the link."""
