"""The real-server suite: whole migrations against a Twenty, opt-in.

Set `TWENTY_TEST_URL` and `TWENTY_TEST_API_KEY` (an Admin API key of a workspace you can spare:
the suite migrates and rolls back whole sources there) to run the `real` side; it is skipped
otherwise. The `fake` side runs the same lifecycle against the in-repo fake Twenty, so the suite
itself is proven wherever the tests run. Measurements go to `TWENTY_TEST_REPORT` (default
`migration_output/real_twenty/measurements.json`) and are printed at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from migration_pipeline_tests.real_twenty.measurements import Measurements

REAL_URL_VAR, REAL_KEY_VAR = "TWENTY_TEST_URL", "TWENTY_TEST_API_KEY"
RPM_VAR = "TWENTY_TEST_REQUESTS_PER_MINUTE"  # the client's limit against the real server
DEFAULT_REAL_RPM = 100  # Twenty's self-hosted default; raise it for a server with raised limits
_MEASURED = Measurements()


@dataclass
class Twenty:
    kind: str  # "fake" or "real"
    base_url: str
    api_key: str = field(repr=False)  # never in a failure message
    requests_per_minute: int

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.api_key}"},
                            timeout=httpx.Timeout(120.0))


# Read when the module is imported: the autouse fixture of the parent conftest clears TWENTY__*
# variables for each test, but not these.
_REAL = (os.environ.get(REAL_URL_VAR, "").rstrip("/"), os.environ.get(REAL_KEY_VAR, ""),
         int(os.environ.get(RPM_VAR) or DEFAULT_REAL_RPM))


@pytest.fixture(params=["fake", "real"])
def twenty(request: pytest.FixtureRequest) -> Iterator[Twenty]:
    if request.param == "fake":
        fake = request.getfixturevalue("fake_twenty")
        yield Twenty("fake", fake.base_url, fake.api_key, 6000)
        return
    url, key, rpm = _REAL
    if not (url and key):
        pytest.skip(f"no real Twenty: set {REAL_URL_VAR} and {REAL_KEY_VAR} to run this side")
    yield Twenty("real", url, key, rpm)


@pytest.fixture(scope="session")
def measurements() -> Measurements:
    return _MEASURED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _MEASURED.phases:
        return
    path = _MEASURED.write()
    terminalreporter.section("real Twenty suite: seconds per phase, records/s of the loads")
    for line in _MEASURED.table():
        terminalreporter.write_line(line)
    for note in _MEASURED.notes:
        terminalreporter.write_line(note)
    terminalreporter.write_line(f"(written to {path})")
