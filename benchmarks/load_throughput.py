"""Load throughput of the Twenty writer against the fake Twenty, rate limited like a real one.

Generates an AllClients export, stages it with the real mapping and loads companies, people,
notes and note targets through the ledgered loader over loopback HTTP. Prints records/s, write
requests per 1,000 records, records/s as a fraction of the bound (requests/min x batch cap / 60),
and peak memory. A second pass reruns the same load to show what an idempotent rerun costs.

    python benchmarks/load_throughput.py --contacts 2000 --rpm 100
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.destinations.twenty.loader import LoadRecord, load_object
from migration_pipeline.destinations.twenty.metadata import ensure_schema
from migration_pipeline.destinations.twenty.resource import TwentyWriter, _workspace_limiter
from migration_pipeline.engine.extract import read_mapped_object
from migration_pipeline.engine.mapping import load_mapping
from migration_pipeline.engine.payloads import staged_payloads
from migration_pipeline.engine.schema_needs import schema_spec
from migration_pipeline.engine.staging import Stager
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.schemas.registry import source_schema
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.fakes.twenty import serve_fake_twenty

WRITE_METHODS = {"POST", "PATCH", "DELETE"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=2000, help="contacts in the generated export")
    parser.add_argument("--rpm", type=int, default=100, help="requests/minute: server limit and client cap")
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_"))
    mapping = load_mapping(MAPPINGS_DIR / "allclients__twenty.yaml")
    generate_export(work / "export", rows=args.contacts, seed=1)
    extracts = {
        name: read_mapped_object(work / "export", mapping, name, source_schema("allclients", name)).frame
        for name in mapping.source.objects
    }
    stager = Stager(mapping, extracts, mapping.settings())
    staged = [stager.stage(obj) for obj in stager.staged_objects()]
    print(f"staged {sum(len(s.records) for s in staged)} records from {args.contacts} contacts")

    with serve_fake_twenty(api_key="bench-key", rate_limit_per_minute=args.rpm) as fake:
        writer = TwentyWriter(api_url=fake.base_url, api_key="bench-key", requests_per_minute=args.rpm,
                              batch_size=args.batch)
        with writer.client() as client:
            ensure_schema(client, schema_spec(staged, mapping))
        # Start from an empty client bucket, so the figures are the steady state, not the
        # initial burst of `rpm` requests that a fresh bucket allows.
        limiter = _workspace_limiter(writer.api_url, writer.requests_per_minute)
        for _ in range(limiter.burst):
            limiter.acquire()
        with Ledger(f"sqlite:///{work / 'ledger.sqlite'}") as ledger:
            for label, run_key in (("first load", "full-20261122T1000Z"), ("rerun", "full-20261122T1000Z")):
                fake.clear_requests()
                started = time.perf_counter()
                records = _load_all(writer, ledger, mapping, staged, run_key)
                elapsed = time.perf_counter() - started
                writes = sum(1 for r in fake.requests if r.method in WRITE_METHODS and "/metadata" not in r.path)
                total = sum(1 for r in fake.requests)
                _report(label, records, elapsed, writes, total, args)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process): {peak_mib:.0f} MiB")


def _load_all(writer: TwentyWriter, ledger: Ledger, mapping, staged, run_key: str) -> int:
    loaded = 0
    with writer.client() as client:
        for obj in staged:
            # No members given: owners are left out, which a throughput measure does not need.
            payloads = staged_payloads(obj, mapping, ledger, {}, "").records
            external_key = None if not obj.custom_fields else mapping.defaults.external_key_field
            outcome = load_object(client, ledger, run_key, obj.plural, [LoadRecord(k, p) for k, p in payloads],
                                  external_key_field=external_key,
                                  natural_keys=mapping.catalogue[obj.twenty_object].unique_fields,
                                  batch_size=writer.batch_size)
            loaded += outcome.created + outcome.updated + outcome.unchanged
    return loaded


def _report(label: str, records: int, elapsed: float, writes: int, total: int, args: argparse.Namespace) -> None:
    bound = args.rpm * args.batch / 60
    rate = records / elapsed if elapsed else float("inf")
    print(
        f"{label}: {records} records in {elapsed:.1f} s = {rate:.0f} records/s; "
        f"write requests per 1,000 records: {1000 * writes / max(records, 1):.2f} "
        f"(all requests: {1000 * total / max(records, 1):.2f}); "
        f"bound {bound:.0f} records/s -> {rate / bound:.2f} of the bound"
    )


if __name__ == "__main__":
    main()
