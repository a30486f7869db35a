"""What the engine needs to know about the Twenty objects a mapping writes (Twenty 2.21).

Standard objects are listed once here: names, the REST plural, the unique fields the server
enforces (also over soft-deleted rows, so a load must look them up before creating), the
junction objects that link notes and tasks to their targets, and the attachment object that
holds uploaded files. A mapping adds its custom objects to them; the result, a `Catalogue`, is
what every part of the engine looks objects up in.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    custom: bool = False


STANDARD_OBJECTS: dict[str, TwentyObject] = {
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

# Which junction object links a note/task to its targets, and its column naming the note/task.
JUNCTIONS: dict[str, tuple[str, str]] = {"note": ("noteTarget", "noteId"), "task": ("taskTarget", "taskId")}
# Standard objects a note/task can target; Twenty makes every custom object a possible target too.
STANDARD_TARGETS = ("person", "company", "opportunity")

# Files re-uploaded from the source: an attachment record per file, linked to the record it
# belongs to by the `target_field` of that record's object (targetNoteId).
ATTACHMENT = "attachment"
ATTACHMENT_TARGETS = ("note", "task", "person", "company", "opportunity")


def target_field(kind: str) -> str:
    """The junction column holding a target of this kind: person -> targetPersonId."""
    return f"target{kind[:1].upper()}{kind[1:]}Id"


def is_target_junction(singular: str) -> bool:
    return any(junction == singular for junction, _ in JUNCTIONS.values())


def junction_parent(junction: str) -> tuple[str, str]:
    """(note, noteId) for noteTarget: the object whose targets the junction holds, and its column."""
    return next((parent, column) for parent, (j, column) in JUNCTIONS.items() if j == junction)


class Catalogue:
    """The Twenty objects one mapping can write: the standard ones and the mapping's custom objects."""

    def __init__(self, custom: Iterable[TwentyObject] = ()) -> None:
        self._objects = {**STANDARD_OBJECTS, **{obj.singular: obj for obj in custom}}

    def __contains__(self, singular: object) -> bool:
        return singular in self._objects

    def __getitem__(self, singular: str) -> TwentyObject:
        try:
            return self._objects[singular]
        except KeyError:
            raise KeyError(f"unknown Twenty object {singular!r}; known: {self.names()}") from None

    def names(self) -> list[str]:
        return sorted(self._objects)

    def plural(self, singular: str) -> str:
        return self[singular].plural
