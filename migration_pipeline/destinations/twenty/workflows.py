"""Twenty workflows that a run's writes would set off.

A workflow whose active version has a DATABASE_EVENT trigger on `<object>.created`,
`<object>.updated` or `<object>.upserted` (created or updated) runs once per record the API
writes: a new workspace's active "Create company when adding a new person" (person.upserted)
would add a company for every person a migration creates. An API key cannot deactivate a
workflow, so the run warns, with how many of its records would trigger each workflow and how to
pause it. Read through REST: `/rest/workflowVersions` (status, trigger JSON: type and
settings.eventName, settings.fields watched on update) and `/rest/workflows` (names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.engine.staging import KEY, StagedObject
from migration_pipeline.ledger import Ledger

# The record event each trigger action listens to, and which of a run's writes raise it.
WRITE_ACTIONS: dict[str, tuple[str, ...]] = {
    "created": ("create",),
    "updated": ("update",),
    "upserted": ("create", "update"),
}
HOW_TO_PAUSE = (
    "pause it before the load in Twenty: Settings > Workflows, open it, Deactivate (an API key "
    "cannot), and activate it again after the run"
)


@dataclass(frozen=True)
class RecordTrigger:
    """An active workflow that runs when records of `object` are written."""

    workflow_id: str
    workflow: str  # its name
    object: str  # Twenty object, singular (person)
    action: str  # created, updated or upserted
    watched_fields: tuple[str, ...] = ()  # on update, only changes to these fire it (none: any)

    @property
    def event(self) -> str:
        return f"{self.object}.{self.action}"


@dataclass(frozen=True)
class PlannedWrites:
    """Records of one object a run is about to create, and records it may update."""

    creates: int
    updates: int  # at most: records already in Twenty whose payload changed


@dataclass(frozen=True)
class WorkflowWarning:
    trigger: RecordTrigger
    creates: int
    updates: int

    @property
    def records(self) -> int:
        return self.creates + self.updates

    def message(self) -> str:
        parts = [f"{self.creates} created"] if self.creates else []
        if self.updates:
            watched = f", if {', '.join(self.trigger.watched_fields)} changed" if self.trigger.watched_fields else ""
            parts.append(f"up to {self.updates} updated{watched}")
        return (
            f'active Twenty workflow "{self.trigger.workflow}" ({self.trigger.event}) will run for '
            f"{self.records} records of this run ({', '.join(parts)}): {HOW_TO_PAUSE}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"workflow": self.trigger.workflow, "workflow_id": self.trigger.workflow_id,
                "event": self.trigger.event, "watched_fields": list(self.trigger.watched_fields),
                "creates": self.creates, "updates": self.updates, "message": self.message()}


def active_record_triggers(client: TwentyClient) -> list[RecordTrigger]:
    """Every active workflow version triggered by a record being created or updated."""
    versions = list(client.list_records("workflowVersions", filter="status[eq]:ACTIVE"))
    if not versions:
        return []
    names = {w["id"]: w.get("name") or "(unnamed)" for w in client.list_records("workflows")}
    triggers = [_record_trigger(v, names) for v in versions]
    return sorted((t for t in triggers if t is not None), key=lambda t: (t.object, t.workflow))


def warnings_for(triggers: Iterable[RecordTrigger], planned: Mapping[str, PlannedWrites]) -> list[WorkflowWarning]:
    """One warning per trigger that this run's writes (`planned`, by singular object) would fire."""
    warnings: list[WorkflowWarning] = []
    for trigger in triggers:
        writes = planned.get(trigger.object)
        if writes is None:
            continue
        actions = WRITE_ACTIONS[trigger.action]
        warning = WorkflowWarning(trigger, writes.creates if "create" in actions else 0,
                                  writes.updates if "update" in actions else 0)
        if warning.records:
            warnings.append(warning)
    return warnings


def _record_trigger(version: Mapping[str, Any], names: Mapping[str, str]) -> RecordTrigger | None:
    trigger = version.get("trigger") or {}
    settings = trigger.get("settings") or {}
    event = settings.get("eventName") or ""
    if trigger.get("type") != "DATABASE_EVENT" or event.count(".") != 1:
        return None
    object, action = event.split(".")
    if action not in WRITE_ACTIONS:
        return None  # deleted/destroyed: a migration run does not raise those
    workflow_id = version.get("workflowId") or ""
    return RecordTrigger(workflow_id, names.get(workflow_id, "(unnamed)"), object, action,
                         tuple(settings.get("fields") or ()))


def planned_writes(ledger: Ledger, staged: Iterable[StagedObject]) -> dict[str, PlannedWrites]:
    """Per Twenty object (singular): staged records the ledger does not know yet (creates) and
    those it maps to a Twenty record already (updates, at most)."""
    planned: dict[str, PlannedWrites] = {}
    for obj in staged:
        keys = [str(k) for k in obj.records[KEY].dropna()] if len(obj.records) else []
        known = sum(1 for entry in ledger.known(obj.plural, keys).values() if entry.twenty_id)
        before = planned.get(obj.twenty_object, PlannedWrites(0, 0))
        planned[obj.twenty_object] = PlannedWrites(before.creates + len(keys) - known, before.updates + known)
    return planned
