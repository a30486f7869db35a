"""A Twenty workspace read through its API: records and metadata, to compare before and after.

Works against any Twenty (the fake or a real server): records of the objects a migration writes
(soft-deleted ones included) and of workspace members, and every object's metadata with its
fields and options. What Twenty stamps itself on every write is left out (`IGNORED`), so two
snapshots compare equal when the data and the schema are the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

# Stamped by Twenty on every write; no API client can set them back (a revert is a write).
IGNORED_RECORD_KEYS = frozenset({"updatedAt", "updatedBy", "searchVector"})
IGNORED_METADATA_KEYS = frozenset({"updatedAt"})
# Always read: what a migration links or writes besides its mapped objects.
ALWAYS_READ = ("workspaceMember", "noteTarget", "taskTarget", "attachment")
PAGE = 200
# Records Twenty makes itself when records are written (its event log, runs of active workflows):
# not the migration's to undo, so only counted (`twenty_own_counts`), never compared.
TWENTY_OWN = ("timelineActivities", "workflowRuns")


def snapshot(http: httpx.Client, objects: Iterable[str]) -> dict[str, Any]:
    """Records (by plural, then id) of `objects` (singular names; those the workspace lacks are
    skipped, since their absence shows in the metadata) plus the whole metadata (by singular)."""
    metadata = _metadata(http)
    records = {}
    for singular in sorted(set(objects) | set(ALWAYS_READ)):
        if singular in metadata:
            plural = metadata[singular]["namePlural"]
            records[plural] = _records(http, plural)
    return {"records": records, "metadata": metadata}


def twenty_own_counts(http: httpx.Client) -> dict[str, int]:
    counts = {}
    for plural in TWENTY_OWN:
        response = http.get(f"/rest/{plural}", params={"limit": 0})
        if response.status_code == 200:
            counts[plural] = int(response.json().get("totalCount") or 0)
    return counts


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Readable lines for what differs: records left behind or gone, changed values, and metadata
    (objects, fields and options) added, removed or changed. Empty when the snapshots are equal."""
    found: list[str] = []
    for plural in sorted(before["records"].keys() | after["records"].keys()):
        old, new = before["records"].get(plural, {}), after["records"].get(plural, {})
        found += [f"{plural} {i}: left behind {_label(new[i])}" for i in sorted(new.keys() - old.keys())]
        found += [f"{plural} {i}: gone {_label(old[i])}" for i in sorted(old.keys() - new.keys())]
        for i in sorted(old.keys() & new.keys()):
            found += [f"{plural} {i}: {key} {old[i].get(key, '<absent>')!r} -> {new[i].get(key, '<absent>')!r}"
                      for key in _changed(old[i], new[i])]
    old_meta, new_meta = before["metadata"], after["metadata"]
    found += [f"object {name}: left behind" for name in sorted(new_meta.keys() - old_meta.keys())]
    found += [f"object {name}: gone" for name in sorted(old_meta.keys() - new_meta.keys())]
    for name in sorted(old_meta.keys() & new_meta.keys()):
        old_obj, new_obj = old_meta[name], new_meta[name]
        found += [f"object {name}: {key} changed" for key in _changed(old_obj, new_obj) if key != "fields"]
        old_fields, new_fields = old_obj["fields"], new_obj["fields"]
        found += [f"field {name}.{f}: left behind ({new_fields[f].get('type')})"
                  for f in sorted(new_fields.keys() - old_fields.keys())]
        found += [f"field {name}.{f}: gone" for f in sorted(old_fields.keys() - new_fields.keys())]
        for f in sorted(old_fields.keys() & new_fields.keys()):
            found += [f"field {name}.{f}: {key} {old_fields[f].get(key)!r} -> {new_fields[f].get(key)!r}"
                      for key in _changed(old_fields[f], new_fields[f])]
    return found


def _changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in old.keys() | new.keys() if old.get(k, ...) != new.get(k, ...))


def _label(record: dict[str, Any]) -> str:
    name = record.get("name")
    if isinstance(name, dict):
        name = " ".join(str(v) for v in name.values() if v)
    return repr(name or record.get("title") or "")


def _metadata(http: httpx.Client) -> dict[str, dict[str, Any]]:
    response = http.get("/rest/metadata/objects", params={"limit": 1000})
    response.raise_for_status()
    data = response.json()["data"]
    objects = data["objects"] if isinstance(data, dict) else data
    return {
        o["nameSingular"]: {
            **{k: v for k, v in o.items() if k not in IGNORED_METADATA_KEYS and k != "fields"},
            "fields": {f["name"]: _field(f) for f in o.get("fields", [])},
        }
        for o in objects
    }


def _field(field: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in field.items() if k not in IGNORED_METADATA_KEYS}
    if isinstance(kept.get("options"), list):  # compared as a set of options, whatever their order
        kept["options"] = sorted(kept["options"], key=lambda o: str(o.get("value")))
    return kept


def _records(http: httpx.Client, plural: str) -> dict[str, dict[str, Any]]:
    """Every record of `plural`, live and soft-deleted, by id (GET hides soft-deleted rows unless
    the filter asks for them: examples-2.md section 1)."""
    rows: dict[str, dict[str, Any]] = {}
    for deleted in ("deletedAt[is]:NULL", "deletedAt[is]:NOT_NULL"):
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE, "filter": deleted}
            if cursor:
                params["starting_after"] = cursor
            response = http.get(f"/rest/{plural}", params=params)
            response.raise_for_status()
            body = response.json()
            for row in body["data"][plural]:
                rows[row["id"]] = {k: v for k, v in row.items() if k not in IGNORED_RECORD_KEYS}
            info = body.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            cursor = info["endCursor"]
    return rows
