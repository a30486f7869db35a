"""Pandera models of staged frames: data already in Twenty's shape, before anything is written.

These run as the blocking `schema` check on every stage asset. The stage step first quarantines
the rows that fail them (each with the failed check as its reason); the check then fails, and
blocks the load, if the frame is still invalid or too large a share of rows was quarantined.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from migration_pipeline.engine.staging import FILE_REFERENCE, FILE_SIZE

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UUID_OR_KEY = re.compile(r"^\S+$")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


class TwentyRecord(pa.DataFrameModel):
    """Columns every staged record carries."""

    source_key: Series[str] = pa.Field(unique=True, nullable=False, description="Stable external key (upsert key)")
    source_object: Series[str] = pa.Field(description="Source object the record was built from")
    source_row: Series[str] = pa.Field(description="Source row(s): id or file line")

    class Config:
        strict = False


class TwentyCompany(TwentyRecord):
    name: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 255}, description="Company name")
    domain: Optional[Series[object]] = pa.Field(
        alias="domainName.primaryLinkUrl", nullable=True, description="Unique in Twenty (also soft-deleted rows)"
    )

    @pa.dataframe_check(description="company domains are unique, as Twenty enforces")
    def unique_domains(cls, df: pd.DataFrame) -> Series[bool]:
        if "domainName.primaryLinkUrl" not in df:
            return pd.Series(True, index=df.index)
        values = df["domainName.primaryLinkUrl"]
        return values.isna() | ~values.duplicated(keep="first")


class TwentyPerson(TwentyRecord):
    emails: Optional[Series[object]] = pa.Field(nullable=True, description="EMAILS composite")

    @pa.check("emails", element_wise=True, description="every address is valid (primaryEmail may be blank: "
              "a shared address is kept among the additional ones)")
    def valid_emails(cls, value: Any) -> bool:
        if _blank(value):
            return True
        addresses = [value.get("primaryEmail") or "", *(value.get("additionalEmails") or [])] \
            if isinstance(value, dict) else [""]
        return any(addresses) and all(EMAIL.match(a) for a in addresses if a)

    @pa.dataframe_check(description="primary emails are unique, as Twenty enforces")
    def unique_emails(cls, df: pd.DataFrame) -> Series[bool]:
        if "emails" not in df:
            return pd.Series(True, index=df.index)
        primary = df["emails"].map(lambda v: None if _blank(v) else (v.get("primaryEmail") or "").lower() or None)
        return primary.isna() | ~primary.duplicated(keep="first")

    @pa.dataframe_check(description="a person has a first or last name, or an email")
    def identifiable(cls, df: pd.DataFrame) -> Series[bool]:
        has = pd.Series(False, index=df.index)
        for column in ("name.firstName", "name.lastName", "emails"):
            if column in df:
                has |= df[column].map(lambda v: not _blank(v) and v != "")
        return has


OPPORTUNITY_STAGES = ("NEW", "SCREENING", "MEETING", "PROPOSAL", "CUSTOMER")  # Twenty 2.21's stage options


class TwentyOpportunity(TwentyRecord):
    name: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 255}, description="Opportunity name")
    stage: Optional[Series[object]] = pa.Field(nullable=True, isin=list(OPPORTUNITY_STAGES),
                                               description="One of Twenty's stages: " + ", ".join(OPPORTUNITY_STAGES))
    amount_micros: Optional[Series[object]] = pa.Field(alias="amount.amountMicros", nullable=True,
                                                       description="Amount x 1,000,000, a whole number")
    currency_code: Optional[Series[object]] = pa.Field(alias="amount.currencyCode", nullable=True,
                                                       str_matches=r"^[A-Z]{3}$", description="ISO 4217 code")

    @pa.check("amount.amountMicros", element_wise=True, description="amount micros are whole numbers")
    def whole_micros(cls, value: Any) -> bool:
        return _blank(value) or (isinstance(value, int) and not isinstance(value, bool))

    @pa.dataframe_check(description="an amount has a currency code, and a currency code an amount")
    def amount_with_currency(cls, df: pd.DataFrame) -> Series[bool]:
        if "amount.amountMicros" not in df and "amount.currencyCode" not in df:
            return pd.Series(True, index=df.index)
        micros = df.get("amount.amountMicros", pd.Series(None, index=df.index, dtype=object)).map(_blank)
        code = df.get("amount.currencyCode", pd.Series(None, index=df.index, dtype=object)).map(_blank)
        return micros == code


class TwentyNote(TwentyRecord):
    title: Series[str] = pa.Field(str_length={"min_value": 1}, description="Note title")


class TwentyNoteTarget(TwentyRecord):
    noteId: Series[str] = pa.Field(str_matches=UUID_OR_KEY.pattern, description="Source key of the note")
    targetPersonId: Optional[Series[object]] = pa.Field(nullable=True, description="Source key of the person")


class TwentyAttachment(TwentyRecord):
    name: Series[str] = pa.Field(str_length={"min_value": 1}, description="Attachment (file) name")
    file_reference: Series[str] = pa.Field(alias=FILE_REFERENCE, str_length={"min_value": 1},
                                           description="The source's file reference, downloaded at load")
    file_size: Optional[Series[object]] = pa.Field(alias=FILE_SIZE, nullable=True,
                                                   description="Size the source declares, in bytes")


STAGE_SCHEMAS: dict[str, type[TwentyRecord]] = {
    "company": TwentyCompany,
    "person": TwentyPerson,
    "opportunity": TwentyOpportunity,
    "note": TwentyNote,
    "noteTarget": TwentyNoteTarget,
    "attachment": TwentyAttachment,
}


def stage_schema(twenty_object: str) -> type[TwentyRecord]:
    return STAGE_SCHEMAS.get(twenty_object, TwentyRecord)
