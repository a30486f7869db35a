"""Pandera models of the AllClients export files, as the project documents them.

They answer "is the input what we think it is?": run as (non-blocking) checks on the extract
assets, with a sample of the failures in the check metadata.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

US_DATETIME_OR_BLANK = r"^$|^\d{1,2}/\d{1,2}/\d{4}( \d{1,2}:\d{2}(:\d{2})? ?[AaPp][Mm])?$"


class AllclientsContact(pa.DataFrameModel):
    ContactID: Series[str] = pa.Field(str_matches=r"^\d+$", unique=True, description="AllClients contact id")
    TeamMemberID: Series[str] = pa.Field(str_matches=r"^\d*$", description="Owner: a Users.csv id, 0 = account owner")
    FirstName: Series[str] = pa.Field(description="First name of the main person")
    LastName: Series[str] = pa.Field(description="Last name of the main person")
    OtherFirstName: Series[str] = pa.Field(description="First name of a second person on the record")
    OtherLastName: Series[str] = pa.Field(description="Last name of the second person")
    Company: Series[str] = pa.Field(str_length={"max_value": 200}, description="Free-text company name")
    Email: Series[str] = pa.Field(str_matches=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$", description="Main email")
    OtherEmail: Series[str] = pa.Field(str_matches=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$", description="Second email")
    Flags: Series[str] = pa.Field(description="Comma-separated tags")
    AddDate: Series[str] = pa.Field(str_matches=US_DATETIME_OR_BLANK, description="Created, account time zone")
    EditDate: Series[str] = pa.Field(str_matches=US_DATETIME_OR_BLANK, description="Last edited, account time zone")

    class Config:
        strict = False
        coerce = False


class AllclientsNote(pa.DataFrameModel):
    ContactID: Series[str] = pa.Field(str_matches=r"^\d*$", description="Contact the note belongs to")
    Email: Series[str] = pa.Field(description="Fallback match: contact email")
    FirstName: Series[str] = pa.Field(description="Fallback match: contact first name")
    LastName: Series[str] = pa.Field(description="Fallback match: contact last name")
    NoteDate: Series[str] = pa.Field(str_matches=US_DATETIME_OR_BLANK, description="Note date, US Central time")
    Note: Series[str] = pa.Field(description="Note text; may start with [[System]] prefixes")

    class Config:
        strict = False


class AllclientsUser(pa.DataFrameModel):
    TeamMemberID: Series[str] = pa.Field(str_matches=r"^\d+$", unique=True, description="Team member id")
    Email: Series[str] = pa.Field(str_matches=r"^[^@\s]+@[^@\s]+$", description="Team member email")

    class Config:
        strict = False


SOURCE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "contacts": AllclientsContact,
    "notes": AllclientsNote,
    "users": AllclientsUser,
}
