"""The cost of exactly-once writes: a generated AllClients export migrated through Dagster into the
fake Twenty, once without faults and once with a share of the record requests failing (429, 503,
504 after the write, timeouts and dropped connections before or after it, seeded).

Prints, per fault rate: the records in Twenty, record requests per 1,000 records (reads and
writes, retries and read-backs included), the faults injected, records/s of the run, and whether
any record landed twice.

    PYTHONPATH=. python benchmarks/exactly_once.py --contacts 500 --rates 0 0.3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import dagster as dg

from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.sources.allclients.generate import generate_export
from migration_pipeline_tests.fakes.twenty import serve_fake_twenty
from migration_pipeline_tests.harness import run_migration

KEY_FIELD = "allclientsId"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=500)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.3])
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=0.5, help="client timeout; hanging faults sleep past it")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_once_"))
    generate_export(work / "export", rows=args.contacts, seed=1)
    print(f"{args.contacts} contacts, batch {args.batch}, client timeout {args.timeout}s")
    print(f"{'faults':>7} {'records':>8} {'req/1k rec':>11} {'writes/1k':>10} {'faults hit':>11} {'records/s':>10} {'dupes':>6}")
    with serve_fake_twenty(api_key="bench-key") as fake:
        for number, rate in enumerate(args.rates):
            fake.reset()
            writer = TwentyWriter(api_url=fake.base_url, api_key="bench-key", requests_per_minute=1_000_000,
                                  batch_size=args.batch, timeout_seconds=args.timeout, max_attempts=10,
                                  backoff_base_seconds=0.02, backoff_max_seconds=0.2)
            faults = fake.inject_faults(rate, seed=number, hang_seconds=args.timeout + 0.3) if rate else None
            started = time.perf_counter()
            run = run_migration(instance=dg.DagsterInstance.ephemeral(), fake=fake, export_dir=work / "export",
                                ledger_url=f"sqlite:///{work / f'ledger-{number}.sqlite'}",
                                output_dir=work / f"out-{number}", resources={"twenty": writer})
            seconds = time.perf_counter() - started
            if not run.success:
                raise SystemExit(f"the run at {rate:.0%} faults failed")
            fake.clear_failures()
            records = fake.snapshot()["records"]
            total = sum(len(rows) for plural, rows in records.items() if plural != "workspaceMembers")
            record_requests = [r for r in fake.requests
                               if r.path.startswith("/rest/") and not r.path.startswith("/rest/metadata")]
            writes = [r for r in record_requests if r.method != "GET"]
            dupes = sum(n - 1 for rows in records.values()
                        for n in Counter(r.get(KEY_FIELD) for r in rows.values() if r.get(KEY_FIELD)).values())
            hit = sum(faults.injected.values()) if faults else 0
            print(f"{rate:>7.0%} {total:>8} {1000 * len(record_requests) / total:>11.1f} "
                  f"{1000 * len(writes) / total:>10.1f} {hit:>11} {total / seconds:>10.0f} {dupes:>6}")


if __name__ == "__main__":
    main()
