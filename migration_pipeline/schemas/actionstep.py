"""Pandera models of the Actionstep resources the mapping reads, as the connector hands them over.

`sources/actionstep/client.py` has already normalised the API's quirks: every value a string or
None, "T"/"F" flags as "true"/"false", ids as strings, composite ids also split into
`id.<part>` columns, `links` as `links.<name>` (lists comma-joined), timestamps as UTC
("2022-05-02T12:09:00.000Z") or a bare date. Side-loaded records (`include`) arrive joined as
`<link>.<field>`. These models answer "is the input what we think it is?": they run as
(non-blocking) checks on the extract assets, with a sample of the failures in the metadata.
Field names are case-sensitive, exactly as the API spells them.
"""

from __future__ import annotations

from typing import Optional

import pandera.pandas as pa
from pandera.typing import Series

ID = r"^\d+$"
IDS = r"^\d+(,\d+)*$"  # a link holding several ids, comma-joined by the connector
FLAG = ["true", "false"]
UTC_OR_DATE = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}\.\d{3}Z)?$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class ActionstepAction(pa.DataFrameModel):
    """A matter (`actions`, with its matter type side-loaded): what the opportunity is built from."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Matter id")
    name: Series[str] = pa.Field(nullable=True, description="Matter name")
    status: Series[str] = pa.Field(isin=["Active", "Inactive", "Template", "Closed"], description="Matter status")
    statusTimestamp: Optional[Series[str]] = pa.Field(nullable=True, str_matches=UTC_OR_DATE,
                                                      description="When the status last changed (UTC)")
    createdTimestamp: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE,
                                             description="Created: UTC instant, or a bare date as some matters have")
    modifiedTimestamp: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE, description="Last modified (UTC)")
    isDeleted: Series[str] = pa.Field(isin=FLAG, description="Soft-deleted in Actionstep")
    action_type: Optional[Series[str]] = pa.Field(alias="links.actionType", nullable=True, str_matches=ID,
                                                  description="Matter type id")
    action_type_name: Optional[Series[str]] = pa.Field(alias="actionType.name", nullable=True,
                                                       description="Matter type name (side-loaded)")
    primary_participants: Optional[Series[str]] = pa.Field(alias="links.primaryParticipants", nullable=True,
                                                           str_matches=IDS,
                                                           description="Primary participants (the clients)")

    class Config:
        strict = False


class ActionstepParticipant(pa.DataFrameModel):
    """A contact (`participants`): a person, or a company when isCompany is true."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Participant id")
    isCompany: Series[str] = pa.Field(isin=FLAG, description="A company rather than a person")
    displayName: Series[str] = pa.Field(nullable=True, description="Display name ('Last, First' or the company)")
    firstName: Series[str] = pa.Field(nullable=True, description="First name (people)")
    lastName: Series[str] = pa.Field(nullable=True, description="Last name (people)")
    companyName: Series[str] = pa.Field(nullable=True, description="Company name; on a person, the employer")
    email: Series[str] = pa.Field(nullable=True, str_matches=EMAIL, description="The one email of a participant")
    phone1Number: Series[str] = pa.Field(nullable=True, description="First phone number (of four split phones)")
    createdTimestamp: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE, description="Created (UTC)")
    modifiedTimestamp: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE, description="Last modified (UTC)")

    class Config:
        strict = False


class ActionstepActionParticipant(pa.DataFrameModel):
    """A participant's role on a matter (`actionparticipants`, with the participant type side-loaded)."""

    id: Series[str] = pa.Field(str_matches=r"^\d+--\d+--\d+$", unique=True,
                               description="Composite <action>--<participantType>--<participant>")
    action: Series[str] = pa.Field(alias="links.action", str_matches=ID, description="The matter")
    participant: Series[str] = pa.Field(alias="links.participant", str_matches=ID, description="The participant")
    participant_type: Series[str] = pa.Field(alias="links.participantType", str_matches=ID, description="The role's id")
    participant_type_name: Optional[Series[str]] = pa.Field(alias="participantType.name", nullable=True,
                                                            description="The role's name (side-loaded)")
    participant_name: Optional[Series[str]] = pa.Field(alias="participant.displayName", nullable=True,
                                                       description="The participant's display name (side-loaded)")

    class Config:
        strict = False


class ActionstepParticipantType(pa.DataFrameModel):
    """A role a participant can hold on a matter (`participanttypes`: Client, Witness, ...)."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Participant type id")
    name: Series[str] = pa.Field(unique=True, description="Role name, e.g. Client")

    class Config:
        strict = False


class ActionstepDataCollectionRecordValue(pa.DataFrameModel):
    """One value of a matter's custom data (`datacollectionrecordvalues`); every type as a string."""

    id: Series[str] = pa.Field(unique=True, str_matches=r"^\d+--.+--\d+$",
                               description="Composite <dataCollection>--<fieldName>--<record>")
    field_name: Series[str] = pa.Field(alias="id.fieldName", description="Field name (from the composite id)")
    stringValue: Series[str] = pa.Field(nullable=True, description="The value, serialised as a string")
    action: Series[str] = pa.Field(alias="links.action", str_matches=ID, description="The matter")
    record: Series[str] = pa.Field(alias="links.dataCollectionRecord", str_matches=ID,
                                   description="The data-collection record the value belongs to")

    class Config:
        strict = False


class ActionstepFileNote(pa.DataFrameModel):
    """A matter note (`filenotes`); `links.participant` optionally names the contact it is about."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="File note id")
    text: Series[str] = pa.Field(nullable=True, description="The note")
    noteTimestamp: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE, description="When (UTC)")
    action: Series[str] = pa.Field(alias="links.action", str_matches=ID, description="The matter")

    class Config:
        strict = False


class ActionstepContactNote(pa.DataFrameModel):
    """A note on a contact (`contactnotes`)."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Contact note id")
    text: Series[str] = pa.Field(nullable=True, description="The note")
    participant: Series[str] = pa.Field(alias="links.participant", str_matches=ID, description="The contact")

    class Config:
        strict = False


class ActionstepTask(pa.DataFrameModel):
    """A matter task (`tasks`); the assignee is a staff participant."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Task id")
    name: Series[str] = pa.Field(description="Task name")
    status: Series[str] = pa.Field(isin=["Incomplete", "Complete", "Hidden", "Deleted"], description="Task status")
    dueTimestamp: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE, description="Due (UTC)")
    completedTimestamp: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE, description="Completed (UTC)")
    action: Series[str] = pa.Field(alias="links.action", str_matches=ID, description="The matter")
    assignee: Series[str] = pa.Field(alias="links.assignee", nullable=True, str_matches=ID, description="Assignee (participant)")

    class Config:
        strict = False


class ActionstepDocument(pa.DataFrameModel):
    """A matter document (`actiondocuments`; fields an assumption: the legacy wiki, `summary` and
    `keywords` as in contactdocuments): the file itself is downloaded through `files/{file}`."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Document id")
    name: Series[str] = pa.Field(nullable=True, description="Document name as shown in Actionstep")
    file: Series[str] = pa.Field(nullable=True, description="Internal file reference, for files/{file}?part_number=n")
    fileSize: Series[str] = pa.Field(nullable=True, str_matches=r"^\d+$", description="Size of the file in bytes")
    extension: Optional[Series[str]] = pa.Field(nullable=True, description="File extension, e.g. pdf")
    keywords: Optional[Series[str]] = pa.Field(nullable=True, description="Tags, comma-separated")
    summary: Optional[Series[str]] = pa.Field(nullable=True, description="A textual summary of the document")
    action: Series[str] = pa.Field(alias="links.action", str_matches=ID, description="The matter")

    class Config:
        strict = False


class ActionstepUser(pa.DataFrameModel):
    """A staff user (`users`; fields an assumption: not in the published spec)."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="User id")
    email: Series[str] = pa.Field(nullable=True, description="Login email (the workspace member's)")
    participant: Series[str] = pa.Field(alias="links.participant", str_matches=ID, description="The staff participant")

    class Config:
        strict = False


class ActionstepContactRelationship(pa.DataFrameModel):
    """A relationship between two contacts (`contactrelationships`: Parent Company, Employer,
    ...); its id is `<relationship>-<fromContact>-<toContact>`."""

    id: Series[str] = pa.Field(unique=True, description="Relationship id (relationship, from and to contact)")
    relationship: Series[str] = pa.Field(description="The relationship's name, e.g. Parent Company")
    from_contact: Series[str] = pa.Field(alias="links.fromContact", str_matches=ID, description="From this contact")
    to_contact: Series[str] = pa.Field(alias="links.toContact", str_matches=ID, description="To this contact")

    class Config:
        strict = False


SOURCE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "actions": ActionstepAction,
    "participants": ActionstepParticipant,
    "action_participants": ActionstepActionParticipant,
    "participant_types": ActionstepParticipantType,
    "matter_values": ActionstepDataCollectionRecordValue,
    "file_notes": ActionstepFileNote,
    "contact_notes": ActionstepContactNote,
    "tasks": ActionstepTask,
    "documents": ActionstepDocument,
    "users": ActionstepUser,
    "contact_relationships": ActionstepContactRelationship,
}
