"""Actionstep file notes, contact notes, tasks and staff users through Dagster into the fake
Twenty, checked against the generated Actionstep data (not against the pipeline's output)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from migration_pipeline.engine.transforms import option_value
from migration_pipeline.sources.actionstep.client import normalise_timestamp
from migration_pipeline_tests.harness import ADMIN_EMAIL
from migration_pipeline_tests.test_actionstep_e2e import (  # noqa: F401  (fixtures)
    _actionstep_server,
    _by_source_id,
    _instant,
    _source,
    fake_actionstep,
    migrate,
)

TASK_STATUS = {"Incomplete": "TODO", "Hidden": "TODO", "Complete": "DONE"}  # the mapping's value map


def _targets(records: list[dict[str, Any]], parent: str) -> dict[str, set[tuple[str, str]]]:
    """Twenty id of the note/task -> {(target kind, target id)}."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for junction in records:
        for kind in ("Person", "Company", "Opportunity"):
            if junction.get(f"target{kind}Id"):
                found[junction[parent]].add((kind.lower(), junction[f"target{kind}Id"]))
    return found


def test_notes_and_tasks_land_on_their_opportunities(migrate, fake_twenty, fake_actionstep) -> None:
    source = _source(fake_actionstep)
    users = fake_actionstep.records("users")
    email_of = {str(u["links"]["participant"]): u["email"] for u in users}  # staff participant -> email
    user_of = {str(u["links"]["participant"]): str(u["id"]) for u in users}  # staff participant -> user id
    with_email = [u for u in users if u["email"]]
    assert len(with_email) < len(users)  # a staff user without email is planted
    # Every staff user with an email is a workspace member, except one: resolved by email.
    member_id = {str(u["links"]["participant"]): fake_twenty.add_workspace_member(u["email"])
                 for u in with_email[1:]}
    fallback = next(m["id"] for m in fake_twenty.records("workspaceMembers") if m["userEmail"] == ADMIN_EMAIL)

    run = migrate(layers=("extract", "stage", "prepare", "load", "report", "verify"))
    assert run.success, run.result.all_events[-1]
    differences = (run.output / "verify" / "field_diff.csv").read_text(encoding="utf-8").splitlines()
    assert differences[1:] == [], differences[:5]
    for check in ("counts_match", "field_totals_match"):
        assert run.check("actionstep/verify/reconciliation", check).passed, check

    people = _by_source_id(fake_twenty.records("people"))
    companies = _by_source_id(fake_twenty.records("companies"))
    opportunities = _by_source_id(fake_twenty.records("opportunities"))
    contact_target = {**{i: ("person", p["id"]) for i, p in people.items()},
                      **{i: ("company", c["id"]) for i, c in companies.items()}}
    notes = {n["actionstepId"]: n for n in fake_twenty.records("notes")}
    note_targets = _targets(fake_twenty.records("noteTargets"), "noteId")
    quarantined = {(q["object"], q["source_row"]): q["reason"] for q in run.report("quarantined.csv").to_dict("records")}

    # File notes: every note of a migrated matter is a Note on that opportunity (and on the
    # contact it names); the notes of matters left out are held with the reason.
    file_notes = fake_actionstep.records("filenotes")
    assert file_notes
    for raw in file_notes:
        action, participant = str(raw["links"]["action"]), raw["links"]["participant"]
        key = f"file_notes:{raw['id']}"
        if action not in source["migrated"]:
            assert key not in notes
            assert "no opportunity to attach to" in quarantined[("file_notes", str(raw["id"]))]
            continue
        note = notes[key]
        assert note["title"] == raw["text"] and note["bodyV2"]["markdown"] == raw["text"]
        assert _instant(note["noteDate"]) == _instant(normalise_timestamp(raw["noteTimestamp"]))
        assert note["enteredBy"] == raw["enteredBy"]
        wanted = {("opportunity", opportunities[action]["id"])}
        wanted |= {contact_target[str(participant)]} if participant else set()
        assert note_targets[note["id"]] == wanted, key
    assert any(raw["links"]["participant"] for raw in file_notes)

    # Contact notes: a Note on that person or company.
    contact_notes = fake_actionstep.records("contactnotes")
    assert contact_notes
    for raw in contact_notes:
        note = notes[f"contact_notes:{raw['id']}"]
        assert note["bodyV2"]["markdown"] == raw["text"]
        assert note_targets[note["id"]] == {contact_target[str(raw["links"]["participant"])]}
    notes_of_notes = [k for k in notes if not k.startswith("documents:")]  # documents: test_actionstep_documents
    assert len(notes_of_notes) == len([n for n in file_notes if str(n["links"]["action"]) in source["migrated"]]) + len(contact_notes)

    # Tasks: deleted ones left out, the rest on their opportunity with mapped status, due date,
    # completion date, and the assignee resolved by email (else the fallback, original kept).
    tasks = _by_source_id(fake_twenty.records("tasks"))
    task_targets = _targets(fake_twenty.records("taskTargets"), "taskId")
    excluded = {x["source_row"] for x in run.report("excluded.csv").to_dict("records") if x["object"] == "tasks"}
    unresolved = {r["source_key"]: r for r in run.report("unresolved_owners.csv").to_dict("records")
                  if r["object"] == "task"}
    raw_tasks = fake_actionstep.records("tasks")
    seen_assignees = {"member": 0, "not_member": 0, "no_email": 0}
    for raw in raw_tasks:
        i, action = str(raw["id"]), str(raw["links"]["action"])
        if raw["status"] == "Deleted":
            assert i in excluded and i not in tasks
            continue
        if action not in source["migrated"]:
            assert "no opportunity to attach to" in quarantined[("tasks", i)] and i not in tasks
            continue
        task = tasks[i]
        assert task["title"] == raw["name"]
        assert task["status"] == TASK_STATUS[raw["status"]]
        assert task["taskStatus"] == option_value(raw["status"])
        assert _instant(task["dueAt"]) == _instant(normalise_timestamp(raw["dueTimestamp"]))
        if raw["completedTimestamp"]:
            assert _instant(task["completedAt"]) == _instant(normalise_timestamp(raw["completedTimestamp"]))
        else:
            assert task["completedAt"] is None
        assert task_targets[task["id"]] == {("opportunity", opportunities[action]["id"])}
        assignee = str(raw["links"]["assignee"])
        assert task["sourceAssignee"] == f"links.assignee={assignee}, users.id={user_of[assignee]}"
        if assignee in member_id:
            assert task["assigneeId"] == member_id[assignee] and f"tasks:{i}" not in unresolved
            seen_assignees["member"] += 1
        else:
            assert task["assigneeId"] == fallback
            listed = unresolved[f"tasks:{i}"]
            assert listed["owner"] == task["sourceAssignee"]  # the staff user's id kept
            assert listed["email"] == (email_of[assignee] or "").lower()
            seen_assignees["not_member" if email_of[assignee] else "no_email"] += 1
    assert all(seen_assignees.values()), seen_assignees  # each case occurs in the dataset

    # Staff users as owners: each matter's responsible staff member (assignedTo) owns its
    # opportunity when their email is a workspace member; otherwise the fallback owns it,
    # the staff participant id is kept and the matter is listed.
    unresolved_owners = {r["source_key"]: r for r in run.report("unresolved_owners.csv").to_dict("records")
                         if r["object"] == "opportunity"}
    owners = {"member": 0, "fallback": 0}
    for raw in fake_actionstep.records("actions"):
        i = str(raw["id"])
        if i not in source["migrated"]:
            continue
        opportunity, staff = opportunities[i], str(raw["links"]["assignedTo"])
        assert opportunity["sourceOwner"] == f"links.assignedTo={staff}, users.id={user_of[staff]}"
        if staff in member_id:
            assert opportunity["ownerId"] == member_id[staff] and f"opportunities:{i}" not in unresolved_owners
            owners["member"] += 1
        else:
            assert opportunity["ownerId"] == fallback
            assert unresolved_owners[f"opportunities:{i}"]["email"] == (email_of[staff] or "").lower()
            owners["fallback"] += 1
    assert all(owners.values()), owners
    assert {raw["status"] for raw in raw_tasks} >= {"Incomplete", "Complete", "Hidden", "Deleted"}

    # Every source row accounted for: loaded + quarantined + excluded.
    accounting = {name: acc for obj in run.summary().values() for name, acc in obj["accounting"].items()}
    assert all(a["balanced"] for a in accounting.values()), accounting
    assert accounting["file_notes"]["source_rows"] == len(file_notes)
    assert accounting["contact_notes"]["source_rows"] == len(contact_notes)
    assert accounting["tasks"]["source_rows"] == len(raw_tasks)
    assert accounting["tasks"]["loaded"] == len(tasks)


def test_junction_accounting_counts_each_target_found_and_excludes_notes_without_any() -> None:
    """Engine: a note with two targets is two junction rows; a note with none is one excluded row."""
    import pandas as pd

    from migration_pipeline.engine.mapping import Mapping
    from migration_pipeline.engine.staging import Stager

    mapping = Mapping.model_validate({
        "version": 1,
        "source": {"slug": "demo", "label": "Demo", "kind": "files", "objects": {
            "people": {"file": "p.csv", "key": "id"}, "deals": {"file": "d.csv", "key": "id"},
            "notes": {"file": "n.csv", "key": "id"}}},
        "defaults": {"external_key_field": "demoId", "external_key_label": "Demo ID"},
        "objects": [
            {"name": "people", "twenty_object": "person", "from": "people", "key": {"from": "id"},
             "fields": {"name.lastName": {"from": "name"}}},
            {"name": "deals", "twenty_object": "opportunity", "from": "deals", "key": {"from": "id"},
             "fields": {"name": {"from": "name"}}},
            {"name": "notes", "twenty_object": "note", "from": "notes", "key": {"from": "id"},
             "fields": {"title": {"from": "text"}},
             "targets": {"opportunity": {"object": "deals", "match": [{"from": "deal", "to": "id"}]},
                         "person": {"object": "people", "match": [{"from": "person", "to": "id"}]}}},
        ],
    })
    extracts = {
        "people": pd.DataFrame([{"id": "p1", "name": "Ng"}], dtype=object),
        "deals": pd.DataFrame([{"id": "d1", "name": "Sale"}], dtype=object),
        "notes": pd.DataFrame([{"id": "n1", "text": "both", "deal": "d1", "person": "p1"},
                               {"id": "n2", "text": "deal only", "deal": "d1", "person": None},
                               {"id": "n3", "text": "none", "deal": "d9", "person": None}], dtype=object),
    }
    stager = Stager(mapping, extracts, {})
    junction = stager.stage("noteTarget")
    assert sorted(junction.records["source_key"]) == ["notes:n1->deals:d1", "notes:n1->people:p1", "notes:n2->deals:d1"]
    assert junction.input_rows == {"notes_targets": 4}
    [excluded] = junction.excluded.to_dict("records")
    assert excluded["source_key"] == "notes:n3" and "no target found" in excluded["reason"]
    assert len(stager.stage("note").records) == 3  # the note itself still loads
