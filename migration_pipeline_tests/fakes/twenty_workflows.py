"""Workflows in the fake Twenty: the `workflow` and `workflowVersion` objects, served by the
generic record routes (`/rest/workflows`, `/rest/workflowVersions`), and the sample workflow a
new Twenty 2.21 workspace comes with.

Shapes as read from a real 2.21 server (GET /rest/workflows and /rest/workflowVersions on a
new workspace): a workflow has `statuses` (["ACTIVE"] once a version is active) and
`lastPublishedVersionId`; a version has `status` and a `trigger` JSON of `type` and `settings`
(`eventName` such as "person.upserted" for a DATABASE_EVENT trigger, `fields` it watches on
update). The workspace's own "Quick Lead" (MANUAL trigger) and "Create company when adding a
new person" (DATABASE_EVENT person.upserted, watching `emails`) are both ACTIVE.
"""

from __future__ import annotations

from typing import Any

from migration_pipeline_tests.fakes.twenty_schema import (
    FieldMeta,
    ObjectMeta,
    make_options,
    relation_pair,
    stable_id,
    system_fields,
)
from migration_pipeline_tests.fakes.twenty_store import Workspace

WORKFLOW_STATUSES = ("DRAFT", "ACTIVE", "DEACTIVATED")
VERSION_STATUSES = ("DRAFT", "ACTIVE", "DEACTIVATED", "ARCHIVED")
CREATE_COMPANY_WORKFLOW = "Create company when adding a new person"

# (workflow name, trigger) of the workflows every new workspace has, both active.
SAMPLE_WORKFLOWS: list[tuple[str, dict[str, Any]]] = [
    ("Quick Lead", {"name": "Launch manually", "type": "MANUAL", "settings": {"outputSchema": {}}}),
    (CREATE_COMPANY_WORKFLOW, {
        "name": "Record is created or updated",
        "type": "DATABASE_EVENT",
        "settings": {"eventName": "person.upserted", "fields": ["emails"], "outputSchema": {}},
    }),
]


def add_workflows(workspace: Workspace) -> None:
    """Adds the workflow objects and the sample workflows to a new workspace."""
    workflow = _object("workflow", "workflows", "Workflow", "Workflows", [
        ("name", "TEXT", "Name", None),
        ("lastPublishedVersionId", "TEXT", "Last published Version Id", None),
        ("statuses", "MULTI_SELECT", "Statuses", WORKFLOW_STATUSES),
    ])
    version = _object("workflowVersion", "workflowVersions", "Workflow Version", "Workflow Versions", [
        ("name", "TEXT", "Name", None),
        ("status", "SELECT", "Version status", VERSION_STATUSES),
        ("trigger", "RAW_JSON", "Version trigger", None),
        ("steps", "RAW_JSON", "Version steps", None),
    ])
    many, one = relation_pair(version, "workflow", workflow, "versions", on_delete="CASCADE",
                              source_id=stable_id("workflowVersion", "workflow"),
                              inverse_id=stable_id("workflow", "versions", "workflowVersion"))
    version.fields[many.name], workflow.fields[one.name] = many, one
    for obj in (workflow, version):
        workspace.objects[obj.id] = obj
        workspace.tables[obj.id] = {}
        workspace.rebuild_unique_index(obj)
    for position, (name, trigger) in enumerate(SAMPLE_WORKFLOWS, start=1):
        workflow_id, version_id = stable_id("sample workflow", name), stable_id("sample workflow version", name)
        workspace.insert_system_record(workflow, {
            "id": workflow_id, "name": name, "statuses": ["ACTIVE"], "lastPublishedVersionId": version_id,
            "position": position,
        })
        workspace.insert_system_record(version, {
            "id": version_id, "name": "v1", "status": "ACTIVE", "trigger": trigger, "steps": [],
            "workflowId": workflow_id, "position": position,
        })


def _object(
    singular: str, plural: str, label: str, label_plural: str, fields: list[tuple[str, str, str, tuple[str, ...] | None]]
) -> ObjectMeta:
    obj = ObjectMeta(id=stable_id(singular), name_singular=singular, name_plural=plural,
                     label_singular=label, label_plural=label_plural)
    for system_field in system_fields(obj.id, lambda name: stable_id(singular, name)):
        obj.fields[system_field.name] = system_field
    for name, type_, field_label, options in fields:
        obj.fields[name] = FieldMeta(id=stable_id(singular, name), object_id=obj.id, name=name, type=type_,
                                     label=field_label, options=make_options(list(options)) if options else None)
    return obj
