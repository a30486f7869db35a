"""Reading export files into frames of strings, with errors an engineer can act on.

Only what the mapping cannot do without is required: a file a mapped object reads, and the key
columns of its records. A missing lookup file (Users.csv) or any other missing column is read
as blank and reported as a warning. Encodings (UTF-8 with or without BOM, cp1252, latin-1) and
delimiters (`,` `;` tab `|`) are detected unless the mapping declares them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from charset_normalizer import from_bytes

from migration_pipeline.engine.mapping import Mapping, SourceObject, Through, as_columns

ENCODINGS = ("utf_8", "cp1252", "latin_1")  # what exports are written in, most likely first
DELIMITERS = ",;\t|"


@dataclass
class Extract:
    frame: pd.DataFrame
    encoding: str
    delimiter: str
    warnings: list[str] = field(default_factory=list)


def required_columns(mapping: Mapping, source_object: str) -> list[str]:
    """The columns records cannot be built without: the source object's key and the key
    columns of the mapped objects reading it."""
    spec = mapping.source.objects[source_object]
    needed = [spec.key] if spec.key else []
    for obj in mapping.objects:
        if obj.from_ == source_object and obj.key is not None and obj.key.from_ is not None:
            needed += as_columns(obj.key.from_)
    return list(dict.fromkeys(needed))


def mapped_columns(mapping: Mapping, source_object: str) -> list[str]:
    """Every column of the source object the mapping reads: what a missing column is warned about."""
    by_name = {obj.name: obj for obj in mapping.objects}
    read: list[str] = []

    def through(spec: Through | None) -> None:
        if spec is not None and spec.object == source_object:
            read.extend([spec.key, spec.value, *spec.where])

    for obj in mapping.objects:
        own = obj.from_ == source_object
        values = [*obj.fields.values(), *(m.email for m in obj.members.values())]
        values += [v for v in (obj.dedupe.by, obj.dedupe.also_by) if v] if obj.dedupe else []
        for value in values:
            read.extend(value.columns if own else ())
            through(value.through)
        for rel in [*obj.relations.values(), *obj.targets.values()]:
            target_own = by_name[rel.object].from_ == source_object
            for match in rel.match:
                read.extend([*(match.columns if own else ()), *(match.target_columns if target_own else ())])
                through(match.through)
        if own and obj.key is not None:
            read.extend(as_columns(obj.key.from_) if obj.key.from_ else obj.key.hash_of or ())
        if own:
            read.extend(c for cond in (obj.when,) if cond for c in cond.columns())
    return list(dict.fromkeys(read))


def is_required_file(mapping: Mapping, source_object: str) -> bool:
    """A file some mapped object reads rows from; one only looked up (users) may be missing."""
    return any(obj.from_ == source_object for obj in mapping.objects)


def read_mapped_object(folder: Path, mapping: Mapping, source_object: str, schema: type[pa.DataFrameModel]) -> Extract:
    """A file of the mapping's export, with what the mapping requires of it."""
    spec = mapping.source.objects[source_object]
    assert isinstance(spec, SourceObject), f"{source_object} is not a file"
    return read_source_object(folder, spec, schema, required=required_columns(mapping, source_object),
                              required_file=is_required_file(mapping, source_object),
                              expected=mapped_columns(mapping, source_object))


def read_source_object(
    folder: Path, spec: SourceObject, schema: type[pa.DataFrameModel], *, required: list[str], required_file: bool,
    expected: Sequence[str] = (),
) -> Extract:
    """Every cell as a string ('' for blank), so nothing is guessed before the mapping's
    transforms run. Missing required input stops the run with a clear message; missing optional
    input becomes blank columns and a warning."""
    expected = list(dict.fromkeys([*schema.to_schema().columns, *expected]))
    path = folder / spec.file
    if not path.is_file():
        present = ", ".join(sorted(p.name for p in folder.glob("*"))) if folder.is_dir() else "folder not found"
        if required_file or not folder.is_dir():
            raise dg.Failure(description=f"{spec.file} not found in {folder} (present: {present}). "
                                         "Point the run at the folder holding the export files.")
        empty = pd.DataFrame({c: pd.Series(dtype=str) for c in dict.fromkeys(expected + required)})
        return Extract(empty, "", "", [f"{spec.file} not found in {folder}: read as empty (optional: only looked up)"])
    data = path.read_bytes()
    encoding = spec.encoding or _encoding(path, data)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise dg.Failure(description=f"{path} cannot be read as {encoding}: {exc}. Save it as UTF-8, or "
                                     "declare its `encoding:` in the mapping.") from None
    delimiter = spec.delimiter or _delimiter(text)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=delimiter,
                            quoting=csv.QUOTE_MINIMAL)
    except pd.errors.ParserError as exc:
        raise dg.Failure(description=f"{path} is not a readable CSV file ({encoding}, delimiter "
                                     f"{delimiter!r}): {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise dg.Failure(description=f"{path} lacks the column(s) {', '.join(missing)}, which the mapping "
                                     f"needs as keys; found: {', '.join(frame.columns)}")
    absent = [name for name in expected if name not in frame.columns]
    warnings = []
    if absent:
        warnings.append(f"{spec.file} has no column(s) {', '.join(absent)}: read as blank")
        frame = frame.assign(**dict.fromkeys(absent, ""))
    return Extract(frame, encoding, delimiter, warnings)


def _encoding(path: Path, data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf_8_sig"
    best = from_bytes(data, cp_isolation=list(ENCODINGS)).best() if data else None
    if best is None:
        raise dg.Failure(description=f"{path}: the encoding is none of {', '.join(ENCODINGS)}. Save it as "
                                     "UTF-8, or declare its `encoding:` in the mapping.")
    return "utf_8" if best.encoding == "ascii" else best.encoding


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","
