"""Pandera models of the Actionstep data-collection resources the `pivot:` blocks read (field
definitions with their collection side-loaded, dropdown choices, and the records of repeating
collections), as the connector hands them over (see `schemas/actionstep.py` for the
normalisation)."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

FLAG = ["true", "false"]


class ActionstepDataCollectionField(pa.DataFrameModel):
    """A data-collection field definition (`datacollectionfields`, include `dataCollection`)."""

    id: Series[str] = pa.Field(unique=True, str_matches=r"^\d+--.+$", description="Composite <dataCollection>--<name>")
    name: Series[str] = pa.Field(description="Field name, unique in its collection")
    label: Series[str] = pa.Field(nullable=True, description="Label shown on the form")
    dataType: Series[str] = pa.Field(description="Str255, Number, Money, Date, DateTime, DropDown, ...")
    multiple: Series[str] = pa.Field(alias="dataCollection.multipleRecords", isin=FLAG,
                                     description="Whether the field's collection holds several records per matter")

    class Config:
        strict = False


class ActionstepDataCollectionChoice(pa.DataFrameModel):
    """A choice of a DropDown / DropDownMulti field (`datacollectionfielddropdownchoices`)."""

    value: Series[str] = pa.Field(description="The choice as stored in values")
    data_field: Series[str] = pa.Field(alias="links.dataField", str_matches=r"^\d+--.+$",
                                       description="The field definition (<dataCollection>--<name>)")

    class Config:
        strict = False


class ActionstepDataCollectionRecord(pa.DataFrameModel):
    """A data-collection record (`datacollectionrecords`, include `dataCollection`): one per matter
    and single-record collection, any number per matter for a repeating one (multipleRecords)."""

    id: Series[str] = pa.Field(unique=True, str_matches=r"^\d+$", description="Record id")
    action: Series[str] = pa.Field(alias="links.action", str_matches=r"^\d+$", description="The matter")
    name: Series[str] = pa.Field(alias="dataCollection.name", description="The collection's name")
    multiple: Series[str] = pa.Field(alias="dataCollection.multipleRecords", isin=FLAG,
                                     description="Whether the collection holds several records per matter")

    class Config:
        strict = False


SOURCE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "collection_fields": ActionstepDataCollectionField,
    "collection_choices": ActionstepDataCollectionChoice,
    "collection_records": ActionstepDataCollectionRecord,
}
