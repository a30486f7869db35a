"""Extract + stage throughput (no Twenty): rows/s and peak memory for a generated export.

    python benchmarks/stage_throughput.py --contacts 100000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from migration_pipeline.definitions import MAPPINGS_DIR
from migration_pipeline.engine.extract import read_mapped_object
from migration_pipeline.engine.mapping import load_mapping
from migration_pipeline.engine.staging import Stager
from migration_pipeline.schemas.registry import source_schema
from migration_pipeline.sources.allclients.generate import generate_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stage_bench_"))
    summary = generate_export(folder, rows=args.contacts, seed=1)
    mapping = load_mapping(MAPPINGS_DIR / "allclients__twenty.yaml")

    started = time.perf_counter()
    extracts = {
        name: read_mapped_object(folder, mapping, name, source_schema(mapping.slug, name)).frame
        for name in mapping.source.objects
    }
    read = time.perf_counter() - started
    stager = Stager(mapping, extracts, mapping.settings())
    staged = {obj: stager.stage(obj) for obj in stager.staged_objects()}
    total = time.perf_counter() - started

    source_rows = summary.contacts + summary.notes + summary.users
    records = sum(len(s.records) for s in staged.values())
    print(f"source rows: {source_rows} ({summary.contacts} contacts, {summary.notes} notes)")
    print(f"read CSV: {read:.1f} s; extract + stage: {total:.1f} s = {source_rows / total:.0f} source rows/s")
    print(f"staged records: {records} " + ", ".join(f"{o}={len(s.records)}" for o, s in staged.items()))
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
