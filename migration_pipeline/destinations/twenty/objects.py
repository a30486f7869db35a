"""What the engine needs to know about Twenty's standard objects (Twenty 2.21).

Names, the REST plural, the unique fields the server enforces (also over soft-deleted rows,
so a load must look them up before creating), the junction objects that link notes and
tasks to their targets, and the attachment object that holds uploaded files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TwentyObject:
    singular: str
    plural: str
    label: str
    unique_fields: tuple[str, ...] = ()
    # Depth in Twenty's import order: parents first (Companies -> People -> Opportunities ...).
    order: int = 0
    # Records carry the mapping's external key field (the upsert key). Junctions and attachments
    # do not: they are found by the records they link (`identity_fields` of the load).
    has_external_key: bool = True


TWENTY_OBJECTS: dict[str, TwentyObject] = {
    obj.singular: obj
    for obj in (
        TwentyObject("company", "companies", "Companies", ("domainName.primaryLinkUrl",), 0),
        TwentyObject("person", "people", "People", ("emails.primaryEmail",), 1),
        TwentyObject("opportunity", "opportunities", "Opportunities", (), 2),
        TwentyObject("note", "notes", "Notes", (), 3),
        TwentyObject("task", "tasks", "Tasks", (), 3),
        TwentyObject("noteTarget", "noteTargets", "Note targets", (), 4, has_external_key=False),
        TwentyObject("taskTarget", "taskTargets", "Task targets", (), 4, has_external_key=False),
        TwentyObject("attachment", "attachments", "Attachments", (), 4, has_external_key=False),
    )
}

# Which junction object links a note/task to its targets, and the column per target kind.
JUNCTIONS: dict[str, tuple[str, str]] = {"note": ("noteTarget", "noteId"), "task": ("taskTarget", "taskId")}
TARGET_FIELDS: dict[str, str] = {
    "person": "targetPersonId",
    "company": "targetCompanyId",
    "opportunity": "targetOpportunityId",
}

# Files re-uploaded from the source: an attachment record per file, linked to the record it
# belongs to by the column of that record's object.
ATTACHMENT = "attachment"
ATTACHMENT_TARGETS: dict[str, str] = {
    "note": "targetNoteId",
    "task": "targetTaskId",
    "person": "targetPersonId",
    "company": "targetCompanyId",
    "opportunity": "targetOpportunityId",
}


def plural(singular: str) -> str:
    return TWENTY_OBJECTS[singular].plural
