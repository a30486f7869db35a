"""The rebuild package: what Twenty cannot hold, exported for the people who rebuild it.

`write_rebuild_package(folder, ...)` writes one CSV per export-only source object (as the
connector handed it over), the workflow configuration as `workflow.json` (every record with all
its fields, children nested under their root record) and `workflow.html` (a readable document
for the Twenty admin), and `README.txt` listing what is in the package and why it is not in
Twenty. Generic: what goes in is declared by the mapping (`export_only`, `rebuild:`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from migration_pipeline.engine.mapping import Mapping, RestObject, WorkflowSpec
from migration_pipeline.engine.unreadable import UnreadableResource
from migration_pipeline.reports.html import write_html

WORKFLOW_JSON = "workflow.json"
WORKFLOW_HTML = "workflow.html"
README = "README.txt"


@dataclass
class ExportedFile:
    name: str  # file name in the package
    source_object: str
    resource: str
    rows: int
    description: str
    reason: str


@dataclass
class RebuildPackage:
    folder: Path
    files: list[ExportedFile] = field(default_factory=list)
    workflow_roots: int = 0
    unreadable: list[UnreadableResource] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "files": {f.name: f.rows for f in self.files},
                "workflow_roots": self.workflow_roots, "unreadable": [u.as_row() for u in self.unreadable]}


def _value(value: Any) -> Any:
    """A frame cell as JSON: NaN/None -> None, everything else as the connector gave it."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _linked(value: Any, root_id: str) -> bool:
    """A link column holds one id or several comma-joined ids."""
    return value is not None and root_id in str(value).split(",")


def workflow_document(spec: WorkflowSpec, frames: dict[str, pd.DataFrame], source: str, run_key: str,
                      not_exported: list[dict[str, str]]) -> dict[str, Any]:
    """One entry per root record (e.g. matter type) with its fields and its children."""
    children = {name: _records(frames[child.object]) for name, child in spec.children.items()}
    roots = []
    for root in _records(frames[spec.root]):
        root_id = str(root.get("id"))
        nested = {}
        for name, child in spec.children.items():
            nested[name] = [row for row in children[name]
                            if _linked(row.get(child.link), root_id)
                            and all(str(row.get(col)) == want for col, want in child.where.items())]
        roots.append({"id": root_id, "title": root.get(spec.title), "fields": root, "children": nested})
    return {
        "source": source,
        "run": run_key,
        "root": spec.root,
        "children": {name: {"object": c.object, "link": c.link, "where": c.where, "columns": c.columns}
                     for name, c in spec.children.items()},
        "columns": spec.columns,
        "records": roots,
        "not_exported": not_exported,
    }


def write_rebuild_package(folder: Path, mapping: Mapping, frames: dict[str, pd.DataFrame],
                          run_key: str, unreadable: list[UnreadableResource] | None = None) -> RebuildPackage:
    """`unreadable`: resources the source refused (read as empty): the README says which and why."""
    folder.mkdir(parents=True, exist_ok=True)
    package = RebuildPackage(folder, unreadable=list(unreadable or []))
    for name in mapping.export_only_objects:
        spec = mapping.source.objects[name]
        assert isinstance(spec, RestObject)
        file_name = f"{name}.csv"
        frames[name].to_csv(folder / file_name, index=False)
        package.files.append(ExportedFile(file_name, name, spec.path, len(frames[name]), spec.description,
                                          spec.export_reason))
    rebuild = mapping.rebuild
    not_exported = [{"what": n.what, "why": n.why} for n in (rebuild.not_exported if rebuild else [])]
    document = None
    if rebuild is not None and rebuild.workflow is not None:
        document = workflow_document(rebuild.workflow, frames, mapping.source.label, run_key, not_exported)
        (folder / WORKFLOW_JSON).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        write_html(folder / WORKFLOW_HTML, "workflow.html.j2", doc=document)
        package.workflow_roots = len(document["records"])
    (folder / README).write_text(_readme(mapping, package, document, not_exported, run_key), encoding="utf-8")
    return package


def _readme(mapping: Mapping, package: RebuildPackage, document: dict[str, Any] | None,
            not_exported: list[dict[str, str]], run_key: str) -> str:
    label = mapping.source.label
    lines = [
        f"Rebuild package: {label}, run {run_key}",
        "",
        f"What Twenty cannot hold, exported from {label} instead of migrated. Nothing here was written",
        "to Twenty. The CSV files hold the records exactly as the connector read them (dates",
        "YYYY-MM-DD, times UTC, flags true/false, link ids in links.<name> columns).",
        "",
        "Files:",
    ]
    for f in package.files:
        lines += [f"  {f.name} ({f.rows} rows, {label} resource `{f.resource}`): {f.description}",
                  f"      not in Twenty: {f.reason}"]
    if document is not None:
        lines += [f"  {WORKFLOW_JSON}: the workflow configuration, one entry per `{document['root']}` record "
                  f"({len(document['records'])}) with its {', '.join(document['children']) or 'fields'}",
                  f"  {WORKFLOW_HTML}: the same as a readable document, for the Twenty admin to rebuild from"]
    lines.append(f"  {README}: this file")
    if package.unreadable:
        lines += ["", f"Not readable with this {label} key (their files above are empty; grant access and rerun):"]
        lines += [f"  `{u.resource}` ({u.source_object}): HTTP {u.status}: {u.reason}" for u in package.unreadable]
    if not_exported:
        lines += ["", "Not in this package:"]
        lines += [f"  {n['what']}: {n['why']}" for n in not_exported]
    return "\n".join(lines) + "\n"


__all__ = ["write_rebuild_package", "workflow_document", "RebuildPackage", "ExportedFile"]
