"""The prepare step and `rollback --all --drop-schema` through Dagster, behind the fault proxy
with 30% faults on metadata writes (429, 503, answers lost after the write, dropped connections,
stalls past the client's timeout) and 10% on metadata reads: prepare finishes with exactly the
schema a fault-free prepare makes, every change ledgered as done, and the rollback leaves the
metadata as it was. Against the fake Twenty always, against a real one when TWENTY_TEST_URL and
TWENTY_TEST_API_KEY are set (it creates and drops the AllClients schema there: use a workspace
of your own). Record requests get no faults here: the record side has its own tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from migration_pipeline.destinations.twenty.client import TwentyClient
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.lifecycle.rollback_job import OP_NAME, rollback_job
from migration_pipeline.resources import LedgerStore
from migration_pipeline_tests.contract.conftest import REAL_KEY_VAR, REAL_URL_VAR
from migration_pipeline_tests.fakes.fault_proxy import FaultProxy, FaultRates, serve_fault_proxy
from migration_pipeline_tests.harness import run_migration

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data" / "allclients"
FAULTS = {"metadata_write": FaultRates.spread(0.30), "metadata_read": FaultRates.spread(0.10, "throttle", "unavailable")}


@dataclass(frozen=True)
class Target:
    base_url: str
    api_key: str
    timeout: float  # the client's; a stall outlasts it by half


@pytest.fixture(params=["fake", "real"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "fake":
        fake = request.getfixturevalue("fake_twenty")
        yield Target(fake.base_url, fake.api_key, timeout=2.0)
        return
    url, key = os.environ.get(REAL_URL_VAR), os.environ.get(REAL_KEY_VAR)
    if not (url and key):
        pytest.skip(f"no real Twenty: set {REAL_URL_VAR} and {REAL_KEY_VAR} to run this side")
    yield Target(url.rstrip("/"), key, timeout=20.0)  # a real Twenty takes seconds to add a field


def _writer(base_url: str, api_key: str, timeout: float) -> TwentyWriter:
    return TwentyWriter(api_url=base_url, api_key=api_key, requests_per_minute=6000, timeout_seconds=timeout,
                        backoff_base_seconds=0.05, backoff_max_seconds=0.5)


def _prepare(target: Target, base_url: str, tmp_path: Path, ledger: str, run_key: str, timeout: float) -> bool:
    run = run_migration(instance=dg.DagsterInstance.ephemeral(), fake=target, export_dir=SAMPLE_DATA,
                        run_key=run_key, ledger_url=ledger, output_dir=tmp_path / "out",
                        layers=("extract", "stage", "prepare"),
                        resources={"twenty": _writer(base_url, target.api_key, timeout)})
    return run.success


def _roll_back(target: Target, base_url: str, ledger: str, timeout: float) -> bool:
    return rollback_job.execute_in_process(
        run_config={"ops": {OP_NAME: {"config": {"all_runs": True, "drop_schema": True}}}},
        resources={"twenty": _writer(base_url, target.api_key, timeout), "ledger": LedgerStore(url=ledger)},
        raise_on_error=False,
    ).success


def _metadata(target: Target) -> dict[str, dict[str, Any]]:
    """nameSingular -> the object as Twenty lists it, minus what any write stamps (updatedAt)."""
    with TwentyClient(target.base_url, target.api_key, timeout=httpx.Timeout(60)) as client:
        objects = client.metadata_objects()
    return {o["nameSingular"]: {**_unstamped(o), "fields": sorted((_unstamped(f) for f in o["fields"]),
                                                                    key=lambda f: f["name"])} for o in objects}


def _unstamped(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "updatedAt"}


def _definitions(metadata: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What defines each object and field, without ids and times: what two prepares must agree on."""
    return {name: {f["name"]: (f["type"], f["label"], f.get("isUnique"), sorted(o["value"] for o in f.get("options") or []))
                   for f in o["fields"]} for name, o in metadata.items()}


def _ledger_statuses(ledger: str) -> list[tuple[str, str]]:
    with Ledger(ledger) as opened:
        return [(f"{r['kind']} {r['object']}.{r['name']}", r["status"]) for r in opened.schema_created()]


def test_prepare_and_rollback_through_30_percent_metadata_faults(target: Target, tmp_path: Path) -> None:
    before = _metadata(target)
    clean_ledger = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    assert _prepare(target, target.base_url, tmp_path, clean_ledger, "full-20261201T1000Z", target.timeout)
    expected = _definitions(_metadata(target))
    created = len(_ledger_statuses(clean_ledger))
    assert created and _roll_back(target, target.base_url, clean_ledger, target.timeout)
    assert _metadata(target) == before

    ledger = f"sqlite:///{tmp_path / 'faulty.sqlite'}"
    with serve_fault_proxy(target.base_url, FAULTS, seed=16, stall_seconds=1.5 * target.timeout) as proxy:
        prepared = _prepare(target, proxy.base_url, tmp_path, ledger, "full-20261202T1000Z", target.timeout)
        after_prepare = _metadata(target)
        statuses = _ledger_statuses(ledger)
        prepare_faults = proxy.faults("metadata_write")
        rolled_back = _roll_back(target, proxy.base_url, ledger, target.timeout)
        print("metadata faults:", dict(proxy.counts))

    assert prepared
    _assert_faults_happened(proxy, prepare_faults)
    assert _definitions(after_prepare) == expected  # exactly the schema a fault-free prepare makes
    assert len(statuses) == created and {status for _, status in statuses} == {"done"}
    assert rolled_back and _metadata(target) == before


def _assert_faults_happened(proxy: FaultProxy, during_prepare: dict[str, int]) -> None:
    writes = sum(n for (kind, _), n in proxy.counts.items() if kind == "metadata_write")
    faulted = sum(proxy.faults("metadata_write").values())
    assert faulted >= 0.15 * writes, proxy.counts
    assert sum(during_prepare.get(f, 0) for f in ("lost", "drop", "stall")) >= 2, during_prepare  # ambiguous ones
