"""The Actionstep connector against the fake Actionstep server, over real HTTP on loopback:
OAuth refresh and api_endpoint, 401 refresh-once, paging, every quirk normalised, 429
storms, resumable extraction, and credentials kept out of errors, logs and reprs.
Paginators and timestamp parsing are unit-tested at the end."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from migration_pipeline.engine.files import FileUnavailable
from migration_pipeline.engine.paginate import OffsetPaginator, PageInfo, PageNumberPaginator
from migration_pipeline.engine.retry import RetriesExhausted, RetryPolicy
from migration_pipeline.sources.actionstep.client import (
    ActionstepAuthError,
    ActionstepClient,
    ActionstepCredentials,
    ActionstepRequestError,
    ActionstepResponseError,
    CheckpointStore,
    JsonFileCheckpointStore,
    actionstep_source,
    normalise_date,
    normalise_timestamp,
    read_page,
    rest_base,
)
from migration_pipeline.sources.actionstep.generate import generate_dataset
from migration_pipeline.sources.actionstep.tokens import FileTokenStore, MemoryTokenStore
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, document_content, serve_fake_actionstep

UTC_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CALENDAR_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PARTICIPANTS = 401  # the default dataset: pages of 200, 200 and 1


@pytest.fixture(autouse=True)
def _no_actionstep_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ACTIONSTEP__"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def _fake_server() -> Iterator[FakeActionstep]:
    with serve_fake_actionstep() as fake:
        yield fake


@pytest.fixture
def fake(_fake_server: FakeActionstep) -> FakeActionstep:
    """Generated data, no requests, failures or tokens; tokens live an hour."""
    _fake_server.reset()
    _fake_server.access_token_ttl_seconds = 3600.0
    _fake_server.advertised_expires_in = None
    return _fake_server


def credentials(fake: FakeActionstep, **changes: str) -> ActionstepCredentials:
    values = {"client_id": fake.client_id, "client_secret": fake.client_secret,
              "refresh_token": fake.refresh_token, **changes}
    return ActionstepCredentials(**values)


def fast_retry(waits: list[float] | None = None, max_attempts: int = 6) -> RetryPolicy:
    """Real retry decisions and waits, recorded instead of slept."""
    return RetryPolicy(max_attempts=max_attempts, backoff_base_seconds=0.5, backoff_max_seconds=30.0,
                       sleep=(waits.append if waits is not None else lambda seconds: None))


_TOKENS: list[MemoryTokenStore] = [MemoryTokenStore()]


@pytest.fixture(autouse=True)
def _tokens_shared_within_a_test() -> None:
    """The clients of one test share their tokens, as the steps of one run do: Actionstep
    (and the fake) spend a refresh token when it is used."""
    _TOKENS[0] = MemoryTokenStore()


def make_client(fake: FakeActionstep, *, retry: RetryPolicy | None = None, store: CheckpointStore | None = None,
                log: Callable[[str], None] | None = None, read_timeout: float = 5.0, **options: Any) -> ActionstepClient:
    options.setdefault("tokens", _TOKENS[0])
    return ActionstepClient(
        options.pop("creds", None) or credentials(fake),
        timeout=httpx.Timeout(5.0, read=read_timeout),
        token_url=fake.token_url,
        retry=retry or fast_retry(),
        checkpoints=store,
        log=log,
        **options,
    )


def served_ids(fake: FakeActionstep, resource: str) -> list[str]:
    return [str(record["id"]) for record in fake.records(resource)]


# ---- OAuth ------------------------------------------------------------------------------------


def test_refresh_token_is_exchanged_and_the_api_base_is_api_endpoint_plus_rest(fake: FakeActionstep) -> None:
    with make_client(fake) as client:
        types = list(client.extract("participanttypes"))
        list(client.extract("actiontypes"))

    assert [t["name"] for t in types] == [r["name"] for r in fake.records("participanttypes")]
    (token_request,) = fake.token_requests()  # one token serves both calls
    assert token_request.form == {"grant_type": "refresh_token", "refresh_token": fake.refresh_token,
                                  "client_id": fake.client_id, "client_secret": fake.client_secret}
    api = fake.api_requests()
    assert [r.path for r in api] == [f"{fake.api_prefix}/rest/participanttypes", f"{fake.api_prefix}/rest/actiontypes"]
    assert all(r.headers["authorization"] == "Bearer fake-access-token-1" for r in api)
    assert all(r.headers["accept"] == "application/vnd.api+json" for r in api)
    assert not fake.api_prefix.startswith("/api")  # the token host's /api/rest would have been a 404


@pytest.mark.parametrize("endpoint", ["https://ap-southeast-2.actionstep.com/api", "https://ap-southeast-2.actionstep.com/api/",
                                      "https://ap-southeast-2.actionstep.com/api/rest"])
def test_rest_is_appended_to_api_endpoint_once(endpoint: str) -> None:
    assert rest_base(endpoint) == "https://ap-southeast-2.actionstep.com/api/rest"


def test_an_expired_token_is_refreshed_once_and_the_request_resent(fake: FakeActionstep) -> None:
    rotated: list[str] = []
    with make_client(fake, on_refresh_token=rotated.append) as client:
        list(client.extract("participanttypes"))
        fake.expire_access_tokens()
        participants = list(client.extract("participants"))

    assert len(participants) == PARTICIPANTS
    assert [r.status for r in fake.api_requests("participants")] == [401, 200, 200, 200]
    first, second = fake.token_requests()
    assert second.form["refresh_token"] == "fake-refresh-token-1"  # the rotated one
    assert rotated == ["fake-refresh-token-1", "fake-refresh-token-2"]
    assert fake.api_requests("participants")[1].headers["authorization"] == "Bearer fake-access-token-2"


def test_short_lived_tokens_expire_mid_extraction_and_are_refreshed(fake: FakeActionstep) -> None:
    fake.access_token_ttl_seconds = 0.3
    fake.advertised_expires_in = 3600  # the server claims an hour: only the 401 tells
    records = 0
    with make_client(fake) as client:
        for page in client.iter_pages("participants"):
            records += len(page.records)
            time.sleep(0.35)  # a slow consumer outlives the token

    assert records == PARTICIPANTS
    assert [r.status for r in fake.api_requests("participants")] == [200, 401, 200, 401, 200]
    assert len(fake.token_requests()) == 3


def test_a_second_401_stops_with_an_actionable_error(fake: FakeActionstep) -> None:
    fake.reject_access_tokens()
    with make_client(fake) as client, pytest.raises(ActionstepAuthError) as raised:
        list(client.extract("participants"))

    assert len(fake.token_requests()) == 2  # the first token, then exactly one refresh
    assert [r.status for r in fake.api_requests()] == [401, 401]
    assert "ACTIONSTEP__REFRESH_TOKEN" in str(raised.value)


def test_a_used_refresh_token_is_refused_as_actionstep_rotates_them(fake: FakeActionstep) -> None:
    with make_client(fake, tokens=MemoryTokenStore()) as first:
        first.get("participanttypes")
    with make_client(fake, tokens=MemoryTokenStore()) as second, pytest.raises(ActionstepAuthError) as refused:
        second.get("participanttypes")  # a second process that shares nothing reuses the spent token

    assert [r.status for r in fake.token_requests()] == [200, 400]
    assert "refused the refresh token in ACTIONSTEP__REFRESH_TOKEN" in str(refused.value)


def test_processes_sharing_the_token_file_ask_for_one_token_per_run_and_keep_the_rotated_one(
    fake: FakeActionstep, tmp_path: Path
) -> None:
    path = tmp_path / "home" / "actionstep_tokens.json"
    for step in ("participanttypes", "actiontypes", "participants"):  # three steps, each its own store object
        with make_client(fake, tokens=FileTokenStore(path), run_key="full-20261122T1000Z") as client:
            list(client.extract(step))
    (first,) = fake.token_requests()
    assert first.form["refresh_token"] == fake.refresh_token
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    with make_client(fake, tokens=FileTokenStore(path), run_key="full-20261123T1000Z") as next_run:
        list(next_run.extract("participanttypes"))
    assert [r.form["refresh_token"] for r in fake.token_requests()] == [fake.refresh_token, "fake-refresh-token-1"]
    assert all(r.status == 200 for r in fake.token_requests())

    reauthorised = fake.authorise_again()  # ACTIONSTEP__REFRESH_TOKEN changed: it wins over the kept one
    with make_client(fake, creds=credentials(fake, refresh_token=reauthorised), tokens=FileTokenStore(path),
                     run_key="full-20261124T1000Z") as client:
        client.get("participanttypes")
    assert fake.token_requests()[-1].form["refresh_token"] == reauthorised


# ---- paging and quirks ------------------------------------------------------------------------


def test_pages_to_the_end_with_page_size_200(fake: FakeActionstep) -> None:
    with make_client(fake) as client:
        records = list(client.extract("participants"))
        served = fake.served_pages("participants")
        last_page = client.get("participants", {"page": "3", "pageSize": "200"})

    assert [r["id"] for r in records] == served_ids(fake, "participants")
    assert served == [1, 2, 3]
    assert {r.query["pageSize"] for r in fake.api_requests("participants")} == {"200"}
    assert last_page is not None and isinstance(last_page["participants"], dict)  # the single-object quirk
    assert last_page["meta"]["paging"]["participants"]["nextPage"] is None


def test_one_record_served_as_an_object_is_one_record(fake: FakeActionstep) -> None:
    composite = fake.records("actionparticipants")[5]["id"]
    with make_client(fake) as client:
        by_filter = list(client.extract("actions", params={"id": "70002"}))
        by_route = client.fetch("actionparticipants", composite)

    assert [r["id"] for r in by_filter] == ["70002"]
    assert by_route is not None and by_route["id"] == composite
    assert fake.api_requests("actionparticipants/" + composite)[0].status == 200


def test_http_204_is_an_empty_result_and_a_finished_extraction(fake: FakeActionstep) -> None:
    with make_client(fake) as client:
        frames = client.extract_frames("tasks", params={"status": "Archived"})
        again = list(client.extract("tasks", params={"status": "Archived"}))

    assert frames.records.empty and frames.linked == {} and again == []
    assert [r.status for r in fake.api_requests("tasks")] == [204]  # the rerun asked nothing


def test_linked_side_loads_become_deduplicated_frames(fake: FakeActionstep) -> None:
    with make_client(fake, page_size=25) as client:
        frames = client.extract_frames("actions", include=["actionType", "assignedTo"])

    assert fake.served_pages("actions") == [1, 2, 3]
    assert fake.api_requests("actions")[0].query["include"] == "actionType,assignedTo"
    action_types = frames.linked["actiontypes"]
    assert sorted(action_types["id"]) == ["31", "32", "33"]
    assert set(action_types["isDisabled"]) == {"false"}
    staff = frames.linked["participants"]
    assigned = {str(a["links"]["assignedTo"]) for a in fake.records("actions")}
    assert sorted(staff["id"]) == sorted(assigned)  # each once, although on several pages


def test_every_value_is_a_string_or_none_and_names_are_kept_exactly(fake: FakeActionstep) -> None:
    with make_client(fake) as client:
        frames = {name: client.extract_frames(name).records for name in
                  ("participants", "actions", "datacollectionrecordvalues", "tasks", "filenotes")}

    for name, frame in frames.items():
        assert len(frame) == len(fake.records(name))
        for column in frame.columns:
            assert all(v is None or isinstance(v, str) for v in frame[column]), (name, column)
        raw_names = {key for record in fake.records(name) for key in record if key != "links"}
        assert raw_names <= set(frame.columns), name
    assert "last_modified_time_stamp" in frames["datacollectionrecordvalues"].columns  # snake_case, as served
    assert "links.primaryParticipants" in frames["actions"].columns


def test_t_f_flags_become_booleans_but_other_f_values_stay(fake: FakeActionstep) -> None:
    raw = {str(r["id"]): r for r in fake.records("participants")}
    with make_client(fake) as client:
        people = list(client.extract("participants"))

    for person in people:
        source = raw[person["id"]]
        assert person["isCompany"] == {"T": "true", "F": "false"}[source["isCompany"]]
        assert person["gender"] == source["gender"]  # "F" is female, not false
    assert {p["gender"] for p in people} >= {"M", "F"}
    assert sum(p["isCompany"] == "true" for p in people) == fake.dataset.summary.companies


def test_ids_as_ints_or_strings_and_composite_ids(fake: FakeActionstep) -> None:
    raw_actions = fake.records("actions")
    assert {type(a["id"]) for a in raw_actions} == {int, str}
    assert {type(a["links"]["assignedTo"]) for a in raw_actions} == {int, str}
    with make_client(fake) as client:
        actions = list(client.extract("actions"))
        roles = list(client.extract("actionparticipants"))
        values = list(client.extract("datacollectionrecordvalues"))

    assert [a["id"] for a in actions] == [str(a["id"]) for a in raw_actions]
    assert [a["links.assignedTo"] for a in actions] == [str(a["links"]["assignedTo"]) for a in raw_actions]
    assert [a["links.primaryParticipants"] for a in actions] == [
        ",".join(str(p) for p in a["links"]["primaryParticipants"]) for a in raw_actions]
    assert all(a["links.step"] == f"{a['links.step.actionType']}--{a['links.step.stepNumber']}" for a in actions)
    for role in roles:
        assert role["id"] == f"{role['id.action']}--{role['id.participantType']}--{role['id.participant']}"
        assert (role["id.action"], role["id.participant"]) == (role["links.action"], role["links.participant"])
    for value in values:
        assert value["id"] == f"{value['id.dataCollection']}--{value['id.fieldName']}--{value['id.dataCollectionRecord']}"
        assert value["links.dataCollectionField.fieldName"] == value["id.fieldName"]


def test_timestamps_in_mixed_formats_become_utc(fake: FakeActionstep) -> None:
    raw = {str(a["id"]): a for a in fake.records("actions")}
    with make_client(fake) as client:
        actions = list(client.extract("actions"))
        people = list(client.extract("participants"))

    def same_instant(normalised: str, source: str) -> bool:
        assert UTC_INSTANT.match(normalised), normalised
        return datetime.fromisoformat(normalised) == datetime.fromisoformat(source).astimezone(timezone.utc)

    formats_seen, bare_dates = set(), 0
    for action in actions:
        source = raw[action["id"]]
        for name in ("modifiedTimestamp", "statusTimestamp"):
            formats_seen.add("space" if " " in source[name] else "Z" if source[name].endswith("Z") else "offset")
            assert same_instant(action[name], source[name]), (name, source[name], action[name])
        if CALENDAR_DATE.match(source["createdTimestamp"]):
            bare_dates += 1
            assert action["createdTimestamp"] == source["createdTimestamp"]  # a day, not shifted to UTC
        else:
            assert same_instant(action["createdTimestamp"], source["createdTimestamp"])
    assert formats_seen == {"space", "Z", "offset"} and bare_dates > 0
    births = {p["id"]: p["birthTimestamp"] for p in people if p["birthTimestamp"]}
    raw_births = {str(p["id"]): p["birthTimestamp"] for p in fake.records("participants") if p["birthTimestamp"]}
    assert births == {pid: datetime.strptime(value, "%d-%b-%Y").date().isoformat() for pid, value in raw_births.items()}
    assert len(births) == fake.dataset.summary.birth_dates


@pytest.mark.parametrize(("value", "expected"), [
    ("2019-08-15T10:23:57+10:00", "2019-08-15T00:23:57.000Z"),
    ("2022-05-03 00:09:00+12:00", "2022-05-02T12:09:00.000Z"),
    ("2022-05-03T00:10:30.250+12:00", "2022-05-02T12:10:30.250Z"),
    ("2022-05-03T00:09:00Z", "2022-05-03T00:09:00.000Z"),
    ("2019-08-15", "2019-08-15"),  # a bare date names a day, not an instant
    ("not a date", "not a date"),  # left for the schema check to report
])
def test_timestamp_formats(value: str, expected: str) -> None:
    assert normalise_timestamp(value) == expected


def test_offsetless_timestamps_are_read_in_the_account_zone_and_dates_stay_dates() -> None:
    from zoneinfo import ZoneInfo

    assert normalise_timestamp("2022-05-03 09:00:00", ZoneInfo("Australia/Sydney")) == "2022-05-02T23:00:00.000Z"
    assert normalise_date("23-May-1987") == "1987-05-23"
    assert normalise_date("1987-05-23T00:00:00+12:00") == "1987-05-23"


def test_names_are_case_sensitive(fake: FakeActionstep) -> None:
    with make_client(fake) as client:
        with pytest.raises(ActionstepRequestError) as wrong_resource:
            client.get("Participants")
        with pytest.raises(ActionstepRequestError) as wrong_param:
            client.get("participants", {"pagesize": "200"})

    assert wrong_resource.value.status == 404 and "case-sensitive" in str(wrong_resource.value)
    assert wrong_param.value.status == 400 and "pagesize" in str(wrong_param.value)
    with pytest.raises(ActionstepResponseError, match="found 'Participants'"):
        read_page("participants", {"Participants": []})


# ---- rate limits, failures and resume --------------------------------------------------------


def test_a_429_storm_is_survived_honouring_retry_after(fake: FakeActionstep) -> None:
    fake.fail_next(429, times=3, path_contains="page=2&", retry_after="7")
    fake.fail_next(429, times=2, path_contains="page=3&")  # no Retry-After: exponential backoff
    waits: list[float] = []
    with make_client(fake, retry=fast_retry(waits)) as client:
        records = list(client.extract("participants"))

    assert len(records) == PARTICIPANTS
    assert [r.status for r in fake.api_requests("participants")] == [200, 429, 429, 429, 200, 429, 429, 200]
    assert waits[:3] == [7.0, 7.0, 7.0]
    assert len(waits) == 5 and 0 <= waits[3] <= 1.0 and 0 <= waits[4] <= 2.0  # full jitter, base 0.5 doubling


def test_retry_after_is_really_waited(fake: FakeActionstep) -> None:
    fake.fail_next(429, times=1, path_contains="participanttypes", retry_after="1")
    with make_client(fake, retry=RetryPolicy(max_attempts=3)) as client:
        assert len(list(client.extract("participanttypes"))) == 6

    limited, served = fake.api_requests("participanttypes")
    assert (limited.status, served.status) == (429, 200)
    assert served.at - limited.at >= 1.0


def test_server_errors_and_slow_answers_are_retried(fake: FakeActionstep) -> None:
    fake.fail_next(500, times=2, path_contains="page=1&")
    fake.fail_next(200, times=1, path_contains="page=2&", delay_seconds=1.0)  # slower than the timeout
    log: list[str] = []
    retry = RetryPolicy(max_attempts=4, backoff_base_seconds=0.01, backoff_max_seconds=0.05, log=log.append)
    with make_client(fake, retry=retry, read_timeout=0.3) as client:
        assert len(list(client.extract("participants"))) == PARTICIPANTS

    assert [r.query["page"] for r in fake.api_requests("participants")] == ["1", "1", "1", "2", "2", "3"]
    assert sum("HTTP 500" in line for line in log) == 2 and sum("timed out" in line for line in log) == 1


def test_a_give_up_mid_extraction_resumes_from_the_last_completed_page(fake: FakeActionstep, tmp_path: Path) -> None:
    fake.fail_next(500, times=100, path_contains="page=3&")
    before: list[str] = []
    with make_client(fake, retry=fast_retry(max_attempts=3), store=JsonFileCheckpointStore(tmp_path),
                     page_size=150) as client, pytest.raises(RetriesExhausted):
        before.extend(r["id"] for r in client.extract("participants"))
    assert len(before) == 300 and fake.served_pages("participants") == [1, 2]

    fake.clear_failures()
    fake.clear_requests()
    with make_client(fake, store=JsonFileCheckpointStore(tmp_path), page_size=150) as restarted:
        after = [r["id"] for r in restarted.extract("participants")]

    assert after == served_ids(fake, "participants")  # complete, in order, nothing twice
    assert fake.served_pages("participants") == [3]  # pages 1 and 2 were not served again
    fake.clear_requests()
    with make_client(fake, store=JsonFileCheckpointStore(tmp_path), page_size=150) as finished:
        assert len(list(finished.extract("participants"))) == PARTICIPANTS
    assert fake.requests == []  # a finished extraction needs no token and no page
    with make_client(fake, store=JsonFileCheckpointStore(tmp_path), page_size=200) as resized:
        assert len(list(resized.extract("participants"))) == PARTICIPANTS
    assert fake.served_pages("participants") == [1, 2, 3]  # page 3 of 200 is not page 3 of 150


def test_a_crash_while_consuming_a_page_resumes_after_that_page(fake: FakeActionstep, tmp_path: Path) -> None:
    seen = 0
    with make_client(fake, store=JsonFileCheckpointStore(tmp_path)) as client, pytest.raises(KeyboardInterrupt):
        for _ in client.extract("participants"):
            seen += 1
            if seen == 250:  # in the middle of page 2: it was saved before its records were handed out
                raise KeyboardInterrupt
    fake.clear_requests()
    with make_client(fake, store=JsonFileCheckpointStore(tmp_path)) as restarted:
        pages = list(restarted.iter_pages("participants"))

    assert [(p.position, p.replayed) for p in pages] == [("1", True), ("2", True), ("3", False)]
    assert [r["id"] for p in pages for r in p.records] == served_ids(fake, "participants")
    assert fake.served_pages("participants") == [3]


# ---- credentials ------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[list[str]]:
    """Everything logged anywhere (httpx and httpcore debug included) during the test."""
    handler, root = _Collect(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_credentials_never_appear_in_errors_logs_or_reprs(fake: FakeActionstep, all_logs: list[str]) -> None:
    secrets = (fake.client_id, fake.client_secret, fake.refresh_token, "fake-refresh-token-1", "fake-access-token")
    own_log: list[str] = []
    texts: list[str] = []

    creds = credentials(fake)
    texts += [repr(creds), str(creds)]
    fake.fail_next(429, times=1, path_contains="participanttypes")
    with make_client(fake, log=own_log.append, retry=RetryPolicy(max_attempts=3, backoff_base_seconds=0.01,
                                                                 log=own_log.append)) as client:
        list(client.extract("participanttypes"))
        fake.expire_access_tokens()
        list(client.extract("actiontypes"))
        texts.append(repr(client))
        fake.reject_access_tokens()
        with pytest.raises(ActionstepAuthError) as rejected:
            list(client.extract("participants"))
        texts.append(str(rejected.value))
    fake.reject_access_tokens(False)

    for wrong in ({"refresh_token": "stale-refresh-token-9"}, {"client_secret": "wrong-secret-value"}):
        with make_client(fake, creds=credentials(fake, **wrong), tokens=MemoryTokenStore()) as client, \
                pytest.raises(ActionstepAuthError) as refused:
            client.get("participants")
        texts.append(str(refused.value))
        assert next(iter(wrong.values())) not in str(refused.value)  # redacted, although the fake echoes it
    fake.fail_next(500, times=10, path_contains="oauth")
    with make_client(fake, retry=fast_retry(max_attempts=2), tokens=MemoryTokenStore()) as client, \
            pytest.raises(RetriesExhausted) as gave_up:
        client.get("participants")
    texts.append(str(gave_up.value))

    assert "ACTIONSTEP__REFRESH_TOKEN" in texts[-3] and "ACTIONSTEP__CLIENT_SECRET" in texts[-2]
    assert own_log and all_logs  # something was logged, and none of it leaks
    for text in [*texts, *own_log, *all_logs]:
        for secret in secrets:
            assert secret not in text, (secret, text)


def test_the_dagster_resource_reads_credentials_from_the_environment(
    fake: FakeActionstep, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ACTIONSTEP__CLIENT_ID", fake.client_id)
    monkeypatch.setenv("ACTIONSTEP__CLIENT_SECRET", fake.client_secret)
    monkeypatch.setenv("ACTIONSTEP__REFRESH_TOKEN", fake.refresh_token)
    source = actionstep_source(token_url=fake.token_url, checkpoint_dir=str(tmp_path), timeout_seconds=5.0)
    assert source.client_secret == dg.EnvVar("ACTIONSTEP__CLIENT_SECRET")  # a reference until a run starts
    with dg.build_resources({"actionstep": source}) as resources:
        with resources.actionstep.open_client() as client:
            types = list(client.extract("participanttypes"))
        shown = repr(resources.actionstep)

    assert len(types) == 6 and fake.token_requests()[0].form["client_secret"] == fake.client_secret
    assert fake.client_secret not in shown and fake.refresh_token not in shown and fake.client_id not in shown
    assert list(tmp_path.iterdir())  # pages were checkpointed in the configured folder


# ---- document files -------------------------------------------------------------------------


def _document(fake: FakeActionstep, *, larger_than: int = 0) -> dict[str, Any]:
    return next(d for d in fake.records("actiondocuments") if larger_than < d["fileSize"] < 25 * 1024 * 1024)


def test_a_document_is_downloaded_part_by_part_and_is_exactly_its_file_size(fake: FakeActionstep) -> None:
    fake.file_part_bytes = 50_000
    document = _document(fake, larger_than=120_000)  # three parts or more
    with make_client(fake, file_part_bytes=50_000) as client:
        content = client.download_file(document["file"], document["fileSize"])

    assert len(content) == document["fileSize"] and content == document_content(document)
    parts = fake.file_requests(document["file"])
    assert [r.query["part_number"] for r in parts] == [str(n) for n in range(1, -(-document["fileSize"] // 50_000) + 1)]
    assert all(r.status == 200 and r.headers["authorization"].startswith("Bearer ") for r in parts)


def test_without_a_declared_size_parts_are_read_until_a_short_one(fake: FakeActionstep) -> None:
    fake.file_part_bytes = 50_000
    document = _document(fake, larger_than=120_000)
    with make_client(fake, file_part_bytes=50_000) as client:
        assert client.download_file(document["file"], None) == document_content(document)


def test_a_file_download_retries_server_errors_and_refreshes_an_expired_token(fake: FakeActionstep) -> None:
    fake.file_part_bytes = 50_000
    document = _document(fake, larger_than=60_000)
    with make_client(fake, file_part_bytes=50_000) as client:
        list(client.extract("participanttypes"))  # a token is in use
        fake.expire_access_tokens()
        fake.fail_next(503, times=2, path_contains="part_number=2")
        content = client.download_file(document["file"], document["fileSize"])

    assert content == document_content(document)
    assert [(r.query["part_number"], r.status) for r in fake.file_requests(document["file"])][:5] == [
        ("1", 401), ("1", 200), ("2", 503), ("2", 503), ("2", 200)]
    assert len(fake.token_requests()) == 2


def test_a_missing_file_or_a_size_mismatch_is_unavailable_not_a_crash(fake: FakeActionstep) -> None:
    document = _document(fake)
    with make_client(fake) as client:
        with pytest.raises(FileUnavailable, match="HTTP 404"):
            client.download_file("DL::Actions::1::404", 10)
        with pytest.raises(FileUnavailable, match=f"served {document['fileSize']} bytes .* fileSize says 7"):
            client.download_file(document["file"], 7)
        fake.reject_access_tokens()
        with pytest.raises(ActionstepAuthError):  # not a problem of this one file: the run stops
            client.download_file(document["file"], document["fileSize"])


# ---- paginators (unit) ------------------------------------------------------------------------


def test_page_number_paginator_follows_the_metadata_and_resumes() -> None:
    pages = PageNumberPaginator(page_size=200)
    first = pages.first_params()
    assert first == {"page": "1", "pageSize": "200"}
    assert pages.next_params({**first, "include": "x"}, PageInfo(200, total_pages=3)) == {
        "page": "2", "pageSize": "200", "include": "x"}
    assert pages.next_params({"page": "3"}, PageInfo(1, total_pages=3)) is None
    assert pages.next_params({"page": "1"}, PageInfo(200, total_pages=1, has_next=True)) == {"page": "2", "pageSize": "200"}
    assert pages.next_params({"page": "2"}, PageInfo(200, has_next=False)) is None
    assert pages.next_params({"page": "2"}, PageInfo(0)) is None  # HTTP 204
    assert pages.next_params({"page": "2"}, PageInfo(150)) is None  # no metadata: a short page ends it
    assert pages.position({"page": "2"}, PageInfo(200)) == "2"
    assert pages.first_params(resume_after="2") == {"page": "3", "pageSize": "200"}


def test_offset_paginator_advances_by_records_received_and_resumes() -> None:
    offsets = OffsetPaginator(limit=100)
    first = offsets.first_params()
    assert first == {"offset": "0", "limit": "100"}
    assert offsets.next_params(first, PageInfo(100)) == {"offset": "100", "limit": "100"}
    assert offsets.next_params({"offset": "200"}, PageInfo(100, total_records=300)) is None
    assert offsets.next_params({"offset": "200"}, PageInfo(40)) is None
    assert offsets.position({"offset": "100"}, PageInfo(100)) == "200"
    assert offsets.first_params(resume_after="200") == {"offset": "200", "limit": "100"}
    with pytest.raises(ValueError):
        PageNumberPaginator(page_size=0)


# ---- generator ----------------------------------------------------------------------------------


def test_the_generator_is_deterministic_and_plants_every_messy_case() -> None:
    dataset = generate_dataset(seed=11)
    assert dataset.resources == generate_dataset(seed=11).resources
    assert dataset.resources != generate_dataset(seed=12).resources
    summary, resources = dataset.summary, dataset.resources

    assert summary.records == {name: len(rows) for name, rows in resources.items()}
    assert summary.participants_without_email == sum(not p["email"] for p in resources["participants"]) > 0
    assert summary.companies == sum(p["isCompany"] == "T" for p in resources["participants"]) > 0
    assert set(summary.timestamp_formats) == {"iso_offset", "space_offset", "utc_z", "millis_offset", "date_only"}
    assert set(summary.data_types) >= {"Str255", "TextArea", "Number", "Money", "Date", "DateTime", "DropDown",
                                       "DropDownMulti", "Boolean"}
    parents = {str(r["links"]["fromContact"]): str(r["links"]["toContact"])
               for r in resources["contactrelationships"] if r["relationship"] == "Parent Company"}
    start = str(summary.circular_parent_chain[0])
    walk = [start]
    while parents[walk[-1]] != start:
        walk.append(parents[walk[-1]])
    assert walk == [str(c) for c in summary.circular_parent_chain]  # a cycle through the three companies
    dropdowns = {c["links"]["dataField"] for c in resources["datacollectionfielddropdownchoices"]}
    assert dropdowns == {f["id"] for f in resources["datacollectionfields"] if f["dataType"].startswith("DropDown")}
    assert summary.multi_record_collections == sum(c["multipleRecords"] == "T" for c in resources["datacollections"]) > 0
