"""The CLI's check that Twenty answers and accepts the API key, on both servers."""

from __future__ import annotations

import pytest

from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.engine.preflight import ServerUnreachable
from migration_pipeline_tests.contract.conftest import TwentyUnderTest


def test_the_preflight_passes_with_the_api_key_and_names_the_fix_without_it(twenty: TwentyUnderTest) -> None:
    api_key = twenty.http.headers["Authorization"].removeprefix("Bearer ")
    TwentyWriter(api_url=twenty.base_url, api_key=api_key).check_reachable(5.0)

    with pytest.raises(ServerUnreachable, match=r"refused TWENTY__API_KEY \(HTTP 401\)") as refused:
        TwentyWriter(api_url=twenty.base_url, api_key="not-a-key").check_reachable(5.0)
    assert "not-a-key" not in str(refused.value)
