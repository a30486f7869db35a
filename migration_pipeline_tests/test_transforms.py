"""Named transforms: the conversions a migration engineer relies on, value by value."""

from __future__ import annotations

import re

import pytest

from migration_pipeline.engine.transforms import InvalidValue, TransformContext, get_transform, human_size

CTX = TransformContext(settings={"timezone": "America/Los_Angeles", "notes_timezone": "America/Chicago", "phone_region": "US"})


def run(name: str, *values: str | None, ctx: TransformContext = CTX):
    return get_transform(name)(tuple(values), ctx)


@pytest.mark.parametrize(
    "spelling",
    ["Acme Inc.", "ACME, Inc", "Acme Incorporated", "acme inc", " Acme  Inc ", "Acme Corp.", "ACME LLC"],
)
def test_company_spellings_share_one_key(spelling: str) -> None:
    assert run("company_name_key", spelling) == "acme"


def test_company_key_folds_accents_ampersands_and_dotted_suffixes() -> None:
    assert run("company_name_key", "Smith & Sons Ltd") == run("company_name_key", "Smith and Sons Limited")
    assert run("company_name_key", "Blue Harbor, L.L.C.") == run("company_name_key", "blue harbor llc")
    assert run("company_name_key", "Café Münster GmbH") == "cafe munster"


@pytest.mark.parametrize("value", ["N/A", "-", "none", "Inc."])
def test_company_values_that_name_no_company_are_invalid(value: str) -> None:
    with pytest.raises(InvalidValue, match="does not name a company"):
        run("company_name_key", value)


def test_blank_company_is_no_company_not_an_error() -> None:
    assert run("company_name_key", "") is None
    assert run("company_name_key", None) is None


def test_corporate_domain_skips_free_mail_and_reads_websites() -> None:
    assert run("corporate_domain", "", "jane@gmail.com", "jane@acme.example") == "acme.example"
    assert run("corporate_domain", "https://www.blueharbor.example/about", "") == "blueharbor.example"
    assert run("corporate_domain", "", "someone@yahoo.example") is None


def test_emails_composite_normalises_and_deduplicates() -> None:
    assert run("emails", " Jane.Doe@Acme.Example ", "jane.doe@acme.example", "j@home.example") == {
        "primaryEmail": "jane.doe@acme.example",
        "additionalEmails": ["j@home.example"],
    }
    assert run("emails", "", None) is None


@pytest.mark.parametrize("value", ["bob@", "n/a", "jane.doe@@x.example", "jane doe@x.example"])
def test_invalid_email_is_left_out_with_a_note_and_kept_as_text(value: str) -> None:
    ctx = TransformContext(settings=CTX.settings)

    assert run("emails", value, "ok@x.example", ctx=ctx) == {"primaryEmail": "ok@x.example", "additionalEmails": []}
    assert len(ctx.notes) == 1 and "is not valid" in ctx.notes[0] and repr(value) in ctx.notes[0]
    assert run("invalid_emails", value, "ok@x.example") == value
    assert run("invalid_emails", "ok@x.example") is None


def test_a_single_email_must_be_valid() -> None:
    with pytest.raises(InvalidValue, match="is not valid"):
        run("email", "bob@")


def test_phones_keep_country_codes_and_put_the_rest_in_additional() -> None:
    phones = run("phones", "(415) 555-0132", "+44 20 7946 0958", None, "")
    assert phones["primaryPhoneNumber"] == "4155550132"
    assert (phones["primaryPhoneCountryCode"], phones["primaryPhoneCallingCode"]) == ("US", "+1")
    assert phones["additionalPhones"] == [{"number": "2079460958", "countryCode": "GB", "callingCode": "+44"}]


def test_garbage_phone_is_left_out_with_a_note() -> None:
    ctx = TransformContext(settings=CTX.settings)

    assert run("phones", "call me", ctx=ctx) is None
    assert run("phones", "call me", "(415) 555-0132", ctx=ctx)["primaryPhoneNumber"] == "4155550132"
    assert ctx.notes == ["phone 'call me' is not a phone number; left out of the phones"] * 2


def test_an_extension_is_kept_beside_the_number_twenty_stores() -> None:
    raw = ("(415) 555-0132 ext. 89", "+44 20 7946 0958 x12", "(415) 555-0199")

    phones = run("phones", *raw)

    assert phones["primaryPhoneNumber"] == "4155550132"
    assert [p["number"] for p in phones["additionalPhones"]] == ["2079460958", "4155550199"]
    assert run("phone_extensions", *raw) == "+1 4155550132 ext. 89\n+44 2079460958 ext. 12"
    assert run("phone_extensions", "(415) 555-0199") is None


def test_a_national_number_is_sent_with_its_region_and_never_alone() -> None:
    phone = run("phones", "0412 345 678", ctx=TransformContext(settings={"phone_region": "au"}))
    no_region = TransformContext(settings={})

    assert (phone["primaryPhoneNumber"], phone["primaryPhoneCountryCode"], phone["primaryPhoneCallingCode"]) \
        == ("412345678", "AU", "+61")
    assert run("phones", "0412 345 678", ctx=no_region) is None
    assert "no `phone_region` setting" in no_region.notes[0]
    assert run("phones", "+61 412 345 678", ctx=no_region)["primaryPhoneCountryCode"] == "AU"


def test_local_datetime_converts_the_account_zone_to_utc() -> None:
    assert run("local_datetime", "2/15/2014 1:15:05 PM") == "2014-02-15T21:15:05.000Z"
    central = TransformContext(settings=CTX.settings, args={"zone_setting": "notes_timezone"})
    assert run("local_datetime", "10/2/2014 3:22 PM", ctx=central) == "2014-10-02T20:22:00.000Z"
    with pytest.raises(InvalidValue):
        run("local_datetime", "13/45/2020 9:00:00 AM")


def test_birthday_without_year_keeps_month_and_day() -> None:
    assert run("birthday", "03/04") == "--03-04"
    assert run("birthday", "12/10/1815") == "1815-12-10"
    with pytest.raises(InvalidValue):
        run("birthday", "02/30/2020")


def test_tags_become_upper_snake_options_without_case_duplicates() -> None:
    assert run("tags", "VIP, Newsletter, vip ,  golf club") == ["VIP", "NEWSLETTER", "GOLF_CLUB"]


def test_numbers_accept_currency_formatting_only() -> None:
    assert run("number", "$1,200") == 1200.0
    with pytest.raises(InvalidValue):
        run("number", "n/a")


def test_note_body_strips_allclients_prefixes() -> None:
    assert run("note_body", "[[System]] [[Icon:Email]] Sent the renewal") == "Sent the renewal"
    assert run("note_title", "[[System]] First line\nsecond") == "First line"


def test_unknown_transform_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known:.*company_name_key"):
        get_transform("nope")


# --- transforms added for API sources (Actionstep) ---------------------------------------------

STAGE_MAP = {"map": {"Active": "PROPOSAL", "Inactive": "SCREENING", "Closed": "CUSTOMER"}}


def test_value_map_replaces_declared_values_exactly_then_ignoring_case() -> None:
    ctx = TransformContext(args=STAGE_MAP)
    assert run("value_map", "Closed", ctx=ctx) == "CUSTOMER"
    assert run("value_map", " inactive ", ctx=ctx) == "SCREENING"
    assert run("value_map", None, ctx=ctx) is None


def test_value_map_sends_unknown_values_to_the_default_or_refuses_them() -> None:
    assert run("value_map", "Template", ctx=TransformContext(args={**STAGE_MAP, "default": "NEW"})) == "NEW"
    with pytest.raises(InvalidValue, match="'Template' is not in the value map.*Active, Inactive, Closed"):
        run("value_map", "Template", ctx=TransformContext(args=STAGE_MAP))
    with pytest.raises(InvalidValue, match="needs `args: {map:"):
        run("value_map", "Active", ctx=TransformContext())


def test_currency_is_exact_micros_with_the_currency_setting() -> None:
    ctx = TransformContext(settings={"currency": "AUD"})
    assert run("currency", "15166.17", ctx=ctx) == {"amountMicros": 15166170000, "currencyCode": "AUD"}
    assert run("currency", "$1,200", ctx=ctx) == {"amountMicros": 1200000000, "currencyCode": "AUD"}
    assert run("currency", "0.1", ctx=TransformContext(settings={"currency": "AUD"}, args={"currency": "NZD"})) == {
        "amountMicros": 100000, "currencyCode": "NZD"}  # exact: no binary floating point
    assert run("currency", None, ctx=ctx) is None


def test_currency_parts_for_dotted_columns_come_from_the_same_checks() -> None:
    ctx = TransformContext(settings={"currency": "AUD"}, args={"part": "amountMicros"})
    assert run("currency", "12.5", ctx=ctx) == 12_500_000
    assert run("currency", "12.5", ctx=TransformContext(settings={"currency": "AUD"}, args={"part": "currencyCode"})) == "AUD"
    with pytest.raises(InvalidValue, match="not an amount"):  # an invalid amount blanks the code too
        run("currency", "lots", ctx=TransformContext(settings={"currency": "AUD"}, args={"part": "currencyCode"}))
    with pytest.raises(InvalidValue, match="`part` must be"):
        run("currency", "1", ctx=TransformContext(settings={"currency": "AUD"}, args={"part": "amount"}))


@pytest.mark.parametrize(("settings", "value", "problem"), [
    ({"currency": "AUD"}, "lots", "'lots' is not an amount"),
    ({"currency": "AUD"}, "NaN", "'NaN' is not an amount"),
    ({}, "12.50", "set the `currency` setting"),
    ({"currency": "dollars"}, "12.50", "set the `currency` setting"),
])
def test_currency_refuses_non_amounts_and_a_missing_currency(settings: dict, value: str, problem: str) -> None:
    with pytest.raises(InvalidValue, match=re.escape(problem)):
        run("currency", value, ctx=TransformContext(settings=settings))


@pytest.mark.parametrize(("value", "expected"), [
    ("2022-05-03T00:09:00+12:00", "2022-05-02T12:09:00.000Z"),
    ("2022-05-03 00:09:00+12:00", "2022-05-02T12:09:00.000Z"),
    ("2022-05-02T12:09:00.651Z", "2022-05-02T12:09:00.651Z"),
    ("2019-08-15", "2019-08-14T14:00:00.000Z"),  # a bare date: midnight in the account's zone (UTC+10)
    ("2019-08-15T09:30:00", "2019-08-14T23:30:00.000Z"),  # no offset: the account's zone
])
def test_iso_datetime_normalises_offsets_and_reads_bare_values_in_the_account_zone(value: str, expected: str) -> None:
    assert run("iso_datetime", value, ctx=TransformContext(settings={"timezone": "Australia/Brisbane"})) == expected


def test_iso_datetime_without_a_zone_setting_is_utc_and_refuses_other_formats() -> None:
    assert run("iso_datetime", "2019-08-15", ctx=TransformContext()) == "2019-08-15T00:00:00.000Z"
    with pytest.raises(InvalidValue, match="not an ISO-8601 date-time"):
        run("iso_datetime", "15/08/2019")


def test_phone_parts_join_country_area_and_number_groups() -> None:
    ctx = TransformContext(settings={"phone_region": "AU"})
    got = run("phone_parts", "61", "2", "9876 5432", None, None, None, "64", "9", "3021 4567", None, "3", "9555 0123",
              ctx=ctx)
    assert got == {
        "primaryPhoneNumber": "298765432", "primaryPhoneCountryCode": "AU", "primaryPhoneCallingCode": "+61",
        "additionalPhones": [{"number": "930214567", "countryCode": "NZ", "callingCode": "+64"},
                             {"number": "395550123", "countryCode": "AU", "callingCode": "+61"}],  # region AU
    }
    assert run("phone_parts", None, None, None, "61", "2", None, ctx=ctx) is None  # no number, no phone


def test_phone_parts_needs_whole_groups_and_real_numbers() -> None:
    with pytest.raises(InvalidValue, match="groups"):
        run("phone_parts", "61", "2")
    ctx = TransformContext(settings=CTX.settings)
    assert run("phone_parts", "61", "2", "12", ctx=ctx) is None
    assert "not a phone number" in ctx.notes[0]


def test_first_item_of_a_comma_separated_list() -> None:
    assert run("first_item", "75165,75170") == "75165"
    assert run("first_item", " ,42") == "42"
    assert run("first_item", None) is None


def test_actionstep_flags_read_as_booleans() -> None:
    # The connector turns "T"/"F" into "true"/"false"; `boolean` reads both spellings.
    assert [run("boolean", v) for v in ("T", "F", "true", "false")] == [True, False, True, False]


@pytest.mark.parametrize(("size", "shown"), [
    (0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KB"), (140_651, "137.4 KB"),
    (10 * 1024 * 1024, "10.0 MB"), (25 * 1024 * 1024 + 1, "25.0 MB"), (3 * 1024**3, "3.0 GB"), (2048 * 1024**3, "2048.0 GB"),
])
def test_file_sizes_read_in_steps_of_1024_as_twenty_counts_its_limit(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_file_name_adds_the_extension_once() -> None:
    assert run("file_name", "Contract of sale", "pdf") == "Contract of sale.pdf"
    assert run("file_name", "scan.PDF", ".pdf") == "scan.PDF"
    assert run("file_name", "Notes", None) == "Notes"
    assert run("file_name", " ", "pdf") is None


def test_document_body_is_a_tags_and_file_header_then_the_summary() -> None:
    assert run("document_body", "Signed, Court ,", "Affidavit", "pdf", "140651", "Sworn on 3 May.\n") == (
        "- **Tags:** Signed, Court\n- **File:** Affidavit.pdf (137.4 KB)\n\nSworn on 3 May.")
    assert run("document_body", None, "Affidavit", "pdf", None, " ") == "- **Tags:** none\n- **File:** Affidavit.pdf"
    assert run("document_body", None, None, None, "12", None) == "- **Tags:** none\n- **File:** (no name) (12 bytes)"


def test_join_uses_its_separator_and_skips_blanks() -> None:
    assert run("join", "Client", None, " Smith, Ada ", ctx=TransformContext(args={"separator": ": "})) == "Client: Smith, Ada"
    assert run("join", "Conveyancing items", "6002") == "Conveyancing items 6002"
    assert run("join", None, "  ") is None
