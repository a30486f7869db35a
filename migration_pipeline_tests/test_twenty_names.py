"""Twenty's name rules, and names made from tenant data (core/twenty_names.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from migration_pipeline.core.twenty_names import (
    MAX_NAME_LENGTH,
    RESERVED_NAMES,
    inverse_label,
    name_from_label,
    name_problem,
    standard_fields,
    tenant_name,
)

TWENTY_SHARED = Path("/root/twenty/packages/twenty-shared/src/metadata/constants/reserved-metadata-name-keywords.constant.ts")


@pytest.mark.skipif(not TWENTY_SHARED.exists(), reason="Twenty's source is not on this machine")
def test_the_reserved_names_are_twentys_own_list() -> None:
    assert RESERVED_NAMES == set(re.findall(r"'(\w+)'", TWENTY_SHARED.read_text()))


@pytest.mark.parametrize(("name", "problem"), [
    ("role", "reserved by Twenty"),
    ("type", "reserved by Twenty"),
    ("Role", "not a camelCase name"),
    ("matter_role", "not a camelCase name"),
    ("2fa", "not a camelCase name"),
    ("a" * 64, "longer than Twenty's 63"),
])
def test_names_twenty_refuses_say_why(name: str, problem: str) -> None:
    assert problem in (name_problem(name) or "")


def test_names_twenty_takes_have_no_problem() -> None:
    assert name_problem("participantRole") is None and name_problem("a" * 63) is None


@pytest.mark.parametrize(("text", "name"), [
    ("Family Law AgreedFee", "familyLawAgreedFee"),
    ("Conveyancing: Settlement date", "conveyancingSettlementDate"),
    ("Müller & Söhne (Köln)", "mullerSohneKoln"),
    ("2024 fee", "n2024Fee"),
    ("XMLHttp request", "xmlHttpRequest"),
    ("   ", "unnamedField"),
    ("日本", "unnamedField"),
])
def test_tenant_text_becomes_a_camel_case_name(text: str, name: str) -> None:
    assert tenant_name(text) == name
    assert name_problem(tenant_name(text)) is None


def test_a_reserved_or_taken_name_gets_the_suffix_twenty_itself_suggests() -> None:
    assert tenant_name("Role") == "roleCustom"
    assert tenant_name("Type") == "typeCustom"
    assert tenant_name("Stage", taken=standard_fields("opportunity")) == "stageCustom"
    assert tenant_name("Stage", taken={"stage", "stageCustom"}) == "stageCustom2"
    assert tenant_name("Stage", taken={"stage", "stageCustom", "stageCustom2"}) == "stageCustom3"


def test_a_long_name_is_cut_with_a_hash_so_two_long_names_stay_apart() -> None:
    first = tenant_name("Conveyancing " + "very long attribute name " * 4 + "one")
    second = tenant_name("Conveyancing " + "very long attribute name " * 4 + "two")
    assert len(first) == len(second) == MAX_NAME_LENGTH and first != second
    assert first == tenant_name("Conveyancing " + "very long attribute name " * 4 + "one")  # the same every time
    taken = tenant_name("x" * 80, taken={tenant_name("x" * 80)})
    assert len(taken) == MAX_NAME_LENGTH and taken.endswith("Custom")


def test_the_name_twenty_gives_a_relation_inverse_from_its_label() -> None:
    # examples-2.md section 4: "Probe owned people" -> probeOwnedPeople; reserved words get "Custom".
    assert name_from_label("Probe owned people") == "probeOwnedPeople"
    assert name_from_label("Matter participants (Person)") == "matterParticipantsPerson"
    assert name_from_label("Events") == "eventsCustom"
    assert name_from_label("Assigned tasks") in standard_fields("workspaceMember")


def test_custom_objects_come_with_twentys_built_in_fields() -> None:
    assert {"name", "noteTargets", "timelineActivities", "searchVector"} <= standard_fields("matterRecord")
    assert "pointOfContactForOpportunities" in standard_fields("person")


def test_an_inverse_label_is_changed_only_when_its_name_would_clash() -> None:
    taken = standard_fields("workspaceMember")
    assert inverse_label("Owned people", taken) == "Owned people"
    assert inverse_label("Assigned tasks", taken) == "Assigned tasks Custom"
    assert inverse_label("Assigned tasks", taken | {"assignedTasksCustom"}) == "Assigned tasks Custom2"
    assert name_from_label(inverse_label("Assigned tasks", taken)) == "assignedTasksCustom"
