"""REST `filter=` parsing, as recorded on Twenty 2.21 (examples-2.md sections 1 and 10).

The real parser has sharp edges a client must work around: soft-deleted rows need a deletedAt term,
`[in]` lists split on every comma, there is no escape syntax, an apostrophe or an odd number of `"`
in a value swallows the predicates after it, parentheses are counted even inside quotes, and a raw
`+` arrives as a space.
"""

from __future__ import annotations

import pytest

from migration_pipeline_tests.contract.conftest import TwentyUnderTest
from migration_pipeline_tests.contract.probing import batch_create, companies, company_names, data_of, listed, messages

TRICKY = ["Comma, Jr.", 'Say "Hi"', "O'Probe", "Paren (X)", 'Size 5"', "Live"]


@pytest.fixture
def tricky(twenty: TwentyUnderTest) -> TwentyUnderTest:
    companies(twenty, *TRICKY)
    return twenty


def eq(twenty: TwentyUnderTest, name: str, quote: str = '"') -> str:
    return f"name[eq]:{quote}{twenty.prefix} {name}{quote}"


def test_soft_deleted_rows_are_seen_only_through_a_deleted_at_term(twenty: TwentyUnderTest) -> None:
    ids = companies(twenty, "SoftDel1", "SoftDel2", "Live3")
    for name in ("SoftDel1", "SoftDel2"):
        assert twenty.http.delete(f"/rest/companies/{ids[name]}", params={"soft_delete": "true"}).status_code == 200
    three = ",".join(f'"{twenty.prefix} {name}"' for name in ids)

    def found(filter_: str) -> list[str]:
        return company_names(twenty, listed(twenty, "companies", filter_))

    assert found(eq(twenty, "SoftDel1")) == []
    assert found(f"and({eq(twenty, 'SoftDel1')},deletedAt[is]:NOT_NULL)") == ["SoftDel1"]
    assert found(f"and({eq(twenty, 'Live3')},deletedAt[is]:NOT_NULL)") == []
    assert found(f"and(name[in]:[{three}],deletedAt[is]:NOT_NULL)") == ["SoftDel1", "SoftDel2"]
    assert found(f"name[in]:[{three}]") == ["Live3"]
    assert found(f"and(name[in]:[{three}],or(deletedAt[is]:NULL,deletedAt[is]:NOT_NULL))") == \
        ["Live3", "SoftDel1", "SoftDel2"]
    assert found(f"{eq(twenty, 'SoftDel1')},deletedAt[is]:NOT_NULL") == ["SoftDel1"]  # a top-level list is and()


def test_in_lists_split_on_every_comma_and_strip_quotes_per_element(tricky: TwentyUnderTest) -> None:
    twenty, p = tricky, tricky.prefix

    def found(filter_: str) -> list[str]:
        return company_names(twenty, listed(twenty, "companies", filter_))

    assert found(f"name[in]:[{p} Live,{p} O'Probe]") == ["Live", "O'Probe"]  # quotes are optional
    assert found(f'name[in]:["{p} Live", "{p} O\'Probe"]') == ["Live"]  # ` "b"` keeps its quotes: no match
    assert found(f'name[in]:["{p} Comma, Jr.","{p} Live"]') == ["Live"]  # the comma splits the value
    assert found(f"or({eq(twenty, 'Comma, Jr.')},{eq(twenty, 'Live')})") == ["Comma, Jr.", "Live"]


def test_eq_strips_only_the_outer_quotes_and_has_no_escape(tricky: TwentyUnderTest) -> None:
    twenty, p = tricky, tricky.prefix

    def found(filter_: str) -> list[str]:
        return company_names(twenty, listed(twenty, "companies", filter_))

    assert found(eq(twenty, "Comma, Jr.")) == ["Comma, Jr."]
    assert found(f"and({eq(twenty, 'Comma, Jr.')},deletedAt[is]:NULL)") == ["Comma, Jr."]
    assert found(eq(twenty, 'Say "Hi"')) == ['Say "Hi"']  # inner quotes need no escaping
    say_hi = eq(twenty, 'Say "Hi"')
    assert found(f"and({say_hi},deletedAt[is]:NULL)") == ['Say "Hi"']  # an even number of "
    assert found(f'name[eq]:"{p} Say \\"Hi\\""') == []  # backslashes are part of the value
    assert found(eq(twenty, 'Say "Hi"', quote="'")) == ['Say "Hi"']
    unquoted = listed(twenty, "companies", f"name[eq]:{p} Comma, Jr.")
    assert unquoted.status_code == 400
    assert messages(unquoted) == ["'filter' invalid for ' Jr.'. eg: price[gte]:10"]


@pytest.mark.parametrize("name", ["O'Probe", 'Size 5"'])
def test_a_value_with_an_apostrophe_or_odd_quotes_swallows_the_predicates_after_it(
    tricky: TwentyUnderTest, name: str
) -> None:
    twenty = tricky

    def found(filter_: str) -> list[str]:
        return company_names(twenty, listed(twenty, "companies", filter_))

    assert found(eq(twenty, name)) == [name]
    assert found(f"and({eq(twenty, name)},deletedAt[is]:NULL)") == []  # 200, silently nothing
    assert found(f"and({eq(twenty, name, quote=chr(39))},deletedAt[is]:NULL)") == []  # '...' does not help
    assert found(f"and(deletedAt[is]:NULL,{eq(twenty, name)})") == [name]  # last is safe


def test_an_apostrophe_inside_an_in_list_breaks_the_list_unless_it_comes_last(twenty: TwentyUnderTest) -> None:
    p = twenty.prefix
    emails = [f"{p}.o'neil@probe.example", f"{p}-live@probe.example"]
    batch_create(twenty, "people", [{"emails": {"primaryEmail": email}} for email in emails])
    in_list = "emails.primaryEmail[in]:[" + ",".join(f'"{email}"' for email in emails) + "]"

    alone = listed(twenty, "people", in_list)
    first = listed(twenty, "people", f"and({in_list},deletedAt[is]:NULL)")
    last = listed(twenty, "people", f"and(deletedAt[is]:NULL,{in_list})")

    assert sorted(person["emails"]["primaryEmail"] for person in data_of(alone)) == sorted(emails)
    assert first.status_code == 400
    assert messages(first)[0].startswith("'filter' invalid for 'in' operator. Received '[")
    assert len(data_of(last)) == 2


def test_parentheses_are_counted_even_inside_quotes(tricky: TwentyUnderTest) -> None:
    balanced = listed(tricky, "companies", eq(tricky, "Paren (X)"))
    unbalanced = listed(tricky, "companies", f'name[eq]:"{tricky.prefix} Paren (X"')

    assert company_names(tricky, balanced) == ["Paren (X)"]
    assert unbalanced.status_code == 400
    assert messages(unbalanced) == ["'filter' invalid. 1 close bracket is missing in the query"]


def test_a_raw_plus_arrives_as_a_space_so_it_must_be_sent_as_percent_2b(twenty: TwentyUnderTest) -> None:
    email = f"{twenty.prefix}+tag@probe.example"
    batch_create(twenty, "people", [{"emails": {"primaryEmail": email}}])

    raw = twenty.http.get(f'/rest/people?filter=emails.primaryEmail[eq]:"{email}"')
    encoded = listed(twenty, "people", f'emails.primaryEmail[eq]:"{email}"')  # httpx sends + as %2B

    assert "+" in str(raw.request.url) and "%2B" in str(encoded.request.url)
    assert data_of(raw) == []
    assert [person["emails"]["primaryEmail"] for person in data_of(encoded)] == [email]


def test_filtered_lists_carry_a_total_count_and_limit_0_only_counts(twenty: TwentyUnderTest) -> None:
    people = batch_create(twenty, "people", [
        {"name": {"firstName": twenty.prefix, "lastName": f"Count{i}"}, "jobTitle": "Probe" if i == 1 else ""}
        for i in range(1, 6)
    ])
    twenty.http.delete(f"/rest/people/{people[-1]['id']}", params={"soft_delete": "true"})
    mine = f'name.firstName[eq]:"{twenty.prefix}"'

    first = listed(twenty, "people", mine, limit=1).json()
    count_only = listed(twenty, "people", mine, limit=0).json()

    assert (len(first["data"]["people"]), first["totalCount"], first["pageInfo"]["hasNextPage"]) == (1, 4, True)
    assert (count_only["data"]["people"], count_only["totalCount"]) == ([], 4)

    def count(term: str) -> int:
        return listed(twenty, "people", f"and({mine},{term})", limit=0).json()["totalCount"]

    # Empty text is NULL to a filter: `[neq]:""` and `[is]:NOT_NULL` both count the filled ones.
    assert [count('jobTitle[neq]:""'), count("jobTitle[is]:NOT_NULL")] == [1, 1]
    assert [count('jobTitle[eq]:""'), count("jobTitle[is]:NULL")] == [3, 3]
    assert count("deletedAt[is]:NOT_NULL") == 1
