"""Pandera models of the Actionstep data-collection definitions the `pivot:` of matters reads
(field definitions with their collection side-loaded, and dropdown choices), as the connector
hands them over (see `schemas/actionstep.py` for the normalisation)."""

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


SOURCE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "collection_fields": ActionstepDataCollectionField,
    "collection_choices": ActionstepDataCollectionChoice,
}
