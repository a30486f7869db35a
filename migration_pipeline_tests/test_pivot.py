"""The mapping's `pivot:` block on small in-memory frames: data-driven custom fields, named by
a parent column, typed by the definitions' data type, values cast, problems as field issues."""

from __future__ import annotations

import pandas as pd
import pytest

from migration_pipeline.engine.mapping import Mapping, MappingError, load_mapping
from migration_pipeline.engine.staging import Stager, pivot_field_name
from migration_pipeline.engine.transforms import InvalidValue, TransformContext, get_transform


def _mapping(pivot_extra: dict | None = None) -> Mapping:
    return Mapping.model_validate({
        "version": 1,
        "source": {"slug": "t", "label": "T", "kind": "files", "settings": {"currency": "AUD"}, "objects": {
            "deals": {"file": "deals.csv", "key": "id"},
            "values": {"file": "values.csv"},
            "defs": {"file": "defs.csv", "key": "id"},
            "choices": {"file": "choices.csv"},
        }},
        "defaults": {"external_key_field": "tId", "external_key_label": "T id"},
        "objects": [{
            "name": "deals", "twenty_object": "opportunity", "from": "deals", "key": {"from": "id"},
            "fields": {"name": {"from": "name"}},
            "pivot": {
                "values": "values", "parent": "deal", "field": "def", "value": "text", "prefix_from": "kind",
                "definitions": {"object": "defs", "type": "dtype", "where": {"repeating": "false"}},
                "choices": {"object": "choices", "field": "def", "value": "value"},
                "types": {"Str": "TEXT", "Num": "NUMBER", "Money": "CURRENCY", "Date": "DATE", "When": "DATE_TIME",
                          "Pick": "SELECT", "Picks": "MULTI_SELECT", "Flag": "BOOLEAN"},
                **(pivot_extra or {}),
            },
        }],
    })


def _extracts() -> dict[str, pd.DataFrame]:
    defs = [("1--Ref", "Ref", "Reference", "Str", "false"), ("1--Parties", "Parties", "Parties", "Num", "false"),
            ("1--Fee", "Fee", "Agreed fee", "Money", "false"), ("1--Due", "Due", "Due", "Date", "false"),
            ("1--Met", "Met", "Met", "When", "false"), ("1--State", "State", "State", "Pick", "false"),
            ("1--Flags", "Flags", "Flags", "Picks", "false"), ("1--Sent", "Sent", "Sent", "Flag", "false"),
            ("1--Slot", "Slot", "Slot", "Appointment", "false"), ("2--Item", "Item", "Item", "Str", "true"),
            ("3--Ref", "Ref", "Reference", "Str", "false")]
    values = [("10", "1--Ref", "A-1\nsecond line"), ("10", "1--Parties", "3"), ("10", "1--Fee", "1234.50"),
              ("10", "1--Due", "2024-02-29"), ("10", "1--Met", "2024-03-01T09:30:00+10:00"),
              ("10", "1--State", "New South Wales"), ("10", "1--Flags", "Urgent,VIP"), ("10", "1--Sent", "T"),
              ("10", "1--Slot", "tomorrow"), ("10", "2--Item", "chair"),
              ("11", "1--Parties", "many"), ("11", "1--Sent", None), ("12", "3--Ref", "B-2"), ("99", "1--Ref", "x")]
    return {
        "deals": pd.DataFrame([{"id": "10", "name": "A", "kind": "Family Law"},
                               {"id": "11", "name": "B", "kind": "Family Law"},
                               {"id": "12", "name": "C", "kind": "Conveyancing"}]),
        "values": pd.DataFrame(values, columns=["deal", "def", "text"]),
        "defs": pd.DataFrame(defs, columns=["id", "name", "label", "dtype", "repeating"]),
        "choices": pd.DataFrame([("1--State", "New South Wales"), ("1--State", "Victoria"),
                                 ("1--Flags", "Urgent"), ("1--Flags", "VIP"), ("1--Flags", "Legal aid")],
                                columns=["def", "value"]),
    }


def _staged():
    return Stager(_mapping(), _extracts(), {"currency": "AUD"}).stage("opportunity")


def test_field_names_are_prefixed_camel_case() -> None:
    assert pivot_field_name("Family Law", "AgreedFee") == "familyLawAgreedFee"
    assert pivot_field_name("Conveyancing", "ref_no") == "conveyancingRefNo"
    assert pivot_field_name("", "Fee") == "fee"
    assert pivot_field_name("2024 Matters", "Fee") == "n2024MattersFee"  # Twenty's own prefix for a digit
    assert pivot_field_name("Société", "Fee") == "societeFee"
    # Never a name Twenty refuses or one its object already has: Twenty's own "Custom" suffix.
    assert pivot_field_name("", "Type") == "typeCustom"
    assert pivot_field_name("", "Stage", taken={"stage"}) == "stageCustom"


def test_values_are_cast_by_their_data_type_onto_their_record() -> None:
    records = {r["source_key"]: r for r in _staged().records.to_dict("records")}
    a = records["deals:10"]
    assert a["familyLawRef"] == "A-1\nsecond line"
    assert a["familyLawParties"] == 3.0
    assert (a["familyLawFee.amountMicros"], a["familyLawFee.currencyCode"]) == (1_234_500_000, "AUD")
    assert a["familyLawDue"] == "2024-02-29"
    assert a["familyLawMet"] == "2024-02-29T23:30:00.000Z"
    assert a["familyLawState"] == "NEW_SOUTH_WALES"
    assert a["familyLawFlags"] == ["URGENT", "VIP"]
    assert a["familyLawSent"] is True
    assert "familyLawItem" not in a and "familyLawSlot" not in a  # repeating group / type not migrated
    assert records["deals:12"]["conveyancingRef"] == "B-2"
    assert pd.isna(records["deals:12"].get("familyLawRef"))  # another type's field stays empty


def test_custom_fields_come_from_the_data_with_types_labels_and_choices() -> None:
    needs = {n.name: n for n in _staged().custom_fields}
    pivoted = {name: need.spec.type for name, need in needs.items() if name.startswith(("familyLaw", "conveyancing"))}
    assert pivoted == {"familyLawRef": "TEXT", "familyLawParties": "NUMBER", "familyLawFee": "CURRENCY",
                       "familyLawDue": "DATE", "familyLawMet": "DATE_TIME", "familyLawState": "SELECT",
                       "familyLawFlags": "MULTI_SELECT", "familyLawSent": "BOOLEAN", "conveyancingRef": "TEXT"}
    assert needs["familyLawFee"].spec.label == "Family Law: Agreed fee"
    assert needs["familyLawState"].options == {"NEW_SOUTH_WALES": "New South Wales", "VICTORIA": "Victoria"}
    assert needs["familyLawFlags"].options == {"LEGAL_AID": "Legal aid", "URGENT": "Urgent", "VIP": "VIP"}


def test_invalid_values_and_unmigrated_types_are_field_issues_not_quarantine() -> None:
    staged = _staged()
    assert len(staged.records) == 3 and staged.quarantined.empty
    issues = {(i["source_key"], i["field"]): i["reason"] for i in staged.field_issues.to_dict("records")}
    assert issues[("deals:11", "familyLawParties")] == "'many' is not a number"
    assert "Appointment" in issues[("deals:10", "familyLawSlot")]
    records = {r["source_key"]: r for r in staged.records.to_dict("records")}
    assert records["deals:11"]["familyLawParties"] is None and records["deals:11"]["familyLawSent"] is None


def test_iso_date_transform() -> None:
    iso_date = get_transform("iso_date")
    ctx = TransformContext(settings={})
    assert iso_date(("2019-08-15",), ctx) == "2019-08-15"
    assert iso_date(("2019-08-15T10:00:00+10:00",), ctx) == "2019-08-15"
    assert iso_date((None,), ctx) is None
    with pytest.raises(InvalidValue):
        iso_date(("15/08/2019",), ctx)


def test_pivot_reading_an_unknown_source_object_is_refused(tmp_path) -> None:
    import yaml

    raw = _mapping().model_dump(by_alias=True, exclude_defaults=True)
    raw["objects"][0]["pivot"]["definitions"]["object"] = "nope"
    path = tmp_path / "t__twenty.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(MappingError, match="pivot reads unknown source object 'nope'"):
        load_mapping(path)


def test_a_pivoted_field_never_takes_a_name_twenty_refuses_or_its_object_already_has() -> None:
    extracts = _extracts()
    extracts["deals"] = pd.concat([extracts["deals"], pd.DataFrame([{"id": "13", "name": "D", "kind": None}])])
    extracts["defs"] = pd.concat([extracts["defs"], pd.DataFrame(
        [("4--Stage", "Stage", "Stage", "Str", "false"), ("4--Type", "Type", "Type", "Str", "false"),
         ("4--Name", "name", "Name", "Str", "false")], columns=["id", "name", "label", "dtype", "repeating"])])
    extracts["values"] = pd.concat([extracts["values"], pd.DataFrame(
        [("13", "4--Stage", "won"), ("13", "4--Type", "lease"), ("13", "4--Name", "Deal D")],
        columns=["deal", "def", "text"])])

    staged = Stager(_mapping(), extracts, {"currency": "AUD"}).stage("opportunity")

    record = staged.records.set_index("source_key").loc["deals:13"]
    # `stage` is Twenty's, `type` is reserved, `name` is the mapping's own field: each gets Twenty's suffix.
    assert (record["stageCustom"], record["typeCustom"], record["nameCustom"], record["name"]) == (
        "won", "lease", "Deal D", "D")
    assert {"stageCustom", "typeCustom", "nameCustom"} <= {need.name for need in staged.custom_fields}
