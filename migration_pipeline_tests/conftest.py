from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from migration_pipeline_tests.fakes.twenty import FakeTwenty, serve_fake_twenty

FAKE_TWENTY_API_KEY = "test-key"
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
ENV_PREFIXES = ("TWENTY__", "MIGRATION__", "ALLCLIENTS__", "ACTIONSTEP__", "DAGSTER_HOME", "DAGSTER_PG_URL")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's credentials or settings: tests pass offline, without secrets."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Callable[[], str]]:
    """Makes fresh PostgreSQL databases with random names (dropped after the session) and
    returns their URLs. `.ci/run` starts PostgreSQL when the machine has none running."""
    server = sa.create_engine(POSTGRES_SERVER.replace("postgresql://", "postgresql+psycopg2://"),
                              isolation_level="AUTOCOMMIT")
    try:
        with server.connect():
            pass
    except sa.exc.OperationalError as error:
        server.dispose()
        pytest.skip(f"no PostgreSQL answers at {POSTGRES_SERVER} ({error.orig}); .ci/run starts one")
    created: list[str] = []

    def create() -> str:
        name = f"migration_test_{uuid.uuid4().hex[:12]}"
        with server.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}"

    yield create
    with server.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture(scope="session")
def _fake_twenty_server() -> Iterator[FakeTwenty]:
    with serve_fake_twenty(api_key=FAKE_TWENTY_API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_twenty(_fake_twenty_server: FakeTwenty) -> Iterator[FakeTwenty]:
    """The fake Twenty server on loopback, started once per session; every test gets an empty
    workspace, no recorded requests, no injected failures and no rate limit."""
    _fake_twenty_server.reset()
    _fake_twenty_server.set_rate_limit(None)
    yield _fake_twenty_server
