"""Contract tests of the Twenty writer over real HTTP against the fake Twenty server.

They assert on what the fake received (request counts, batch sizes, filters) and on what it
holds afterwards, so the request budget (Twenty allows ~100 requests/min, 200 records per
batch) is part of the contract.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dagster as dg
import httpx
import pandas as pd
import pydantic
import pytest

from migration_pipeline.destinations.twenty.client import MAX_URL_BYTES, TwentyClient, TwentyRequestError
from migration_pipeline.destinations.twenty.loader import LoadAborted, LoadOutcome, LoadRecord, load_object
from migration_pipeline.destinations.twenty.metadata import (
    FieldSpec,
    ObjectSpec,
    SchemaError,
    SchemaSpec,
    SelectOption,
    drop_created,
    ensure_schema,
)
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.payloads import build_payloads
from migration_pipeline.engine.rate_limit import RateLimiter
from migration_pipeline.engine.staging import KEY
from migration_pipeline.engine.retry import RetriesExhausted, RetryPolicy
from migration_pipeline.ledger import Ledger

RUN = "full-20261122T1000Z"
EXTERNAL_KEY = "migrationKey"
PEOPLE_SCHEMA = SchemaSpec(
    fields=(FieldSpec("person", EXTERNAL_KEY, "Migration key", "TEXT", is_unique=True),)
)


def connect(
    fake: Any,
    *,
    api_key: str | None = None,
    max_attempts: int = 4,
    limiter: RateLimiter | None = None,
) -> TwentyClient:
    return TwentyClient(
        fake.base_url,
        api_key or fake.api_key,
        timeout=httpx.Timeout(5.0),
        retry=RetryPolicy(max_attempts=max_attempts, backoff_base_seconds=0.01, backoff_max_seconds=0.05),
        limiter=limiter or RateLimiter(60_000),
    )


@pytest.fixture
def client(fake_twenty: Any) -> Iterator[TwentyClient]:
    with connect(fake_twenty) as opened:
        ensure_schema(opened, PEOPLE_SCHEMA)
        fake_twenty.clear_requests()
        yield opened


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(str(tmp_path / "ledger.sqlite")) as opened:
        yield opened


def people(count: int, start: int = 0, **fields: Any) -> list[LoadRecord]:
    return [
        LoadRecord(
            f"allclients:contact:{n}",
            {
                "name": {"firstName": f"First{n}", "lastName": "Person"},
                "emails": {"primaryEmail": f"person{n}@example.test"},
                EXTERNAL_KEY: f"allclients:contact:{n}",
                **fields,
            },
        )
        for n in range(start, start + count)
    ]


def load(client: TwentyClient, ledger: Ledger, records: list[LoadRecord], **options: Any) -> LoadOutcome:
    return load_object(
        client,
        ledger,
        RUN,
        "people",
        records,
        external_key_field=EXTERNAL_KEY,
        natural_keys=("emails.primaryEmail",),
        **options,
    )


def external_keys_in_twenty(fake: Any) -> Counter[str]:
    return Counter(p[EXTERNAL_KEY] for p in fake.records("people", include_deleted=True) if p[EXTERNAL_KEY])


def sent(fake: Any, method: str, path: str) -> list[Any]:
    return [r for r in fake.requests if r.method == method and r.path == path]


# -- request budget -----------------------------------------------------------------------


def test_a_fresh_load_costs_one_request_per_200_records(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    outcome = load(client, ledger, people(1000))

    assert (outcome.created, outcome.requests) == (1000, 5)
    assert [(r.method, r.path, len(r.json), r.query) for r in fake_twenty.requests] == [
        ("POST", "/rest/batch/people", 200, {})
    ] * 5
    assert external_keys_in_twenty(fake_twenty) == Counter(f"allclients:contact:{n}" for n in range(1000))


def test_the_batch_size_setting_is_respected(fake_twenty: Any, client: TwentyClient, ledger: Ledger) -> None:
    load(client, ledger, people(120), batch_size=50)

    assert [len(r.json) for r in sent(fake_twenty, "POST", "/rest/batch/people")] == [50, 50, 20]


def test_more_than_200_records_per_batch_is_refused_before_sending(
    fake_twenty: Any, client: TwentyClient
) -> None:
    with pytest.raises(ValueError, match="200"):
        client.create_batch("people", [r.payload for r in people(201)])
    with pytest.raises(ValueError, match="batch_size"):
        load_object(
            client, Ledger("sqlite:///:memory:"), RUN, "people", [], external_key_field=None, batch_size=201
        )
    assert fake_twenty.requests == []


def test_a_rerun_of_unchanged_records_sends_nothing(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    load(client, ledger, people(1000))
    fake_twenty.clear_requests()

    outcome = load(client, ledger, people(1000))

    assert (outcome.unchanged, outcome.created, outcome.updated, outcome.requests) == (1000, 0, 0, 0)
    assert fake_twenty.requests == []
    assert ledger.counts(RUN)["people"] == {"create": 1000, "unchanged": 1000}


def test_changed_records_are_updated_in_place_with_their_before_image(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    load(client, ledger, people(250, jobTitle="Engineer"))
    fake_twenty.clear_requests()
    changed = people(250, jobTitle="Engineer")
    changed[7] = LoadRecord(changed[7].source_key, {**changed[7].payload, "jobTitle": "CTO"})

    outcome = load_object(
        client, ledger, "delta-1", "people", changed,
        external_key_field=EXTERNAL_KEY, natural_keys=("emails.primaryEmail",),
    )

    assert (outcome.updated, outcome.unchanged, outcome.requests) == (1, 249, 2)
    read, write = fake_twenty.requests
    assert (read.method, read.path) == ("GET", "/rest/people")
    assert read.query["filter"].startswith("id[in]:[")
    assert (write.method, write.path, write.query) == ("POST", "/rest/batch/people", {"upsert": "true"})
    (update,) = [w for w in ledger.writes("delta-1") if w["operation"] == "update"]
    assert update["source_key"] == "allclients:contact:7"
    assert update["before_image"]["jobTitle"] == "Engineer"
    assert len(fake_twenty.records("people")) == 250
    cto = [p for p in fake_twenty.records("people") if p["jobTitle"] == "CTO"]
    assert [p["id"] for p in cto] == [update["twenty_id"]]


def test_a_rerun_writes_empty_where_the_mapping_now_says_empty(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    def staged(job: str | None, phones: dict[str, Any] | None) -> list[LoadRecord]:
        frame = pd.DataFrame([{KEY: "people:1", "object": "people", EXTERNAL_KEY: "people:1", "name.firstName": "Ada",
                               "jobTitle": job, "phones": phones}], dtype=object)
        batch = build_payloads(frame, {}, {}, lambda _o, _k: {}, {}, None)
        return [LoadRecord(k, p, batch.cleared.get(k, {})) for k, p in batch.records]

    phone = {"primaryPhoneNumber": "4155550132", "primaryPhoneCountryCode": "US", "primaryPhoneCallingCode": "+1",
             "additionalPhones": []}
    load(client, ledger, staged("Judge", phone))
    (create,) = fake_twenty.records("people")
    assert (create["jobTitle"], create["phones"]["primaryPhoneNumber"]) == ("Judge", "4155550132")

    outcome = load_object(client, ledger, "delta-1", "people", staged(None, None),
                          external_key_field=EXTERNAL_KEY, natural_keys=("emails.primaryEmail",))
    rerun = load_object(client, ledger, "delta-2", "people", staged(None, None),
                        external_key_field=EXTERNAL_KEY, natural_keys=("emails.primaryEmail",))

    assert outcome.updated == 1 and (rerun.unchanged, rerun.requests) == (1, 0)
    (person,) = fake_twenty.records("people")
    assert person["jobTitle"] == "" and person["phones"]["primaryPhoneNumber"] == ""
    (update,) = ledger.writes("delta-1")
    assert update["before_image"]["jobTitle"] == "Judge"
    assert {"jobTitle", "phones"} <= set(update["fields"])


def test_a_rerun_with_a_lost_ledger_adopts_records_instead_of_duplicating(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger, tmp_path: Path
) -> None:
    load(client, ledger, people(400))
    fake_twenty.clear_requests()

    with Ledger(str(tmp_path / "fresh.sqlite")) as fresh:
        outcome = load(client, fresh, people(400))

    assert (outcome.created, outcome.updated) == (0, 400)
    # per batch of 200: the refused create, a bulk lookup (two URL-sized chunks), one upsert
    assert outcome.requests <= 2 * 4
    assert max(external_keys_in_twenty(fake_twenty).values()) == 1
    assert len(fake_twenty.records("people")) == 400


# -- rejected records ---------------------------------------------------------------------


def test_one_bad_record_is_rejected_while_the_rest_of_its_batch_lands(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    records = people(200)
    records[137] = LoadRecord(records[137].source_key, {**records[137].payload, "emails": "not-an-object"})

    outcome = load(client, ledger, records)

    assert outcome.created == 199
    assert outcome.rejected == [
        ("allclients:contact:137", "Invalid object value 'not-an-object' for field \"emails\"")
    ]
    assert outcome.requests <= 1 + 2 * 8  # one refused batch, then bisection down to the record
    assert "allclients:contact:137" not in external_keys_in_twenty(fake_twenty)
    assert len(fake_twenty.records("people")) == 199
    (rejected,) = [w for w in ledger.writes(RUN) if w["operation"] == "rejected"]
    assert "emails" in rejected["message"]


def test_a_load_that_twenty_refuses_entirely_stops_early(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    unprepared = people(1000, legacyScore=3)  # a field the schema was never given

    with pytest.raises(LoadAborted, match='doesn\'t have any "legacyScore" field') as raised:
        load(client, ledger, unprepared)

    assert "mapping or schema" in str(raised.value)
    assert len(fake_twenty.requests) < 60  # not ~2 per record for all 1000
    assert fake_twenty.records("people") == []


def test_two_source_records_claiming_one_email_are_not_merged(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    first, second = people(2)
    second = LoadRecord(second.source_key, {**second.payload, "emails": first.payload["emails"]})

    outcome = load(client, ledger, [first, second])

    assert outcome.created == 1
    assert [key for key, _ in outcome.rejected] == [second.source_key]
    assert first.source_key in outcome.rejected[0][1]
    assert [len(r.json) for r in fake_twenty.requests] == [1]


# -- adopting records that already exist --------------------------------------------------


def test_an_existing_person_with_the_same_email_is_updated_with_a_before_image(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    (existing,) = client.create_batch(
        "people", [{"emails": {"primaryEmail": "person3@example.test"}, "jobTitle": "Founder"}]
    )
    fake_twenty.clear_requests()

    outcome = load(client, ledger, people(10, jobTitle="Engineer"))

    assert (outcome.created, outcome.updated) == (9, 1)
    assert len(fake_twenty.records("people")) == 10
    (adopted,) = [w for w in ledger.writes(RUN) if w["operation"] == "update"]
    assert adopted["source_key"] == "allclients:contact:3"
    assert adopted["twenty_id"] == existing["id"]
    assert adopted["before_image"]["jobTitle"] == "Founder"
    now = next(p for p in fake_twenty.records("people") if p["id"] == existing["id"])
    assert (now["jobTitle"], now[EXTERNAL_KEY]) == ("Engineer", "allclients:contact:3")
    lookups = sent(fake_twenty, "GET", "/rest/people")
    assert all("[in]:[" in r.query["filter"] for r in lookups) and len(lookups) <= 4


def test_a_soft_deleted_match_is_restored_and_recorded_as_a_restore(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    (existing,) = client.create_batch("people", [{"emails": {"primaryEmail": "person0@example.test"}}])
    client.soft_delete("people", existing["id"])

    outcome = load(client, ledger, people(1))

    assert outcome.updated == 1
    (restore,) = ledger.writes(RUN)
    assert (restore["operation"], restore["twenty_id"]) == ("restore", existing["id"])
    assert restore["before_image"]["deletedAt"] is not None
    assert [p["id"] for p in fake_twenty.records("people")] == [existing["id"]]


# -- resilience ---------------------------------------------------------------------------


def test_a_429_storm_is_survived(fake_twenty: Any, client: TwentyClient, ledger: Ledger) -> None:
    fake_twenty.fail_next(429, times=3)

    outcome = load(client, ledger, people(400))

    assert outcome.created == 400
    assert [r.status for r in fake_twenty.requests] == [429, 429, 429, 201, 201]
    assert outcome.requests == 5


def test_the_client_side_limiter_keeps_us_under_the_server_quota(fake_twenty: Any) -> None:
    fake_twenty.set_rate_limit(None, short_per_second=5)
    limiter = RateLimiter(240, burst=4)  # 4/s against the server's 5/s

    with connect(fake_twenty, limiter=limiter, max_attempts=1) as slow:
        for _ in range(8):
            slow.workspace_members()

    assert [r.status for r in fake_twenty.requests] == [200] * 8


def test_a_create_answered_with_a_server_error_is_read_back_before_it_is_sent_again(
    fake_twenty: Any, client: TwentyClient, ledger: Ledger
) -> None:
    fake_twenty.fail_next(503, times=2, path_contains="/rest/batch/people")

    outcome = load(client, ledger, people(10))

    assert outcome.created == 10
    # a 503 may come after the write (a proxy): the ids are looked for, active then soft-deleted
    assert [(r.method, r.status) for r in fake_twenty.requests] == [
        ("POST", 503), ("GET", 200), ("GET", 200), ("POST", 503), ("GET", 200), ("GET", 200), ("POST", 201)
    ]
    sent_ids = [r["id"] for r in sent(fake_twenty, "POST", "/rest/batch/people")[0].json]
    assert all(f"id[in]:[{','.join(sent_ids)}]" in r.query["filter"] for r in sent(fake_twenty, "GET", "/rest/people"))
    assert outcome.requests == 7


class ServerFailsFromBatch(Ledger):
    """Makes the fake fail every attempt at the nth create batch, so retries give up."""

    def __init__(self, url: str, fake: Any, batch: int, attempts: int) -> None:
        super().__init__(url)
        self.fake, self.batch, self.attempts, self.intents = fake, batch, attempts, 0

    def record_intent(self, run_key: str, object: str, intents: Any) -> None:
        super().record_intent(run_key, object, intents)
        self.intents += 1
        if self.intents == self.batch:
            self.fake.fail_next(500, times=self.attempts, path_contains="/rest/batch/people")


class CrashesAfterBatchLands(Ledger):
    """Dies right after the nth create batch landed in Twenty, before recording its outcome."""

    def __init__(self, url: str, batch: int) -> None:
        super().__init__(url)
        self.batch, self.outcomes = batch, 0

    def record_outcomes(self, run_key: str, object: str, rows: Any) -> None:
        if any(row.operation == "create" for row in rows):
            self.outcomes += 1
            if self.outcomes == self.batch:
                raise KeyboardInterrupt("killed")
        super().record_outcomes(run_key, object, rows)


def test_a_load_whose_retries_give_up_is_finished_by_a_rerun(
    fake_twenty: Any, client: TwentyClient, tmp_path: Path
) -> None:
    url = str(tmp_path / "ledger.sqlite")
    with ServerFailsFromBatch(url, fake_twenty, batch=3, attempts=4) as crashing:
        with pytest.raises(RetriesExhausted, match="HTTP 500"):
            load(client, crashing, people(1000))
    assert len(fake_twenty.records("people")) == 400
    fake_twenty.clear_requests()

    with Ledger(url) as ledger:
        outcome = load(client, ledger, people(1000))
        assert ledger.counts(RUN)["people"] == {"create": 1000, "unchanged": 400}

    assert (outcome.unchanged, outcome.created) == (400, 600)
    assert external_keys_in_twenty(fake_twenty) == Counter(f"allclients:contact:{n}" for n in range(1000))
    # only the interrupted batch is looked up, in bulk, by the ids its intent holds: active then
    # soft-deleted records, each split in two URL-sized chunks; never one request per record
    lookups = sent(fake_twenty, "GET", "/rest/people")
    assert len(lookups) == 4 and all("id[in]:[" in r.query["filter"] for r in lookups)
    assert outcome.requests == len(lookups) + 3


def test_a_load_killed_after_a_batch_landed_is_finished_by_a_rerun_without_duplicates(
    fake_twenty: Any, client: TwentyClient, tmp_path: Path
) -> None:
    url = str(tmp_path / "ledger.sqlite")
    with CrashesAfterBatchLands(url, batch=3) as crashing:
        with pytest.raises(KeyboardInterrupt):
            load(client, crashing, people(1000))
    assert len(fake_twenty.records("people")) == 600  # batch 3 landed, unrecorded
    fake_twenty.clear_requests()

    with Ledger(url) as ledger:
        outcome = load(client, ledger, people(1000))
        settled = [w for w in ledger.writes(RUN) if w["source_key"] == "allclients:contact:450"]

    assert (outcome.unchanged, outcome.created, outcome.updated) == (600, 400, 0)
    assert external_keys_in_twenty(fake_twenty) == Counter(f"allclients:contact:{n}" for n in range(1000))
    assert outcome.requests == 2 + 2  # a bulk lookup (two chunks) finds all 200; two create batches
    assert [(w["operation"], w["status"]) for w in settled] == [("create", "done"), ("unchanged", "done")]


# -- client contract ----------------------------------------------------------------------


def test_soft_delete_restore_and_destroy(fake_twenty: Any, client: TwentyClient) -> None:
    kept, doomed = client.create_batch(
        "people", [{"name": {"firstName": "Kept"}}, {"name": {"firstName": "Doomed"}}]
    )

    client.soft_delete("people", kept["id"])
    assert [p["id"] for p in fake_twenty.records("people")] == [doomed["id"]]
    assert [p["id"] for p in client.get_by_ids("people", [kept["id"]], include_deleted=True)] == [kept["id"]]

    client.restore("people", [kept["id"]])
    restore = sent(fake_twenty, "PATCH", "/rest/restore/people")
    assert [r.query["filter"] for r in restore] == [f"id[in]:[{kept['id']}]"]

    client.destroy("people", doomed["id"])
    assert [p["id"] for p in fake_twenty.records("people", include_deleted=True)] == [kept["id"]]


def test_listing_follows_cursor_pages(fake_twenty: Any, client: TwentyClient) -> None:
    for start in (0, 200, 400):
        client.create_batch("people", [r.payload for r in people(min(200, 450 - start), start)])
    fake_twenty.clear_requests()

    listed = list(client.list_records("people"))

    assert len({p["id"] for p in listed}) == 450
    assert [r.query.get("limit") for r in fake_twenty.requests] == ["200"] * 3


def test_bulk_lookups_are_chunked_to_keep_urls_short(fake_twenty: Any, client: TwentyClient) -> None:
    records = people(600)
    for start in range(0, 600, 200):
        client.create_batch("people", [r.payload for r in records[start : start + 200]])
    emails = [r.payload["emails"]["primaryEmail"] for r in records]
    fake_twenty.clear_requests()

    found = client.find_by_values("people", "emails.primaryEmail", emails)

    assert len(found) == 600
    urls = [f"{fake_twenty.base_url}{r.path}?{urlencode(r.query)}" for r in fake_twenty.requests]
    assert 1 < len(urls) <= 6
    assert all(len(url) < MAX_URL_BYTES for url in urls)


def test_workspace_members_are_listed(fake_twenty: Any, client: TwentyClient) -> None:
    fake_twenty.add_workspace_member("owner@example.test", "Olive", "Owner")

    emails = {m["userEmail"] for m in client.workspace_members()}

    assert emails == {"admin@example.com", "owner@example.test"}


# -- the API key stays secret -------------------------------------------------------------


def test_a_rejected_api_key_says_which_setting_to_fix_and_never_shows_the_key(fake_twenty: Any) -> None:
    wrong_key = "sk-WRONG-0123456789abcdef"

    with connect(fake_twenty, api_key=wrong_key) as wrong, pytest.raises(TwentyRequestError) as raised:
        wrong.workspace_members()

    assert raised.value.status == 401
    assert "TWENTY__API_KEY was rejected" in str(raised.value)
    assert wrong_key not in str(raised.value) and wrong_key not in repr(raised.value)
    assert wrong_key not in repr(wrong)


def test_errors_after_giving_up_never_show_the_key(fake_twenty: Any, client: TwentyClient) -> None:
    fake_twenty.fail_next(500, times=4)

    with pytest.raises(RetriesExhausted) as raised:
        client.workspace_members()

    assert fake_twenty.api_key not in str(raised.value)
    assert "GET /rest/workspaceMembers" in str(raised.value)


# -- metadata -----------------------------------------------------------------------------

SOURCE = SelectOption("WEB", "Web"), SelectOption("REFERRAL", "Referral")
SCHEMA = SchemaSpec(
    objects=(ObjectSpec("legacyDeal", "legacyDeals", "Legacy deal", "Legacy deals", "Imported deals"),),
    fields=(
        FieldSpec("person", EXTERNAL_KEY, "Migration key", "TEXT", is_unique=True),
        FieldSpec("person", "leadSource", "Lead source", "SELECT", options=SOURCE),
        FieldSpec("person", "accountOwner", "Account owner", "RELATION", relation_target="workspaceMember"),
        FieldSpec("legacyDeal", "externalCode", "External code", "TEXT", is_unique=True),
        FieldSpec("legacyDeal", "company", "Company", "RELATION", relation_target="company"),
    ),
)


def metadata_writes(fake: Any) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in fake.requests
        if r.path.startswith("/rest/metadata") and r.method != "GET"
    ]


def test_ensure_schema_creates_what_is_missing_once(fake_twenty: Any) -> None:
    with connect(fake_twenty) as client:
        first = ensure_schema(client, SCHEMA)
        fake_twenty.clear_requests()
        second = ensure_schema(client, SCHEMA)

        assert [i.name for i in first.created_objects] == ["legacyDeal"]
        assert [(i.object, i.name) for i in first.created_fields] == [
            ("person", EXTERNAL_KEY), ("person", "leadSource"), ("person", "accountOwner"),
            ("legacyDeal", "externalCode"), ("legacyDeal", "company"),
        ]
        assert not second.changed
        assert metadata_writes(fake_twenty) == []
        created_ids = {i.metadata_id for i in first.created_objects + first.created_fields}
        assert created_ids <= {i.metadata_id for i in second.already_present}
        # the new fields are usable at once
        deal = {"name": "Old deal", "externalCode": "D-1", "companyId": None}
        owner = client.workspace_members()[0]["id"]
        person = {"leadSource": "REFERRAL", EXTERNAL_KEY: "k", "accountOwnerId": owner}
        assert client.create_batch("legacyDeals", [deal])[0]["externalCode"] == "D-1"
        assert client.create_batch("people", [person])[0]["leadSource"] == "REFERRAL"


def test_ensure_schema_appends_missing_options_and_keeps_existing_ones(fake_twenty: Any) -> None:
    with connect(fake_twenty) as client:
        ensure_schema(client, SCHEMA)
        before = option_ids(client, "leadSource")
        more = SchemaSpec(fields=(FieldSpec("person", "leadSource", "Lead source", "SELECT",
                                            options=(*SOURCE, SelectOption("EVENT", "Event"))),))
        fake_twenty.clear_requests()

        report = ensure_schema(client, more)

        assert [(i.field, i.name) for i in report.added_options] == [("leadSource", "EVENT")]
        assert [m for m, _ in metadata_writes(fake_twenty)] == ["PATCH"]
        after = option_ids(client, "leadSource")
        assert {v: after[v] for v in before} == before and "EVENT" in after


def option_ids(client: TwentyClient, field: str) -> dict[str, str]:
    person = next(o for o in client.metadata_objects() if o["nameSingular"] == "person")
    options = next(f for f in person["fields"] if f["name"] == field)["options"]
    return {o["value"]: o["id"] for o in options}


def test_ensure_schema_refuses_an_incompatible_field_before_changing_anything(fake_twenty: Any) -> None:
    with connect(fake_twenty) as client:
        ensure_schema(client, PEOPLE_SCHEMA)
        fake_twenty.clear_requests()
        clash = SchemaSpec(fields=(
            FieldSpec("person", "legacyScore", "Legacy score", "NUMBER"),
            FieldSpec("person", EXTERNAL_KEY, "Migration key", "NUMBER"),
        ))

        with pytest.raises(SchemaError, match=f"person.{EXTERNAL_KEY} already exists as TEXT, not NUMBER"):
            ensure_schema(client, clash)

        assert metadata_writes(fake_twenty) == []


def test_ensure_schema_fails_when_the_read_back_lacks_what_was_created() -> None:
    def forgetful_metadata(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"data": [{"id": "p", "nameSingular": "person", "fields": []}]})
        return httpx.Response(201, json={"id": "f-1", "name": EXTERNAL_KEY, "type": "TEXT"})

    with TwentyClient("http://twenty.test", "k", timeout=httpx.Timeout(1.0),
                      transport=httpx.MockTransport(forgetful_metadata)) as client:
        with pytest.raises(SchemaError, match=f"still lacks: field person.{EXTERNAL_KEY}"):
            ensure_schema(client, PEOPLE_SCHEMA)


def test_drop_created_removes_exactly_what_ensure_schema_created(fake_twenty: Any, ledger: Ledger) -> None:
    with connect(fake_twenty) as client:
        ensure_schema(client, PEOPLE_SCHEMA)
        ensure_schema(client, SCHEMA, ledger.schema_journal(RUN))

        results = drop_created(client, ledger.schema_created(RUN))

        assert all(r.dropped for r in results) and len(results) == 5  # the object and 4 fields (2 go with it)

        objects = {o["nameSingular"]: o for o in client.metadata_objects()}
        assert "legacyDeal" not in objects
        person_fields = {f["name"] for f in objects["person"]["fields"]}
        assert EXTERNAL_KEY in person_fields  # existed before: left alone
        assert not {"leadSource", "accountOwner"} & person_fields


# -- the Dagster resource -----------------------------------------------------------------


def test_the_writer_refuses_batches_above_twentys_cap() -> None:
    with pytest.raises(pydantic.ValidationError, match="batch_size"):
        TwentyWriter(api_url="http://twenty.test", api_key="k", batch_size=201)


def test_the_writer_reads_its_key_from_the_environment_and_loads(
    fake_twenty: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWENTY__API_KEY", fake_twenty.api_key)
    with connect(fake_twenty) as setup:
        ensure_schema(setup, PEOPLE_SCHEMA)
    fake_twenty.clear_requests()

    @dg.asset
    def people_in_twenty(twenty: TwentyWriter) -> dict[str, int]:
        with Ledger(str(tmp_path / "ledger.sqlite")) as ledger:
            outcome = twenty.load_object(ledger, RUN, "people", people(250), external_key_field=EXTERNAL_KEY)
        return {"created": outcome.created, "requests": outcome.requests}

    writer = TwentyWriter(
        api_url=fake_twenty.base_url,
        api_key=dg.EnvVar("TWENTY__API_KEY"),
        batch_size=100,
        requests_per_minute=60_000,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
    )
    result = dg.materialize([people_in_twenty], resources={"twenty": writer})

    assert result.output_for_node("people_in_twenty") == {"created": 250, "requests": 3}
    assert [len(r.json) for r in fake_twenty.requests] == [100, 100, 50]


def test_junction_records_killed_after_landing_are_found_by_identity_not_created_twice(
    fake_twenty: Any, client: TwentyClient, tmp_path: Path
) -> None:
    """noteTargets carry no external key: a rerun finds the landed ones by noteId + targetPersonId."""
    person = client.create_batch("people", [{"name": {"firstName": "Target"}}])[0]
    notes = [note for start in (0, 200, 400) for note in client.create_batch(
        "notes", [{"title": f"Note {n}"} for n in range(start, min(start + 200, 450))])]
    targets = [
        LoadRecord(f"notes:{n}->people:1", {"noteId": note["id"], "targetPersonId": person["id"]})
        for n, note in enumerate(notes)
    ]

    def load_targets(ledger: Ledger) -> LoadOutcome:
        return load_object(client, ledger, RUN, "noteTargets", targets, external_key_field=None,
                           identity_fields=("noteId", "targetPersonId"))

    url = str(tmp_path / "ledger.sqlite")
    with CrashesAfterBatchLands(url, batch=2) as crashing, pytest.raises(KeyboardInterrupt):
        load_targets(crashing)
    assert len(fake_twenty.records("noteTargets")) == 400  # batch 2 landed, unrecorded

    with Ledger(url) as ledger:
        outcome = load_targets(ledger)
    assert (outcome.unchanged, outcome.created) == (400, 50)
    landed = Counter(t["noteId"] for t in fake_twenty.records("noteTargets"))
    assert len(landed) == 450 and max(landed.values()) == 1


def test_drop_created_never_deletes_a_morph_relation_target(fake_twenty: Any, ledger: Ledger) -> None:
    with connect(fake_twenty) as client:
        ensure_schema(client, SCHEMA, ledger.schema_journal(RUN))
        note_target = next(o for o in client.metadata_objects() if o["nameSingular"] == "noteTarget")
        morph = next(f for f in note_target["fields"] if f["name"] == "targetLegacyDeal")
        assert morph["type"] == "MORPH_RELATION"
        # A schema log row naming a morph target (as a hand-edited or foreign ledger could):
        row = ledger.record_schema_intent(RUN, "create", "field", "noteTarget", "targetLegacyDeal",
                                          metadata_id=morph["id"])
        ledger.record_schema_outcome(row, metadata_id=morph["id"])

        results = drop_created(client, ledger.schema_created(RUN))

        refused = [r for r in results if not r.dropped]
        assert [r.row["name"] for r in refused] == ["targetLegacyDeal"]
        assert "MORPH_RELATION" in (refused[0].failure or "")
        after = {f["name"] for o in client.metadata_objects() if o["nameSingular"] == "noteTarget" for f in o["fields"]}
        # The object went (and its morph target with it); the standard targets are all still there.
        assert {"targetPerson", "targetCompany", "targetOpportunity"} <= after and "targetLegacyDeal" not in after
