"""The `twenty` fixture: one contract test, two servers.

Every test in this package runs twice: against the in-repo fake Twenty (always) and against a
real Twenty server when `TWENTY_TEST_URL` and `TWENTY_TEST_API_KEY` are set (skipped otherwise).
Tests create only records and metadata whose names start with `twenty.prefix`, and register what
they create with `twenty.track_*`, so a shared real workspace is left as it was found.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from migration_pipeline_tests.fakes.twenty import FakeTwenty

REAL_URL_VAR, REAL_KEY_VAR = "TWENTY_TEST_URL", "TWENTY_TEST_API_KEY"


@dataclass
class TwentyUnderTest:
    kind: str  # "fake" or "real"
    base_url: str
    http: httpx.Client
    fake: FakeTwenty | None = None
    prefix: str = ""  # unique per test: "probe<8 hex>"
    _records: list[tuple[str, str]] = field(default_factory=list)
    _metadata: list[tuple[str, str]] = field(default_factory=list)

    def track_record(self, plural: str, record_id: str) -> str:
        """Destroy this record when the test ends."""
        self._records.append((plural, record_id))
        return record_id

    def track_field(self, field_id: str) -> str:
        self._metadata.append(("fields", field_id))
        return field_id

    def track_object(self, object_id: str) -> str:
        self._metadata.append(("objects", object_id))
        return object_id

    def object_id(self, singular: str) -> str:
        objects = self.http.get("/rest/metadata/objects").json()["data"]
        return next(o["id"] for o in objects if o["nameSingular"] == singular)

    def cleanup(self) -> None:
        for plural, record_id in reversed(self._records):
            self.http.delete(f"/rest/{plural}/{record_id}")
        for kind, metadata_id in reversed(self._metadata):
            self.http.delete(f"/rest/metadata/{kind}/{metadata_id}")


def _real_server() -> tuple[str, str] | None:
    url, key = os.environ.get(REAL_URL_VAR), os.environ.get(REAL_KEY_VAR)
    return (url.rstrip("/"), key) if url and key else None


@pytest.fixture(params=["fake", "real"])
def twenty(request: pytest.FixtureRequest) -> Iterator[TwentyUnderTest]:
    prefix = f"probe{uuid.uuid4().hex[:8]}"
    if request.param == "fake":
        fake: FakeTwenty = request.getfixturevalue("fake_twenty")
        base_url, api_key = fake.base_url, "test-key"
    else:
        real = _real_server()
        if real is None:
            pytest.skip(f"no real Twenty: set {REAL_URL_VAR} and {REAL_KEY_VAR} to run this side")
        (base_url, api_key), fake = real, None
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=httpx.Timeout(60.0)) as http:
        under_test = TwentyUnderTest(request.param, base_url, http, fake, prefix)
        try:
            yield under_test
        finally:
            under_test.cleanup()


def created(response: httpx.Response) -> dict[str, Any]:
    """The record of a 201 create answer, failing with the server's own words otherwise."""
    assert response.status_code == 201, response.text
    return next(iter(response.json()["data"].values()))
