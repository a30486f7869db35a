"""Workflows as Twenty 2.21 serves them, and our reading of the ones an import would set off.

Read-only: a shared real workspace's workflows are never changed (an API key could not
deactivate them anyway). A new workspace has the active "Create company when adding a new
person" workflow, triggered by person.upserted.
"""

from __future__ import annotations

import httpx

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.workflows import active_record_triggers
from migration_pipeline_tests.contract.conftest import TwentyUnderTest

SAMPLE = "Create company when adding a new person"


def _list(twenty: TwentyUnderTest, plural: str, **params: str) -> list[dict]:
    response = twenty.http.get(f"/rest/{plural}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"][plural]


def test_a_workflow_names_its_published_version_and_its_statuses(twenty: TwentyUnderTest) -> None:
    sample = next(w for w in _list(twenty, "workflows") if w["name"] == SAMPLE)

    assert sample["statuses"] == ["ACTIVE"]
    version = next(v for v in _list(twenty, "workflowVersions") if v["id"] == sample["lastPublishedVersionId"])
    assert version["workflowId"] == sample["id"]
    assert version["status"] == "ACTIVE"


def test_an_active_version_carries_a_database_event_trigger_with_its_event_name(twenty: TwentyUnderTest) -> None:
    active = _list(twenty, "workflowVersions", filter="status[eq]:ACTIVE")

    assert active and {v["status"] for v in active} == {"ACTIVE"}
    triggers = [v["trigger"] for v in active if v["trigger"]["type"] == "DATABASE_EVENT"]
    assert {"person.upserted"} <= {t["settings"]["eventName"] for t in triggers}
    sample = next(t for t in triggers if t["settings"]["eventName"] == "person.upserted")
    assert sample["settings"]["fields"] == ["emails"]


def test_the_workflows_a_migration_would_set_off_are_read_with_their_names(twenty: TwentyUnderTest) -> None:
    api_key = twenty.http.headers["Authorization"].removeprefix("Bearer ")
    with TwentyClient(twenty.base_url, api_key, timeout=httpx.Timeout(30.0)) as client:
        triggers = active_record_triggers(client)

    sample = next(t for t in triggers if t.workflow == SAMPLE)
    assert (sample.object, sample.action, sample.event) == ("person", "upserted", "person.upserted")
    assert sample.watched_fields == ("emails",)
    assert "Quick Lead" not in {t.workflow for t in triggers}  # a MANUAL trigger: no record event
