"""Values both servers must treat alike: phones, emails, nulls in updates and client-supplied
timestamps (shared/twenty-contract/examples-2.md sections 6 and 11). The pipeline's own
`phones` / `emails` transforms are sent too, so what the mapping builds is what Twenty keeps."""

from __future__ import annotations

from typing import Any

import httpx

from migration_pipeline.engine.payloads import empty_update_values, nest, with_cleared
from migration_pipeline.engine.transforms import TransformContext, get_transform
from migration_pipeline.lifecycle.field_diff import compare_records
from migration_pipeline_tests.contract.conftest import TwentyUnderTest, created


def _person(twenty: TwentyUnderTest, suffix: str, **fields: Any) -> httpx.Response:
    body = {"name": {"firstName": twenty.prefix, "lastName": suffix}, **fields}
    response = twenty.http.post("/rest/people", json=body)
    if response.status_code == 201:
        twenty.track_record("people", created(response)["id"])
    return response


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body.get("code", ""), "; ".join(body.get("messages", []))


def _read(twenty: TwentyUnderTest, plural: str, record_id: str) -> dict[str, Any]:
    response = twenty.http.get(f"/rest/{plural}/{record_id}")
    assert response.status_code == 200, response.text
    return next(iter(response.json()["data"].values()))


# --- phones --------------------------------------------------------------------------------


def test_a_phone_extension_is_dropped_and_a_national_number_needs_its_country(twenty: TwentyUnderTest) -> None:
    alone = _person(twenty, "Ext1", phones={"primaryPhoneNumber": "5551234567 ext. 89"})
    with_country = created(_person(twenty, "Ext2", phones={"primaryPhoneNumber": "5551234567 ext. 89",
                                                           "primaryPhoneCountryCode": "US"}))

    assert _error(alone)[:2] == (400, "INVALID_PHONE_NUMBER")
    assert with_country["phones"]["primaryPhoneNumber"] == "5551234567"
    assert (with_country["phones"]["primaryPhoneCountryCode"], with_country["phones"]["primaryPhoneCallingCode"]) == ("US", "+1")


def test_an_international_number_gives_its_country_and_codes_are_checked(twenty: TwentyUnderTest) -> None:
    inferred = created(_person(twenty, "Intl", phones={"primaryPhoneNumber": "+44 20 7946 0958"}))["phones"]
    lower_case = _person(twenty, "Lower", phones={"primaryPhoneNumber": "020 7946 0958", "primaryPhoneCountryCode": "gb"})
    conflicting = _person(twenty, "Conflict", phones={"primaryPhoneNumber": "+44 20 7946 0958",
                                                      "primaryPhoneCountryCode": "US"})

    assert (inferred["primaryPhoneNumber"], inferred["primaryPhoneCountryCode"], inferred["primaryPhoneCallingCode"]) \
        == ("2079460958", "GB", "+44")
    assert _error(lower_case)[:2] == (400, "INVALID_PHONE_COUNTRY_CODE")
    assert _error(conflicting)[:2] == (400, "CONFLICTING_PHONE_COUNTRY_CODE")


def test_additional_phones_take_number_country_and_calling_code(twenty: TwentyUnderTest) -> None:
    phones = created(_person(twenty, "More", phones={
        "primaryPhoneNumber": "5551234567", "primaryPhoneCountryCode": "US",
        "additionalPhones": [{"number": "5559876543 ext 12", "countryCode": "US"}, {"number": "+33 1 23 45 67 89"}],
    }))["phones"]
    national_only = _person(twenty, "More2", phones={"additionalPhones": [{"number": "5559876543"}]})

    assert [(p["number"], p["countryCode"], p["callingCode"]) for p in phones["additionalPhones"]] == [
        ("5559876543", "US", "+1"), ("123456789", "FR", "+33")]
    assert _error(national_only)[:2] == (400, "INVALID_PHONE_NUMBER")


def test_the_phones_the_mapping_builds_are_kept_as_sent(twenty: TwentyUnderTest) -> None:
    ctx = TransformContext(settings={"phone_region": "US"})
    raw = ("(503) 555-0101 ext. 89", "+44 20 7946 0958", "020 7946 0958", "call me maybe")
    payload = {"phones": get_transform("phones")(raw, ctx)}
    person = created(_person(twenty, "Mapped", **payload))

    diff = compare_records("person", {"k": payload}, {"k": person["id"]}, {person["id"]: _read(twenty, "people", person["id"])})

    assert diff.clean, diff.differences
    assert get_transform("phone_extensions")(raw, ctx) == "+1 5035550101 ext. 89"


# --- emails --------------------------------------------------------------------------------


def test_emails_are_lower_cased_and_never_trimmed(twenty: TwentyUnderTest) -> None:
    upper = f"{twenty.prefix}.Upper@PROBE.Example"
    stored = created(_person(twenty, "Upper", emails={"primaryEmail": upper, "additionalEmails": [upper]}))["emails"]
    spaced = _person(twenty, "Spaced", emails={"primaryEmail": f"  {twenty.prefix}-ws@probe.example  "})
    space_inside = _person(twenty, "Inside", emails={"primaryEmail": f"{twenty.prefix}-in@probe.example",
                                                     "additionalEmails": [f"{twenty.prefix} in@probe.example"]})

    assert stored == {"primaryEmail": upper.lower(), "additionalEmails": [upper.lower()]}
    assert _error(spaced)[0] == 400 and "for email field \"emails.primaryEmail\"" in _error(spaced)[2]
    assert _error(space_inside)[0] == 400 and "emails.additionalEmails" in _error(space_inside)[2]


def test_only_the_primary_email_is_unique(twenty: TwentyUnderTest) -> None:
    address = f"{twenty.prefix}.shared@probe.example"
    created(_person(twenty, "First", emails={"primaryEmail": address}))

    same_upper = _person(twenty, "Dup", emails={"primaryEmail": address.upper()})
    as_additional = _person(twenty, "Second", emails={"primaryEmail": "", "additionalEmails": [address]})

    assert _error(same_upper)[0] == 400 and "A duplicate entry was detected" in _error(same_upper)[2]
    assert created(as_additional)["emails"] == {"primaryEmail": "", "additionalEmails": [address]}


# --- nulls in updates ---------------------------------------------------------------------


def test_what_an_update_says_is_empty_is_cleared(twenty: TwentyUnderTest) -> None:
    company = created(twenty.http.post("/rest/companies", json={
        "name": f"{twenty.prefix} Co", "address": {"addressCity": "Springfield", "addressStreet1": "1 Main St"}}))
    twenty.track_record("companies", company["id"])
    person = created(_person(twenty, "Clear", jobTitle="Judge", companyId=company["id"],
                             emails={"primaryEmail": f"{twenty.prefix}.clear@probe.example"},
                             phones={"primaryPhoneNumber": "5551234567", "primaryPhoneCountryCode": "US"}))
    cleared = {"jobTitle": None, "companyId": None, "emails": None, "phones": None, "name": {"lastName": None}}
    update = with_cleared({"name": {"firstName": twenty.prefix}}, empty_update_values(cleared))

    answer = twenty.http.patch(f"/rest/people/{person['id']}", json=update)
    company_answer = twenty.http.patch(f"/rest/companies/{company['id']}",
                                       json=empty_update_values(nest({"address.addressCity": None}, keep_blanks=True)))

    assert answer.status_code == 200, answer.text
    after = _read(twenty, "people", person["id"])
    assert (after["jobTitle"], after["companyId"], after["name"]["lastName"]) == ("", None, "")
    assert after["emails"] == {"primaryEmail": "", "additionalEmails": []}
    assert after["phones"]["primaryPhoneNumber"] == "" and after["phones"]["additionalPhones"] == []
    assert company_answer.status_code == 200, company_answer.text
    address = _read(twenty, "companies", company["id"])["address"]
    assert (address["addressCity"], address["addressStreet1"]) == ("", "1 Main St")


def test_a_composite_sent_as_null_is_left_as_it_was(twenty: TwentyUnderTest) -> None:
    email = f"{twenty.prefix}.kept@probe.example"
    person = created(_person(twenty, "Kept", emails={"primaryEmail": email}))

    twenty.http.patch(f"/rest/people/{person['id']}", json={"emails": None})

    assert _read(twenty, "people", person["id"])["emails"]["primaryEmail"] == email


# --- client-supplied timestamps -------------------------------------------------------------


def test_created_and_updated_at_are_stored_as_given(twenty: TwentyUnderTest) -> None:
    backdated = created(_person(twenty, "Back", createdAt="2020-01-02T03:04:05Z", updatedAt="2020-01-03T00:00:00Z"))
    date_only = created(_person(twenty, "Date", createdAt="2020-01-02"))
    offset = created(_person(twenty, "Offset", createdAt="2020-01-02T03:04:05+02:00"))
    invalid = _person(twenty, "Bad", createdAt="2020-13-45T00:00:00Z")

    assert (backdated["createdAt"], backdated["updatedAt"]) == ("2020-01-02T03:04:05.000Z", "2020-01-03T00:00:00.000Z")
    assert date_only["createdAt"] == "2020-01-02T00:00:00.000Z"
    assert offset["createdAt"] == "2020-01-02T01:04:05.000Z"
    assert _error(invalid)[0] == 400 and "for date-time field \"createdAt\"" in _error(invalid)[2]


def test_an_update_keeps_an_explicit_updated_at_and_bumps_it_otherwise(twenty: TwentyUnderTest) -> None:
    person = created(_person(twenty, "Upd", createdAt="2020-01-02T03:04:05Z", updatedAt="2020-01-03T00:00:00Z"))

    explicit = twenty.http.patch(f"/rest/people/{person['id']}", json={"jobTitle": "A", "updatedAt": "2020-06-01T00:00:00Z"})
    bumped = twenty.http.patch(f"/rest/people/{person['id']}", json={"jobTitle": "B"})

    assert next(iter(explicit.json()["data"].values()))["updatedAt"] == "2020-06-01T00:00:00.000Z"
    after = next(iter(bumped.json()["data"].values()))
    assert after["updatedAt"] > "2021" and after["createdAt"] == "2020-01-02T03:04:05.000Z"
