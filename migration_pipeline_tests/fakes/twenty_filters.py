"""The REST `filter=` / `order_by=` / cursor grammar of Twenty 2.21, evaluated in memory.

Parsing mirrors Twenty's `parse-filter*.util.ts`: `field[op]:value`, dotted composite subfields,
`and(...)`, `or(...)`, `not(...)`, and a top-level comma list meaning `and`, with the real
parser's quirks (examples-2.md section 1).
"""

from __future__ import annotations

import base64
import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migration_pipeline_tests.fakes.twenty_errors import bad_request
from migration_pipeline_tests.fakes.twenty_schema import COMPOSITES, ObjectMeta
from migration_pipeline_tests.fakes.twenty_values import is_uuid, parse_datetime

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

COMPARATORS = ("eq", "neq", "in", "containsAny", "is", "gt", "gte", "lt", "lte",
               "startsWith", "endsWith", "like", "ilike")
DIRECTIONS = ("AscNullsFirst", "AscNullsLast", "DescNullsFirst", "DescNullsLast")
_SCALAR_KINDS = {"UUID": "uuid", "RELATION": "uuid", "NUMBER": "number", "POSITION": "number", "BOOLEAN": "boolean", "DATE_TIME": "datetime",
                 "MULTI_SELECT": "array", "FILES": "json",
                 "RAW_JSON": "json"}
_SUBFIELD_KINDS = {"text": "text", "number": "number", "string_list": "array", "object_list": "json", "json": "json"}


@dataclass(frozen=True)
class FieldPath:
    column: str
    subfield: str | None
    kind: str  # text | number | boolean | datetime | array | json
    # Twenty stores an empty text as NULL: `[is]:NULL` and `[eq]:""` find both (examples-2.md section 10).
    null_equivalent: bool = False

    @property
    def dotted(self) -> str:
        return f"{self.column}.{self.subfield}" if self.subfield else self.column

    def read(self, row: Row) -> Any:
        value = row.get(self.column)
        if self.subfield is not None:
            value = value.get(self.subfield) if isinstance(value, dict) else None
        return value


def resolve_path(obj: ObjectMeta, dotted: str) -> FieldPath:
    column, _, subfield = dotted.partition(".")
    field = obj.columns().get(column)
    if field is None or (subfield and field.type not in COMPOSITES):
        # Assumption: wording of the real "unknown filter field" error is not recorded.
        raise bad_request(f"field '{dotted}' does not exist in '{obj.name_singular}' object")
    if not subfield:
        kind = "json" if field.type in COMPOSITES else _SCALAR_KINDS.get(field.type, "text")
        return FieldPath(column, None, kind, null_equivalent=field.type == "TEXT")
    spec = COMPOSITES[field.type].get(subfield)
    if spec is None:
        raise bad_request(f"field '{dotted}' does not exist in '{obj.name_singular}' object")
    null_equivalent = spec == ("text", "") or (field.type, subfield) == ("RICH_TEXT", "markdown")
    return FieldPath(column, subfield, _SUBFIELD_KINDS[spec[0]], null_equivalent)


# ---- filter parsing --------------------------------------------------------------------------
#
# Mirrors Twenty 2.21's parser quirk for quirk (api/rest/input-request-parsers/filter-parser-utils):
# the predicate splitter toggles a quote state on EVERY `"` and `'` (even inside a value) and a
# bracket state on every `[`/`]`, so a value with an apostrophe swallows the predicates after it;
# `[in]` lists are split on every comma; parentheses are counted over the whole string.

_ROOT = re.compile(r"^(and|or|not)\((.+)\)$", re.DOTALL)
_BASE = re.compile(r"^(.+)\[(.+)\]:(.+)$", re.DOTALL)


def split_predicates(text: str) -> list[str]:
    """The predicates of `conjunction(...)`, split as Twenty's parseFilterContent does."""
    parts, current = [], []
    depth, brackets, double, single = 0, False, False, False
    for char in text:
        persist = depth >= 1
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            persist = depth >= 1
        if char in "[]":
            brackets = not brackets
        if char == '"':
            double = not double
        if char == "'":
            single = not single
        if char == "," and depth == 1 and not (brackets or double or single):
            parts.append("".join(current))
            current, persist = [], False
        if persist:
            current.append(char)
    parts.append("".join(current))
    return parts


def _check_parentheses(text: str) -> None:
    diff = text.count("(") - text.count(")")
    if diff:
        count = abs(diff)
        hint = f"{count} close bracket{'s are' if count > 1 else ' is'}" if diff > 0 \
            else f"{count} open bracket{'s are' if count > 1 else ' is'}"
        raise bad_request(f"'filter' invalid. {hint} missing in the query")


def compile_filter(obj: ObjectMeta, text: str) -> tuple[Predicate, bool]:
    """A row predicate for `text`, and whether it mentions `deletedAt` (which unhides soft-deleted rows)."""
    _check_parentheses(text)
    if not _ROOT.match(text):
        text = f"and({text})"  # a bare predicate or a top-level comma list is an implicit and(...)
    mentions: list[str] = []
    return _compile(obj, text, mentions), "deletedAt" in mentions


def _compile(obj: ObjectMeta, text: str, mentions: list[str]) -> Predicate:
    junction = _ROOT.match(text)
    if junction is None:
        return _compile_predicate(obj, text, mentions)
    kind = junction.group(1)
    children = [_compile(obj, part, mentions) for part in split_predicates(text)]
    if kind == "not":
        if len(children) > 1:
            raise bad_request("'filter' invalid. 'not' conjunction should contain only 1 condition. "
                              "eg: not(field[eq]:1)")
        return lambda row: not children[0](row)
    if kind == "or":
        return lambda row: any(child(row) for child in children)
    return lambda row: all(child(row) for child in children)


def _split_base(text: str) -> tuple[str, str, str]:
    """`field.sub[comparator]:value`, read character by character like Twenty's parseBaseFilter."""
    fields, comparator, value = [], [], []
    fill_fields, fill_comparator, fill_value = True, False, False
    for char in text:
        if fill_value:
            value.append(char)
        if char == "]" and not fill_value:
            fill_comparator = False
        if char == ":" and not fill_comparator:
            fill_value = True
        if fill_comparator:
            comparator.append(char)
        if char == "[" and fill_fields:
            fill_fields, fill_comparator = False, True
        if fill_fields:
            fields.append(char)
    return "".join(fields), "".join(comparator), "".join(value)


def _compile_predicate(obj: ObjectMeta, text: str, mentions: list[str]) -> Predicate:
    if _BASE.match(text) is None:
        raise bad_request(f"'filter' invalid for '{text}'. eg: price[gte]:10")
    dotted, comparator, raw_value = _split_base(text)
    if comparator not in COMPARATORS:
        raise bad_request(f"'filter' invalid for '{text}', comparator {comparator} not in {', '.join(COMPARATORS)}")
    path = resolve_path(obj, dotted)
    mentions.append(path.column)
    expected = _parse_value(path, comparator, raw_value, text)
    read = _reader(path)
    if not path.null_equivalent:
        return lambda row: _matches(comparator, read(row), expected)
    # Empty text is stored as NULL, and `[eq]:""` (or a like of "") becomes `= '' OR IS NULL`.
    empty_is_wanted = comparator in ("eq", "like", "ilike") and _unquote(raw_value) == ""

    def matches_text(row: Row) -> bool:
        value = read(row) or None
        return (value is None and empty_is_wanted) or _matches(comparator, value, expected)

    return matches_text


def _unquote(text: str) -> str:
    if text and text[0] in "\"'" and text[-1] in "\"'":
        return text[1:-1]
    return text


def _parse_value(path: FieldPath, comparator: str, raw: str, text: str) -> Any:
    if comparator in ("in", "containsAny"):
        if not (raw.startswith("[") and raw.endswith("]")):
            raise bad_request(f"'filter' invalid for '{comparator}' operator. Received '{raw}' but array value "
                              f"expected eg: 'field[{comparator}]:[value_1,value_2]'")
        # Split on EVERY comma, quotes or not; then each element loses its outer quotes.
        return [_coerce(path, _unquote(item), text) for item in raw[1:-1].split(",")]
    if comparator == "is":
        if raw not in ("NULL", "NOT_NULL"):
            raise bad_request(f"'filter' invalid for '{text}', 'is' value must be NULL or NOT_NULL")
        return raw
    value = _coerce(path, _unquote(raw), text)
    if comparator in ("like", "ilike"):
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
        return re.compile(f"^{pattern}$", re.DOTALL | (re.IGNORECASE if comparator == "ilike" else 0))
    return value


def _coerce(path: FieldPath, value: str, text: str) -> Any:
    if path.kind == "number":
        try:
            return float(value)
        except ValueError:
            raise bad_request(f"'filter' invalid for '{text}', '{value}' is not a number") from None
    if path.kind == "uuid" and not is_uuid(value):
        raise bad_request(f"Invalid UUID value '{value}' for field \"{path.column}\"")
    if path.kind == "boolean":
        return value.lower() == "true"
    if path.kind == "datetime":
        moment = parse_datetime(value)
        if moment is None:
            raise bad_request(f"'filter' invalid for '{text}', '{value}' is not a date")
        return moment
    return value


def _reader(path: FieldPath) -> Callable[[Row], Any]:
    if path.kind == "datetime":
        return lambda row: parse_datetime(path.read(row))
    return path.read


def _matches(comparator: str, actual: Any, expected: Any) -> bool:
    if comparator == "is":
        return (actual is None) == (expected == "NULL")
    if actual is None:
        return False  # SQL semantics: NULL never equals, differs from or compares to anything
    if comparator == "eq":
        return actual == expected
    if comparator == "neq":
        return actual != expected
    if comparator == "in":
        return actual in expected
    if comparator == "containsAny":
        items = actual if isinstance(actual, list) else [actual]
        return any(item in expected for item in items)
    if comparator in ("like", "ilike"):
        return isinstance(actual, str) and expected.match(actual) is not None
    if comparator == "startsWith":
        return isinstance(actual, str) and actual.startswith(expected)
    if comparator == "endsWith":
        return isinstance(actual, str) and actual.endswith(expected)
    return _ordered(comparator, actual, expected)


def _ordered(comparator: str, actual: Any, expected: Any) -> bool:
    try:
        if comparator == "gt":
            return actual > expected
        if comparator == "gte":
            return actual >= expected
        if comparator == "lt":
            return actual < expected
        return actual <= expected
    except TypeError:
        return False


# ---- ordering and cursors --------------------------------------------------------------------


@dataclass(frozen=True)
class OrderTerm:
    path: FieldPath
    direction: str


def parse_order_by(obj: ObjectMeta, text: str | None) -> list[OrderTerm]:
    """Terms of `order_by`, always ending with `id` like Twenty's addDefaultOrderById."""
    terms: list[OrderTerm] = []
    for item in (text.split(",") if text else []):
        dotted, direction = item, "AscNullsFirst"
        if "[" in item and "]" in item:
            dotted, rest = item.split("[", 1)
            direction = rest.replace("]", "")
            if direction not in DIRECTIONS:
                raise bad_request(_direction_error(direction))
        terms.append(OrderTerm(resolve_path(obj, dotted), direction))
    if not any(term.path.column == "id" for term in terms):
        terms.append(OrderTerm(FieldPath("id", None, "text"), "AscNullsFirst"))
    return terms


def _direction_error(direction: str) -> str:
    allowed = "', '".join(DIRECTIONS)
    return (f"'order_by' direction '{direction}' invalid. Allowed values are '{allowed}'. "
            "eg: ?order_by=field_1[AscNullsFirst],field_2[DescNullsLast],field_3")


def encode_cursor(terms: list[OrderTerm], row: Row) -> str:
    payload = {term.path.dotted: term.path.read(row) for term in terms}
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_cursor(terms: list[OrderTerm], cursor: str) -> list[Any]:
    try:
        payload = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return [payload[term.path.dotted] for term in terms]
    except (ValueError, KeyError, TypeError):
        # Assumption: wording of the real invalid-cursor error is not recorded.
        raise bad_request(f"Invalid cursor '{cursor}'") from None


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) and not isinstance(value, bool) else (1, str(value))


class SortedView:
    """Rows sorted by order terms (directions and null placement honoured); cursors found by bisection.

    Each term's values are replaced by their rank among the term's distinct values, so one plain tuple
    compares rows whatever the directions; a cursor value absent from the rows gets a half rank.
    """

    def __init__(self, terms: list[OrderTerm], rows: list[Row]) -> None:
        self.terms = terms
        values = [[_hashable(term.path.read(row)) for term in terms] for row in rows]
        self._distinct = [sorted({v[i] for v in values if v[i] is not None}, key=_sortable) for i in range(len(terms))]
        self._ranks = [{value: rank for rank, value in enumerate(distinct)} for distinct in self._distinct]
        keys = [self._key(v) for v in values]
        order = sorted(range(len(rows)), key=keys.__getitem__)
        self.rows = [rows[i] for i in order]
        self.keys = [keys[i] for i in order]

    def _rank(self, index: int, value: Any) -> float:
        rank = self._ranks[index].get(value)
        if rank is None:
            return bisect.bisect_left(self._distinct[index], _sortable(value), key=_sortable) - 0.5
        return rank

    def _key(self, values: list[Any]) -> tuple[tuple[int, float], ...]:
        parts = []
        for index, (term, value) in enumerate(zip(self.terms, values, strict=True)):
            if value is None:
                parts.append((0 if term.direction.endswith("NullsFirst") else 2, 0.0))
            else:
                rank = self._rank(index, value)
                parts.append((1, rank if term.direction.startswith("Asc") else -rank))
        return tuple(parts)

    def index_after(self, cursor_values: list[Any]) -> int:
        """Index of the first row strictly after the cursor."""
        return bisect.bisect_right(self.keys, self._key([_hashable(v) for v in cursor_values]))

    def index_before(self, cursor_values: list[Any]) -> int:
        """Index one past the last row strictly before the cursor."""
        return bisect.bisect_left(self.keys, self._key([_hashable(v) for v in cursor_values]))
