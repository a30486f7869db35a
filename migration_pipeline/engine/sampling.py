"""A representative, self-consistent slice of a source export, for a sample run.

Generic: everything is read from the mapping. The *principal* source object is the hub most
mapped objects and relations involve (AllClients: contacts). Its rows are sorted into strata by
what they produce (a company, a second person, notes, ...) and picked round-robin across strata,
so every mapped object has members. Each picked row comes with the rows of other source objects
related to it through the mapping's `match:` relations/targets (its notes; its parent record when
the principal points into another source object). Lookup tables read only through `through:` are
kept whole.

Relatives are followed one relation deep; a mapped source object further from the principal (or
not related to it) gets an equal share of the budget as plain rows, so it is still represented.
Rows whose `on_unresolved: hold` relation would find no row in the slice (a task of a matter not
picked) are left out: the sample would hold them only because of the slice.
`sample_size` bounds the source rows of the slice; whole lookup tables are not counted. The same
export, mapping and size always give the same slice.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd

from migration_pipeline.engine.mapping import Condition, Mapping, Match, ObjectMapping, Relation, unmet
from migration_pipeline.engine.transforms import InvalidValue, TransformContext, get_transform, stable_hash


class SampleError(dg.Failure):
    """The slice cannot be built as configured; the message says what to change (a Dagster
    Failure, so the run stops with this message rather than a traceback)."""

    def __init__(self, message: str) -> None:
        super().__init__(description=message)


@dataclass(frozen=True)
class Link:
    """A `match:` relation from rows of `child` to rows of `parent` (two source objects)."""

    child: str
    parent: str
    via: str  # mapped object holding the relation (e.g. notes)
    relation: Relation
    target_when: Condition | None  # rows of `parent` that are not of the target kind never match
    target_excluded: Condition | None = None  # nor do rows its `exclude_when` leaves out (deleted)


@dataclass
class SampleSlice:
    extracts: dict[str, pd.DataFrame]
    principal: str
    budget: int
    counted_rows: int  # source rows of the slice that count against the budget
    strata: dict[str, int] = field(default_factory=dict)  # profile -> principal rows picked
    whole_tables: list[str] = field(default_factory=list)


def sample_extracts(
    mapping: Mapping, extracts: dict[str, pd.DataFrame], settings: dict[str, Any], sample_size: int
) -> SampleSlice:
    """The sampled frames (same columns, original row order) and how the slice was chosen."""
    if sample_size < 1:
        raise SampleError(f"sample_size must be at least 1, got {sample_size} (MigrationSettings.sample_size)")
    objects = mapping.enabled_objects(settings)
    mapped_sources = [s for s in mapping.source.objects if any(o.from_ == s for o in objects)]
    principal = principal_source(mapping, settings)
    links = _links(mapping, objects)
    ctx = TransformContext(settings=settings)

    kids = [link for link in links if link.parent == principal and link.child != principal]
    parents = [link for link in links if link.child == principal and link.parent != principal]
    reached = {principal} | {link.child for link in kids} | {link.parent for link in parents}
    unreached = [s for s in mapped_sources if s not in reached]
    share = sample_size // (len(unreached) + 1)

    rows = {name: extracts[name].to_dict("records") for name in mapped_sources}
    children = _children_by_principal_row(kids, rows, principal, ctx)
    parent_rows = _parents_by_principal_row(parents, rows, principal, ctx)
    features = _features(objects, principal, children, parent_rows, settings)
    features += _grandchild_features(links, unreached, rows, children, ctx)
    budget = sample_size - share * len(unreached)
    picked, profiles = _pick(mapping, principal, rows[principal], features, children.rows, parent_rows.rows, budget)

    kept = _with_relatives(principal, picked, kids, parents, children.rows, parent_rows.rows, rows, ctx)
    for source in sorted(set(mapped_sources) - {principal}, key=lambda s: _depth(mapping, objects, s)):  # parents first
        outside = _held_outside(links, source, rows, kept, ctx)
        if source in reached:
            kept[source] -= outside
        else:
            kept[source] = set([p for p in _stable_order(mapping, source, rows[source]) if p not in outside][:share])

    whole = [s for s in extracts if s not in mapped_sources]
    sampled = {
        name: frame if name in whole else frame.iloc[sorted(kept[name])].reset_index(drop=True)
        for name, frame in extracts.items()
    }
    counted = sum(len(sampled[s]) for s in mapped_sources)
    strata: dict[str, int] = defaultdict(int)
    for position in sorted(kept[principal]):
        strata["+".join(profiles[position]) or "none"] += 1
    return SampleSlice(sampled, principal, sample_size, counted, dict(sorted(strata.items())), whole)


def principal_source(mapping: Mapping, settings: dict[str, Any]) -> str:
    """The hub of the mapping: the source object that feeds the most mapped objects and takes
    part in the most relations/targets, as either end (first declared on a tie). Companies <-
    people <- notes gives people, so both neighbours are one relation away from it."""
    objects = mapping.enabled_objects(settings)
    source_of = {o.name: o.from_ for o in objects}
    score: dict[str, int] = {name: 0 for name in mapping.migrated_source_objects}
    for obj in objects:
        score[obj.from_] += 1
        for rel in [*obj.relations.values(), *obj.targets.values()]:
            if rel.object in source_of:
                score[source_of[rel.object]] += 1
                score[obj.from_] += 1
    return max(mapping.migrated_source_objects, key=lambda name: score[name])


# --- relations between source objects --------------------------------------------------------


def _links(mapping: Mapping, objects: list[ObjectMapping]) -> list[Link]:
    by_name = {o.name: o for o in objects}
    return [
        Link(obj.from_, by_name[rel.object].from_, obj.name, rel, by_name[rel.object].when,
             mapping.source.objects[by_name[rel.object].from_].exclude_when)
        for obj in objects
        for rel in [*obj.relations.values(), *obj.targets.values()]
        if rel.match and rel.object in by_name
    ]


class _MatchIndex:
    """Resolves a row to the one target row its relation matches, as staging does: the first
    `match` finding exactly one target row wins; several matches are ambiguous, not a guess."""

    def __init__(self, link: Link, target_rows: list[dict[str, Any]], ctx: TransformContext) -> None:
        self.relation = link.relation
        self.ctx = ctx
        kind = [unmet(link.target_when, row, ctx.settings) is None
                and (link.target_excluded is None or unmet(link.target_excluded, row, ctx.settings) is not None)
                for row in target_rows]
        self.indexes = [_index(match, target_rows, kind, ctx) for match in link.relation.match]

    def resolve(self, row: dict[str, Any]) -> int | None:
        for match, index in zip(self.relation.match, self.indexes, strict=True):
            wanted = _apply(match.transform, [row.get(c) for c in match.columns], self.ctx)
            if wanted is None:
                continue
            hits = index.get(wanted, ())
            if len(hits) == 1:
                return next(iter(hits))
        return None


def _index(match: Match, rows: list[dict[str, Any]], of_kind: list[bool], ctx: TransformContext) -> dict[Any, set[int]]:
    # One target column per value; several target columns are alternatives (Email or
    # OtherEmail), unless the match compares a tuple of columns with a tuple of columns.
    tuple_match = len(match.columns) == len(match.target_columns) > 1
    groups = [match.target_columns] if tuple_match else [(c,) for c in match.target_columns]
    found: dict[Any, set[int]] = defaultdict(set)
    for position, row in enumerate(rows):
        if not of_kind[position]:
            continue
        for columns in groups:
            value = _apply(match.transform, [row.get(c) for c in columns], ctx)
            if value is not None:
                found[value].add(position)
    return found


def _apply(transform: str, cells: Iterable[Any], ctx: TransformContext) -> Any:
    try:
        return get_transform(transform)(tuple(_cell(c) for c in cells), ctx)
    except InvalidValue:
        return None


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value)
    return text if text.strip() else None


@dataclass
class _Relatives:
    """Per principal row: the rows related to it, and through which mapped objects."""

    rows: defaultdict[int, set[tuple[str, int]]] = field(default_factory=lambda: defaultdict(set))
    via: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # label -> principal rows

    def add(self, principal_row: int, source: str, position: int, label: str) -> None:
        self.rows[principal_row].add((source, position))
        self.via[label].add(principal_row)


def _children_by_principal_row(
    kids: list[Link], rows: dict[str, list[dict[str, Any]]], principal: str, ctx: TransformContext
) -> _Relatives:
    children = _Relatives()
    for link in kids:
        index = _MatchIndex(link, rows[principal], ctx)
        for position, row in enumerate(rows[link.child]):
            parent = index.resolve(row)
            if parent is not None:
                children.add(parent, link.child, position, link.via)
    return children


def _parents_by_principal_row(
    parents: list[Link], rows: dict[str, list[dict[str, Any]]], principal: str, ctx: TransformContext
) -> _Relatives:
    found = _Relatives()
    for link in parents:
        index = _MatchIndex(link, rows[link.parent], ctx)
        for position, row in enumerate(rows[principal]):
            parent = index.resolve(row)
            if parent is not None:
                found.add(position, link.parent, parent, link.relation.object)
    return found


def _with_relatives(
    principal: str,
    picked: list[int],
    kids: list[Link],
    parents: list[Link],
    children: dict[int, set[tuple[str, int]]],
    parent_rows: dict[int, set[tuple[str, int]]],
    rows: dict[str, list[dict[str, Any]]],
    ctx: TransformContext,
) -> defaultdict[str, set[int]]:
    """Positions kept per source object: the picked principal rows, their parents, then their
    children; rows whose relation would resolve differently inside the slice are left out."""
    kept: defaultdict[str, set[int]] = defaultdict(set)
    kept[principal] = set(picked)
    for position in picked:
        for source, found in parent_rows.get(position, ()):
            kept[source].add(found)
    for link in parents:
        kept[principal] = _consistent(link, rows, kept, ctx)
    for position in kept[principal]:
        for source, found in children.get(position, ()):
            kept[source].add(found)
    for link in kids:
        kept[link.child] &= _consistent(link, rows, kept, ctx)
    return kept


def _held_outside(
    links: list[Link], source: str, rows: dict[str, list[dict[str, Any]]], kept: dict[str, set[int]],
    ctx: TransformContext,
) -> set[int]:
    """Rows of `source` whose `on_unresolved: hold` relation finds no row in the slice (a task of
    a matter not picked, or of a matter left out): in the sample they would be held, so they
    are left out of it, as rows matching no principal row are."""
    outside: set[int] = set()
    for link in links:
        if link.child != source or link.parent == source or link.relation.on_unresolved != "hold":
            continue
        index = _MatchIndex(link, rows[link.parent], ctx)
        outside |= {p for p, row in enumerate(rows[source]) if index.resolve(row) not in kept[link.parent]}
    return outside


def _depth(mapping: Mapping, objects: list[ObjectMapping], source: str) -> int:
    return min(mapping.catalogue[o.twenty_object].order for o in objects if o.from_ == source)


def _consistent(
    link: Link, rows: dict[str, list[dict[str, Any]]], kept: dict[str, set[int]], ctx: TransformContext
) -> set[int]:
    """Kept child rows that, staged within the slice, still match the parent row they match in
    the whole export (a fallback match can become unambiguous once rows are left out)."""
    parent_positions = sorted(kept[link.parent])
    full = _MatchIndex(link, rows[link.parent], ctx)
    sliced = _MatchIndex(link, [rows[link.parent][p] for p in parent_positions], ctx)
    consistent = set()
    for position in kept[link.child]:
        row = rows[link.child][position]
        in_slice = sliced.resolve(row)
        if (None if in_slice is None else parent_positions[in_slice]) == full.resolve(row):
            consistent.add(position)
    return consistent


# --- stratified pick of principal rows --------------------------------------------------------


Feature = tuple[str, Callable[[int, dict[str, Any]], bool]]  # label, test on (position, row)


def _features(
    objects: list[ObjectMapping], principal: str, children: _Relatives, parents: _Relatives,
    settings: dict[str, Any],
) -> list[Feature]:
    """What tells principal rows apart: the mapped objects a row may or may not produce (its
    `when`, the dedupe column), and whether it has children or a parent through each relation."""
    features: list[Feature] = []
    for obj in objects:
        if obj.from_ != principal:
            continue
        if obj.when is not None:
            features.append((obj.name, lambda _, row, when=obj.when: unmet(when, row, settings) is None))
        if obj.dedupe is not None:
            features.append((obj.name, lambda _, row, cols=obj.dedupe.by.columns: any(_cell(row.get(c)) for c in cols)))
    for relatives in (children, parents):
        for label, positions in sorted(relatives.via.items()):
            features.append((label, lambda position, _, found=positions: position in found))
    return features


def _grandchild_features(
    links: list[Link], unreached: list[str], rows: dict[str, list[dict[str, Any]]], children: _Relatives,
    ctx: TransformContext,
) -> list[Feature]:
    """Whether a principal row's children have rows of an object two relations away (a contact's
    matter has tasks): so the pick reaches those objects too, taken then from their own share."""
    features: list[Feature] = []
    for link in links:
        if link.child not in unreached or link.parent in unreached:
            continue
        index = _MatchIndex(link, rows[link.parent], ctx)
        parents = {(link.parent, p) for p in map(index.resolve, rows[link.child]) if p is not None}
        holders = frozenset(r for r, found in children.rows.items() if found & parents)
        features.append((link.via, lambda position, _, found=holders: position in found))
    return features


def _profile(position: int, row: dict[str, Any], features: list[Feature]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(label for label, holds in features if holds(position, row)))


def _stable_order(mapping: Mapping, source: str, rows: list[dict[str, Any]]) -> list[int]:
    """Positions in an order that does not follow the file (which often groups by date or
    owner) but is the same on every run."""
    key_column = mapping.source.objects[source].key
    return sorted(
        range(len(rows)),
        key=lambda p: stable_hash((_cell(rows[p].get(key_column)) if key_column else str(p),)),
    )


def _pick(
    mapping: Mapping,
    principal: str,
    rows: list[dict[str, Any]],
    features: list[Feature],
    children: dict[int, set[tuple[str, int]]],
    parents: dict[int, set[tuple[str, int]]],
    budget: int,
) -> tuple[list[int], dict[int, tuple[str, ...]]]:
    """Principal rows round-robin across strata while their rows fit in the budget; also
    returns the profile of every picked row."""
    strata: dict[tuple[str, ...], deque[int]] = defaultdict(deque)
    profiles: dict[int, tuple[str, ...]] = {}
    for position in _stable_order(mapping, principal, rows):
        profiles[position] = _profile(position, rows[position], features)
        strata[profiles[position]].append(position)
    order = _coverage_order(list(strata))
    picked: list[int] = []
    kept_parents: set[tuple[str, int]] = set()
    used = 0
    progressed = True
    while progressed and used < budget:
        progressed = False
        for profile in order:
            queue = strata[profile]
            while queue:
                position = queue.popleft()
                new_parents = parents.get(position, set()) - kept_parents
                cost = 1 + len(children.get(position, ())) + len(new_parents)
                if used + cost <= budget:
                    picked.append(position)
                    kept_parents |= new_parents
                    used += cost
                    progressed = True
                    break
    if not picked and rows:
        smallest = min(1 + len(children.get(p, ())) + len(parents.get(p, ())) for p in range(len(rows)))
        raise SampleError(
            f"sample_size {budget} is too small: the smallest {principal} row with its related rows "
            f"needs {smallest}; raise MigrationSettings.sample_size"
        )
    return picked, {p: profiles[p] for p in picked}


def _coverage_order(profiles: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Strata in the order each round visits them: first, greedily, the one adding the most
    labels not yet covered (so a small budget still reaches every mapped object: a contact with
    a matter before a second plain contact), then the rest, simplest first."""
    remaining = sorted(profiles, key=lambda p: (len(p), p))
    covered: set[str] = set()
    order: list[tuple[str, ...]] = []
    while remaining:
        best = max(remaining, key=lambda p: len(set(p) - covered))  # first of the simplest on a tie
        if not set(best) - covered:
            break
        order.append(best)
        covered |= set(best)
        remaining.remove(best)
    return order + remaining


__all__ = ["SampleSlice", "SampleError", "sample_extracts", "principal_source"]
