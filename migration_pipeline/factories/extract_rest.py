"""Mapping -> the extract assets of a REST source (`source.kind: rest`): one per source object,
each reading its resource page by page through the source's client resource.

The client resource (for Actionstep: `ActionstepSource`, resource key `actionstep_source`)
owns auth, paging, retries, resumable checkpoints and the API's quirks; this factory only asks
it for a resource's frames and hands the extract layer what it expects: a frame of strings or
None, side-loaded (`include`) records joined onto their rows as `<link>.<field>` columns, and
the same non-blocking pandera `schema` check as a file extract.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
from collections.abc import Callable, Mapping as MappingOf, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from dagster import AssetExecutionContext

from migration_pipeline.engine.mapping import Mapping, RestObject
from migration_pipeline.engine.unreadable import (
    METADATA_KEY,
    UNREADABLE_STATUSES,
    SourceRequestError,
    UnreadableResource,
)
from migration_pipeline.factories.checks import schema_check_result, validate
from migration_pipeline.factories.run_conditions import run_settings, settings_metadata
from migration_pipeline.partitions import migration_run
from migration_pipeline.schemas.registry import source_schema


class ResourceFramesLike(Protocol):
    records: pd.DataFrame
    linked: dict[str, pd.DataFrame]  # resource type -> side-loaded records


class RestClient(Protocol):
    def extract_frames(self, resource: str, params: MappingOf[str, str] | None = None,
                       include: Sequence[str] = ()) -> ResourceFramesLike: ...


class RestSource(Protocol):
    """What a REST source's Dagster resource offers the extract assets."""

    def open_client(self, log: Callable[[str], None] | None = None, run_key: str = "",
                    timezone: str = "") -> AbstractContextManager[RestClient]:
        """`timezone`: the run's stated zone of source times that carry no offset."""
        ...


def rest_resource_key(mapping: Mapping) -> str:
    """The resource key of a REST source's client: `source.resource`, else `<slug>_source`."""
    return mapping.source.resource or f"{mapping.slug}_source"


def build_rest_extract_asset(mapping: Mapping, source_object: str) -> dg.AssetsDefinition:
    slug = mapping.slug
    spec = mapping.source.objects[source_object]
    assert isinstance(spec, RestObject), f"{slug}/{source_object} is not a REST resource"
    asset_key = dg.AssetKey([slug, "extract", source_object])
    schema = source_schema(slug, source_object)
    resource_key = rest_resource_key(mapping)
    includes = f" (with {', '.join(spec.include)})" if spec.include else ""

    @dg.asset(
        key=asset_key,
        description=f"{mapping.source.label} `{spec.path}`{includes}: {spec.description}".strip(": "),
        required_resource_keys={resource_key, "migration_settings"},
        check_specs=[dg.AssetCheckSpec("schema", asset=asset_key, description=schema.__doc__)],
        kinds={"pandas", "api"},
        group_name=slug,
        partitions_def=migration_run,
    )
    def _extract(context: AssetExecutionContext):
        source: RestSource = getattr(context.resources, resource_key)
        stated = run_settings(context, mapping)
        unreadable: UnreadableResource | None = None
        try:
            with source.open_client(log=context.log.info, run_key=context.partition_key,
                                    timezone=stated.values.get("timezone", "")) as client:
                frames = client.extract_frames(spec.path, include=list(spec.include))
            records, linked = frames.records, frames.linked
        except SourceRequestError as refused:
            if refused.status not in UNREADABLE_STATUSES:
                raise
            if spec.required:
                raise dg.Failure(description=refused_message(mapping, source_object, refused)) from None
            unreadable = UnreadableResource(source_object, spec.path, refused.status, str(refused))
            context.log.warning(f"{spec.path} is not readable (HTTP {refused.status}); {source_object} is "
                                f"declared `required: false`: read as empty, the run goes on and reports it")
            records, linked = pd.DataFrame(), {}
        frame = conform(join_included(records, linked, spec.include), schema, f"{spec.path}")
        validation = validate(schema, frame)
        yield dg.Output(frame, metadata={
            "rows": len(frame),
            "resource": spec.path,
            "included": dg.MetadataValue.json({kind: len(rows) for kind, rows in linked.items()}),
            **settings_metadata(stated),
            **({METADATA_KEY: dg.MetadataValue.json(unreadable.as_metadata())} if unreadable else {}),
        })
        # A warning, not an error: messy values are expected and handled row by row at stage.
        yield schema_check_result(validation, len(frame), severity=dg.AssetCheckSeverity.WARN)

    return _extract


def refused_message(mapping: Mapping, source_object: str, refused: SourceRequestError) -> str:
    """Why a required resource stops the run, and the two ways out."""
    spec = mapping.source.objects[source_object]
    needed_by = sorted({obj.name for obj in mapping.objects if obj.from_ == source_object})
    feeds = f" (it feeds {', '.join(needed_by)})" if needed_by else ""
    grant = ("grant the API user read access to it" if refused.status == 403
             else "check that the resource exists for this account")
    return (f"{mapping.source.label} refused `{spec.path}` with HTTP {refused.status}, and the run needs it"
            f"{feeds}: {grant}, then rerun. If the migration can do without it, declare `required: false` on "
            f"source.objects.{source_object} in mappings/{mapping.slug}__twenty.yaml. Source said: {refused}")


def join_included(records: pd.DataFrame, linked: MappingOf[str, pd.DataFrame],
                  include: MappingOf[str, str]) -> pd.DataFrame:
    """Each side-loaded record's fields (not its own links) joined onto the rows that link to
    it, as `<link>.<field>`; a link holding several ids gets their values comma-joined."""
    frame = records.copy()
    for link, kind in include.items():
        related = linked.get(kind)
        column = f"links.{link}"
        if related is None or related.empty or column not in frame:
            continue
        by_id = {str(row["id"]): row for row in related.to_dict("records") if row.get("id") is not None}
        fields = [f for f in related.columns if not f.startswith("links.")]

        def joined(ids: Any, field: str) -> str | None:
            values = [by_id[i].get(field) for i in str(ids).split(",") if i in by_id] if ids is not None else []
            return ",".join(str(v) for v in values if v is not None) or None

        for field in fields:
            frame[f"{link}.{field}"] = pd.Series([joined(ids, field) for ids in frame[column]],
                                                 index=frame.index, dtype=object)
    return frame


def conform(frame: pd.DataFrame, schema: type[pa.DataFrameModel], resource: str) -> pd.DataFrame:
    """An empty answer (HTTP 204) has no columns: give it the schema's. Records that lack a
    column the schema requires stop the run with a message naming what was found."""
    required = [name for name, column in schema.to_schema().columns.items() if column.required]
    missing = [name for name in required if name not in frame.columns]
    if missing and len(frame):
        raise dg.Failure(description=(
            f"{resource}: the API's records lack {', '.join(missing)} (names are case-sensitive); "
            f"found: {', '.join(map(str, frame.columns))}"
        ))
    for name in missing:
        frame[name] = pd.Series(dtype=object)
    return frame.astype(object)


__all__ = ["build_rest_extract_asset", "rest_resource_key", "join_included", "refused_message", "RestSource"]
