"""The mapping vocabulary added for API sources, staged on small in-memory frames: row
conditions on column values, per-field conditions, filtered and multi-valued lookups, select
options declared by a source table, duplicate unique values left blank, matches that only
consider rows of the target's kind, and files re-uploaded as attachments."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pydantic
import pytest

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.payloads import build_payloads
from migration_pipeline.engine.staging import Stager

CONTACTS = pd.DataFrame([
    {"id": "1", "kind": "company", "name": "Acme Pty Ltd", "site": "acme.example.com", "employer": None},
    {"id": "2", "kind": "company", "name": "Acme Two", "site": "acme.example.com", "employer": None},
    {"id": "3", "kind": "person", "name": "Ada", "site": None, "employer": "Acme Pty Ltd"},
    {"id": "4", "kind": "person", "name": "Acme Pty Ltd", "site": None, "employer": None},  # a person named like a company
], dtype=object)
ROLES = pd.DataFrame([
    {"id": "r1", "contact": "3", "role": "Witness", "matter": "m1"},
    {"id": "r2", "contact": "3", "role": "Client", "matter": "m2"},
    {"id": "r3", "contact": "3", "role": "Client", "matter": "m3"},
    {"id": "r4", "contact": "4", "role": "Referrer", "matter": "m1"},
], dtype=object)
ROLE_TYPES = pd.DataFrame([{"name": n} for n in ("Client", "Witness", "Referrer", "Opposing Counsel")], dtype=object)
MATTERS = pd.DataFrame([
    {"id": "m1", "status": "Closed", "closed": "2024-01-02T03:04:05.000Z", "deleted": "false"},
    {"id": "m2", "status": "Active", "closed": "2024-02-02T00:00:00.000Z", "deleted": "false"},
    {"id": "m3", "status": "Active", "closed": None, "deleted": "true"},
    {"id": "m4", "status": "Template", "closed": None, "deleted": "false"},
], dtype=object)


def _mapping(**overrides: Any) -> Mapping:
    files = {name: {"file": f"{name}.csv", "key": "id"} for name in ("contacts", "roles", "matters")}
    files["role_types"] = {"file": "role_types.csv"}
    objects = [
        {"name": "companies", "twenty_object": "company", "from": "contacts", "key": {"from": "id"},
         "when": {"column": "kind", "equals": "company"},
         "fields": {"name": {"from": "name"},
                    "domainName.primaryLinkUrl": {"from": "site", "transform": "corporate_domain_url",
                                                  "on_duplicate": "blank"}}},
        {"name": "people", "twenty_object": "person", "from": "contacts", "key": {"from": "id"},
         "when": {"column": "kind", "one_of": ["person"]},
         "fields": {
             "name.firstName": {"from": "name"},
             "matterRole": {"from": "id", "transform": "select",
                      "through": {"object": "roles", "key": "contact", "value": "role", "many": "most_common"},
                      "custom": {"type": "SELECT", "label": "Role",
                                 "options_from": {"object": "role_types", "column": "name"}}},
             "matterRoles": {"from": "id", "transform": "tags",
                       "through": {"object": "roles", "key": "contact", "value": "role", "many": "all"},
                       "custom": {"type": "MULTI_SELECT", "label": "Roles"}},
             "firstRole": {"from": "id", "through": {"object": "roles", "key": "contact", "value": "role",
                                                     "many": "first"}},
             "clientOn": {"from": "id", "through": {"object": "roles", "key": "contact", "value": "matter",
                                                    "where": {"role": "Client"}}},
         },
         "relations": {"companyId": {"object": "companies", "match": [
             {"from": "employer", "to": "name", "transform": "company_name_key"}]}}},
        {"name": "opportunities", "twenty_object": "opportunity", "from": "matters", "key": {"from": "id"},
         "when": {"all_of": [{"column": "deleted", "equals": False}, {"column": "status", "one_of": ["Active", "Closed"]}]},
         "fields": {"name": {"from": "id"},
                    "closeDate": {"from": "closed", "when": {"column": "status", "equals": "Closed"}}}},
    ]
    raw = {"version": 1, "source": {"slug": "demo", "label": "Demo", "kind": "files", "objects": files},
           "defaults": {"external_key_field": "demoId", "external_key_label": "Demo ID"}, "objects": objects}
    raw.update(overrides)
    return Mapping.model_validate(raw)


def _extracts() -> dict[str, pd.DataFrame]:
    return {"contacts": CONTACTS, "roles": ROLES, "role_types": ROLE_TYPES, "matters": MATTERS}


def _stager() -> Stager:
    return Stager(_mapping(), _extracts(), {})


def _records(staged) -> dict[str, dict[str, Any]]:
    """Staged records by key; pandas' NaN for a blank read as None."""
    def cell(value: Any) -> Any:
        return None if not isinstance(value, (list, dict)) and pd.isna(value) else value

    return {r["source_key"]: {k: cell(v) for k, v in r.items()} for r in staged.records.to_dict("records")}


def test_row_conditions_on_column_values_exclude_with_the_reason() -> None:
    stager = _stager()
    companies, people, matters = (stager.stage(o) for o in ("company", "person", "opportunity"))
    assert set(_records(companies)) == {"companies:1", "companies:2"}
    assert set(_records(people)) == {"people:3", "people:4"}
    assert set(_records(matters)) == {"opportunities:m1", "opportunities:m2"}
    reasons = dict(zip(matters.excluded["source_row"], matters.excluded["reason"]))
    assert reasons == {"m3": "deleted is 'true', not 'false'", "m4": "status is 'Template', not one of Active, Closed"}
    assert set(people.excluded["reason"]) == {"kind is 'company', not one of person"}


def test_a_field_condition_leaves_the_field_blank_elsewhere() -> None:
    matters = _records(_stager().stage("opportunity"))
    assert matters["opportunities:m1"]["closeDate"] == "2024-01-02T03:04:05.000Z"
    assert matters["opportunities:m2"]["closeDate"] is None  # not closed: its timestamp is not a close date


def test_lookups_filter_rows_and_choose_among_several() -> None:
    people = _records(_stager().stage("person"))
    ada, named_like_company = people["people:3"], people["people:4"]
    assert ada["matterRole"] == "CLIENT"  # most common of Witness, Client, Client
    assert ada["matterRoles"] == ["WITNESS", "CLIENT"]  # every distinct one, in row order
    assert ada["firstRole"] == "Witness"
    assert ada["clientOn"] == "m3"  # only rows with role Client; the last one by default
    assert named_like_company["matterRole"] == "REFERRER" and named_like_company["clientOn"] is None


def test_options_from_a_source_table_include_unused_ones_with_the_source_labels() -> None:
    needs = {n.name: n for n in _stager().stage("person").custom_fields}
    assert needs["matterRole"].options == {"CLIENT": "Client", "OPPOSING_COUNSEL": "Opposing Counsel",
                                     "REFERRER": "Referrer", "WITNESS": "Witness"}
    assert needs["matterRoles"].options == {"CLIENT": "Client", "REFERRER": "Referrer", "WITNESS": "Witness"}  # seen only


def test_a_duplicate_unique_value_can_be_left_blank_instead_of_holding_the_record() -> None:
    companies = _stager().stage("company")
    records = _records(companies)
    assert records["companies:1"]["domainName.primaryLinkUrl"] == "https://acme.example.com"
    assert records["companies:2"]["domainName.primaryLinkUrl"] is None
    assert companies.quarantined.empty
    (issue,) = companies.field_issues.to_dict("records")
    assert issue["source_key"] == "companies:2" and "already used by companies:1; left blank" in issue["reason"]


def test_matches_only_consider_rows_of_the_targets_kind() -> None:
    # Person 4 is named "Acme Pty Ltd" too, but is not a company: the employer match stays unique.
    people = _records(_stager().stage("person"))
    assert people["people:3"]["companyId"] == "companies:1"


def test_find_cycles_reports_each_circular_chain_once_without_the_records_leading_into_it() -> None:
    from migration_pipeline.engine.cycles import describe, find_cycles

    parent_of = {"a": "b", "b": "c", "c": "a", "tail": "a", "x": "y", "self": "self", "top": "root"}
    cycles = find_cycles(parent_of)
    assert cycles == [["a", "b", "c"], ["self"]]
    assert describe(cycles[0]) == "a -> b -> c -> a"
    assert find_cycles({"child": "parent", "parent": "grandparent"}) == []


def _documents_mapping(kind: str = "rest") -> dict[str, Any]:
    source_object = {"path": "docs", "key": "id"} if kind == "rest" else {"file": "docs.csv", "key": "id"}
    return {
        "version": 1,
        "source": {"slug": "demo", "label": "Demo", "kind": kind, "objects": {"docs": source_object}},
        "defaults": {"external_key_field": "demoId", "external_key_label": "Demo ID", "max_upload_bytes": 1000},
        "objects": [{
            "name": "docs", "twenty_object": "note", "from": "docs", "key": {"from": "id"},
            "fields": {"title": {"from": "title"}, "bodyV2.markdown": {"from": "text"}},
            "attachment": {"file": "ref", "name": {"from": ["title", "ext"], "transform": "file_name"},
                           "size": "bytes", "what": "doc", "notice_in": "bodyV2.markdown"},
        }],
    }


def test_an_attachment_block_stages_one_file_per_record_and_leaves_out_files_over_the_limit() -> None:
    docs = pd.DataFrame([
        {"id": "1", "title": "Small", "ext": "txt", "text": "hello", "ref": "R1", "bytes": "1000"},
        {"id": "2", "title": "Big", "ext": "txt", "text": None, "ref": "R2", "bytes": "1001"},
        {"id": "3", "title": "Empty", "ext": "txt", "text": "x", "ref": None, "bytes": None},
        {"id": "4", "title": "Unsized", "ext": None, "text": "y", "ref": "R4", "bytes": None},
    ], dtype=object)
    stager = Stager(Mapping.model_validate(_documents_mapping()), {"docs": docs}, {})
    assert stager.staged_objects() == ["note", "attachment"]

    bodies = dict(zip(*[stager.stage("note").records[c] for c in ("source_key", "bodyV2.markdown")]))
    too_big = "file Big.txt is 1001 bytes, over Twenty's 1000 bytes upload limit: download it from Demo (doc 2)"
    assert bodies == {"docs:1": "hello", "docs:2": f"**File not attached:** {too_big}",
                      "docs:3": "x\n\n**File not attached:** no file: ref is blank", "docs:4": "y"}

    files = stager.stage("attachment")
    assert [(r["source_key"], r["name"], r["targetNoteId"], r["source_file"], r["source_file_bytes"])
            for r in files.records.to_dict("records")] == [
        ("docs:1#file", "Small.txt", "docs:1", "R1", 1000), ("docs:4#file", "Unsized", "docs:4", "R4", None)]
    assert dict(zip(files.excluded["source_row"], files.excluded["reason"])) == {
        "2": too_big, "3": "no file: ref is blank"}
    assert files.relations == {"targetNoteId": "docs"} and files.input_rows == {"docs_files": 4}
    # The file's source reference and size stay out of what is sent to Twenty.
    payloads = build_payloads(files.records, files.relations, {},
                              lambda _, keys: {k: f"id-{k}" for k in keys}, {}, None).records
    assert payloads == [("docs:1#file", {"name": "Small.txt", "targetNoteId": "id-docs:1"}),
                        ("docs:4#file", {"name": "Unsized", "targetNoteId": "id-docs:4"})]


@pytest.mark.parametrize(("change", "problem"), [
    (lambda m: m["objects"][0]["attachment"].update(notice_in="body"), "notice_in 'body' is not one of its fields"),
    (lambda m: m["objects"][0].update(twenty_object="noteTarget"), "Twenty attaches files to note, task"),
    (lambda m: m["objects"][0].update(twenty_object="attachment"), "attachments come from an object's `attachment:`"),
    (lambda m: m.update(_documents_mapping("files")), "`attachment:` needs a rest source"),
])
def test_an_attachment_block_is_checked_when_the_mapping_loads(change: Any, problem: str) -> None:
    raw = _documents_mapping()
    change(raw)
    with pytest.raises(pydantic.ValidationError, match=re.escape(problem)):
        Mapping.model_validate(raw)


def test_the_whole_exports_owner_keeps_a_shared_value_in_a_slice_without_it() -> None:
    whole = _stager()
    owners = whole.unique_owners("company")
    sliced = Stager(_mapping(), {**_extracts(), "contacts": CONTACTS.iloc[[1, 2, 3]].reset_index(drop=True)},
                    {}, owners=owners).stage("company")
    (record,) = sliced.records.to_dict("records")  # companies:2 only: companies:1 is not in the slice
    assert record["source_key"] == "companies:2" and record["domainName.primaryLinkUrl"] is None
    assert "already used by companies:1; left blank" in sliced.field_issues["reason"].iloc[0]


def test_an_optional_link_to_a_record_not_in_twenty_is_left_out_and_said_a_required_one_refuses() -> None:
    frame = pd.DataFrame([{"source_key": "people:3", "object": "people", "name.firstName": "Ada",
                           "companyId": "companies:9", "matterId": "matters:1"}], dtype=object)
    in_twenty = {"matters:1": "id-m1"}

    def resolve(_: str, keys: Any) -> dict[str, str]:
        return {k: in_twenty[k] for k in keys if k in in_twenty}

    relations = {"companyId": "companies", "matterId": "matters"}
    loaded = build_payloads(frame, relations, {}, resolve, {}, None, optional={"companyId"})
    assert loaded.records == [("people:3", {"name": {"firstName": "Ada"}, "matterId": "id-m1"})]
    assert loaded.rejected == []
    assert loaded.field_issues == [{"object": "people", "source_key": "people:3", "field": "companyId",
                                    "reason": "related record companies:9 is not in Twenty (not loaded); left unlinked"}]
    in_twenty.clear()
    refused = build_payloads(frame, relations, {}, resolve, {}, None, optional={"companyId"})
    assert refused.records == [] and refused.rejected == [
        ("people:3", "matterId: related record matters:1 is not in Twenty (not loaded)")]
