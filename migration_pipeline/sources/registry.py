"""The client resource of each REST source (`source.kind: rest`), by slug.

Each resource offers `open_client(log, run_key)` (see `factories.extract_rest.RestSource`) and,
for the source's delta sensor, `newest_modification(since)` (`lifecycle.delta_poll.ModifiedSince`).
Credentials are `dg.EnvVar`s resolved when a run starts: building a resource reads nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from migration_pipeline.sources.actionstep.client import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_REFRESH_TOKEN,
    ENV_TOKEN_URL,
    actionstep_source,
)

REST_SOURCES: dict[str, Callable[[], dg.ConfigurableResource]] = {
    "actionstep": actionstep_source,
}
# Environment variables each REST source's resource reads at launch: (required, optional).
REST_SOURCE_ENV: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "actionstep": ((ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_REFRESH_TOKEN), (ENV_TOKEN_URL,)),
}


def missing_credentials(slug: str, environ: dict[str, str]) -> str | None:
    """A message naming the variables a REST source needs and `environ` lacks, else None.
    Names only: values are never read into the message."""
    required, optional = REST_SOURCE_ENV.get(slug, ((), ()))
    missing = [name for name in required if not environ.get(name)]
    if not missing:
        return None
    extra = f" (optional: {', '.join(optional)})" if optional else ""
    return f"the {slug} API credentials are not set: set {', '.join(missing)}{extra}"


def rest_source_resource(slug: str) -> dg.ConfigurableResource:
    try:
        return REST_SOURCES[slug]()
    except KeyError:
        raise KeyError(f"no client resource for the REST source {slug!r}: add it to sources/registry.py") from None
