"""Pandera models of the Actionstep resources that go to the rebuild package, not to Twenty:
accounting (bills, disbursements, time entries) and workflow configuration (matter types,
their participant types and steps). As the connector hands them over: strings or None, ids as
strings, "T"/"F" flags as "true"/"false", dates YYYY-MM-DD, timestamps UTC. The checks are
non-blocking: they say whether the input is what we expect; the package exports it as served.
"""

from __future__ import annotations

from typing import Optional

import pandera.pandas as pa
from pandera.typing import Series

from migration_pipeline.schemas.actionstep import FLAG, ID, IDS, UTC_OR_DATE

DATE = r"^\d{4}-\d{2}-\d{2}$"
NUMBER = r"^-?\d+(\.\d+)?$"


class ActionstepBill(pa.DataFrameModel):
    """A bill / invoice (`bills`)."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Bill id")
    status: Series[str] = pa.Field(isin=["Draft", "Open", "Closed", "Deleted"], description="Bill status")
    invoiceDate: Series[str] = pa.Field(nullable=True, str_matches=DATE, description="Invoice date")
    totalInclusive: Series[str] = pa.Field(nullable=True, str_matches=NUMBER, description="Total including tax")
    action: Optional[Series[str]] = pa.Field(alias="links.action", nullable=True, str_matches=IDS,
                                             description="The matter(s) billed")

    class Config:
        strict = False


class ActionstepDisbursement(pa.DataFrameModel):
    """A disbursement (`disbursements`): a cost paid on a matter's behalf."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Disbursement id")
    date: Series[str] = pa.Field(nullable=True, str_matches=DATE, description="Date of the disbursement")
    unitPrice: Series[str] = pa.Field(nullable=True, str_matches=NUMBER, description="Unit price")
    quantity: Series[str] = pa.Field(nullable=True, str_matches=NUMBER, description="Quantity")
    action: Optional[Series[str]] = pa.Field(alias="links.action", nullable=True, str_matches=ID, description="The matter")

    class Config:
        strict = False


class ActionstepTimeEntry(pa.DataFrameModel):
    """A time entry (`timeentries`)."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Time entry id")
    timestampDate: Series[str] = pa.Field(nullable=True, str_matches=UTC_OR_DATE, description="When the work was done (UTC)")
    actualHours: Series[str] = pa.Field(nullable=True, str_matches=NUMBER, description="Hours worked")
    isBillable: Series[str] = pa.Field(isin=FLAG, nullable=True, description="Billable")
    action: Optional[Series[str]] = pa.Field(alias="links.action", nullable=True, str_matches=ID, description="The matter")

    class Config:
        strict = False


class ActionstepActionType(pa.DataFrameModel):
    """A matter type (`actiontypes`): the root of the workflow configuration."""

    id: Series[str] = pa.Field(str_matches=ID, unique=True, description="Matter type id")
    name: Series[str] = pa.Field(description="Matter type name")

    class Config:
        strict = False


class ActionstepActionTypeParticipantType(pa.DataFrameModel):
    """A participant type allowed on a matter type (`actiontypeparticipanttypes`)."""

    id: Series[str] = pa.Field(str_matches=r"^\d+--\d+$", unique=True, description="Composite <actionType>--<participantType>")
    actionType: Series[str] = pa.Field(str_matches=ID, description="The matter type")
    participant_type: Series[str] = pa.Field(alias="links.participantType", str_matches=ID, description="The participant type")

    class Config:
        strict = False


class ActionstepStep(pa.DataFrameModel):
    """A step of a matter type's workflow (`steps`; no published OpenAPI file: assumption)."""

    id: Series[str] = pa.Field(str_matches=r"^\d+--\d+$", unique=True, description="Composite <actionType>--<stepNumber>")
    stepName: Series[str] = pa.Field(description="Step name")
    action_type: Series[str] = pa.Field(alias="links.actionType", str_matches=ID, description="The matter type")

    class Config:
        strict = False


SOURCE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "bills": ActionstepBill,
    "disbursements": ActionstepDisbursement,
    "time_entries": ActionstepTimeEntry,
    "action_types": ActionstepActionType,
    "action_type_participant_types": ActionstepActionTypeParticipantType,
    "steps": ActionstepStep,
}
