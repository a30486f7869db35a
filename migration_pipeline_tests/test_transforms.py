"""Named transforms: the conversions a migration engineer relies on, value by value."""

from __future__ import annotations

import pytest

from migration_pipeline.engine.transforms import InvalidValue, TransformContext, get_transform

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


@pytest.mark.parametrize("value", ["bob@", "n/a", "jane.doe@@x.example"])
def test_invalid_email_is_rejected_with_the_value_in_the_reason(value: str) -> None:
    with pytest.raises(InvalidValue, match="is not valid"):
        run("emails", value)


def test_phones_keep_country_codes_and_put_the_rest_in_additional() -> None:
    phones = run("phones", "(415) 555-0132", "+44 20 7946 0958", None, "")
    assert phones["primaryPhoneNumber"] == "4155550132"
    assert (phones["primaryPhoneCountryCode"], phones["primaryPhoneCallingCode"]) == ("US", "+1")
    assert phones["additionalPhones"] == [{"number": "2079460958", "countryCode": "GB", "callingCode": "+44"}]


def test_garbage_phone_is_invalid() -> None:
    with pytest.raises(InvalidValue, match="not a phone number"):
        run("phones", "call me")


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
