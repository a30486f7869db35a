"""The client resource of each REST source (`source.kind: rest`), by slug.

Each resource offers `open_client(log, run_key)` (see `factories.extract_rest.RestSource`) and,
for the source's delta sensor, `newest_modification(since)` (`lifecycle.delta_poll.ModifiedSince`).
Credentials are `dg.EnvVar`s resolved when a run starts: building a resource reads nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from migration_pipeline.sources.actionstep.client import actionstep_source

REST_SOURCES: dict[str, Callable[[], dg.ConfigurableResource]] = {
    "actionstep": actionstep_source,
}


def rest_source_resource(slug: str) -> dg.ConfigurableResource:
    try:
        return REST_SOURCES[slug]()
    except KeyError:
        raise KeyError(f"no client resource for the REST source {slug!r}: add it to sources/registry.py") from None
