"""Small helpers of the record contract modules: create tracked probe records, read answers."""

from __future__ import annotations

from typing import Any

import httpx

from migration_pipeline_tests.contract.conftest import TwentyUnderTest


def batch_create(twenty: TwentyUnderTest, plural: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create `bodies` in one batch request; each record is destroyed when the test ends."""
    response = twenty.http.post(f"/rest/batch/{plural}", json=bodies)
    assert response.status_code == 201, response.text
    records = data_of(response)
    for record in records:
        twenty.track_record(plural, record["id"])
    return records


def companies(twenty: TwentyUnderTest, *names: str) -> dict[str, str]:
    """Companies named `<prefix> <name>`; returns their ids by the short name."""
    records = batch_create(twenty, "companies", [{"name": f"{twenty.prefix} {name}"} for name in names])
    return {name: record["id"] for name, record in zip(names, records, strict=True)}


def data_of(response: httpx.Response) -> Any:
    """The one value under `data` (`people`, `createPeople`, `deleteCompanies` ...)."""
    body = response.json()
    assert isinstance(body, dict) and "data" in body, f"HTTP {response.status_code}: {response.text[:500]}"
    return next(iter(body["data"].values()))


def listed(twenty: TwentyUnderTest, plural: str, filter_: str, **params: Any) -> httpx.Response:
    return twenty.http.get(f"/rest/{plural}", params={"filter": filter_, **params})


def company_names(twenty: TwentyUnderTest, response: httpx.Response) -> list[str]:
    """Short names (prefix removed) of the companies in a list answer, sorted; fails on an error."""
    assert response.status_code == 200, response.text
    return sorted(c["name"].removeprefix(f"{twenty.prefix} ") for c in data_of(response))


def messages(response: httpx.Response) -> list[str]:
    return response.json()["messages"]
