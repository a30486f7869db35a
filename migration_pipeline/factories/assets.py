"""Mapping -> Dagster assets: extract (per source object), stage and load (per Twenty object),
the schema pre-creation step, the dry-run load plan and the run report.

Load dependencies are derived from the relations the mapping declares, which yields Twenty's
import order (Companies -> People -> Notes -> note targets, attachments) without hand wiring.
"""


from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
import pandas as pd

from migration_pipeline.destinations.twenty.attachments import AttachmentOutcome, SourceFile, load_attachments
from migration_pipeline.destinations.twenty.loader import LoadOutcome, LoadRecord, load_object
from migration_pipeline.destinations.twenty.metadata import ensure_schema
from migration_pipeline.destinations.twenty.objects import ATTACHMENT, JUNCTIONS, is_target_junction
from migration_pipeline.destinations.twenty.resource import TwentyWriter
from migration_pipeline.destinations.twenty.workflows import (
    WorkflowWarning,
    active_record_triggers,
    planned_writes,
    warnings_for,
)
from migration_pipeline.engine.cycles import describe
from migration_pipeline.engine.extract import read_mapped_object
from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.payloads import PayloadBatch, staged_payloads
from migration_pipeline.engine.sampling import sample_extracts
from migration_pipeline.engine.schema_needs import schema_spec
from migration_pipeline.engine.self_links import self_link_columns, split_self_links, without_keys
from migration_pipeline.engine.staging import FILE_REFERENCE, FILE_SIZE, KEY, Stager, StagedObject, import_order
from migration_pipeline.factories.checks import schema_check_result, validate
from migration_pipeline.factories.extract_rest import rest_resource_key
from migration_pipeline.factories.run_conditions import run_settings, settings_metadata, unreadable_resources
from migration_pipeline.lifecycle.delta import report_deleted_in_source
from migration_pipeline.lifecycle.sample_gate import enforce_sample_gate
from migration_pipeline.partitions import migration_run, run_kind
from migration_pipeline.reports.run_conditions import write_run_conditions
from migration_pipeline.reports.run_report import LoadSummary, write_load_plan, write_run_report
from migration_pipeline.resources import MigrationSettings, SourceFiles
from migration_pipeline.schemas.registry import source_schema
from migration_pipeline.schemas.twenty import stage_schema


def key(slug: str, layer: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([slug, layer, name])


def files_resource_key(slug: str) -> str:
    return f"{slug}_files"


def _settings_keys(mapping: Mapping) -> set[str]:
    """Resources a step needs to state the run's settings: a file source's folder may hold them."""
    return {"migration_settings"} | ({files_resource_key(mapping.slug)} if mapping.source.kind == "files" else set())


def _source_folder(context: AssetExecutionContext, mapping: Mapping) -> Path | None:
    if mapping.source.kind != "files":
        return None
    return getattr(context.resources, files_resource_key(mapping.slug)).folder()


def _write_conditions(context: AssetExecutionContext, mapping: Mapping, folder: Path) -> dict[str, Any]:
    """The run's stated settings and the resources it could not read, into its report folder."""
    stated = run_settings(context, mapping, _source_folder(context, mapping))
    return write_run_conditions(folder, unreadable_resources(context, mapping), stated.stated)


def staged_objects(mapping: Mapping) -> list[str]:
    """Every Twenty object the mapping can produce (whatever the run's settings), import order."""
    return import_order(mapping.objects, mapping.catalogue)


def load_dependencies(mapping: Mapping, twenty_object: str) -> set[str]:
    """Twenty objects that must be loaded before `twenty_object`, from declared relations."""
    by_name = {obj.name: obj for obj in mapping.objects}
    deps: set[str] = set()
    for obj in mapping.objects:
        # A note/task waits for its targets too: loaded before them it would be an orphan.
        related = [*obj.relations.values(), *obj.targets.values()]
        if obj.twenty_object == twenty_object:
            deps |= {by_name[rel.object].twenty_object for rel in related}
        if obj.targets and JUNCTIONS[obj.twenty_object][0] == twenty_object:
            deps.add(obj.twenty_object)
            deps |= {by_name[rel.object].twenty_object for rel in obj.targets.values()}
        if obj.attachment is not None and twenty_object == ATTACHMENT:
            deps.add(obj.twenty_object)
    deps.discard(twenty_object)
    return deps


def build_source_assets(mapping: Mapping) -> list[dg.AssetsDefinition]:
    slug = mapping.slug
    objects = staged_objects(mapping)
    if mapping.source.kind == "rest":  # an API source: read through its client resource
        from migration_pipeline.factories.extract_rest import build_rest_extract_asset
        assets = [build_rest_extract_asset(mapping, name) for name in mapping.source.objects]
    else:
        assets = [_extract_asset(mapping, name) for name in mapping.source.objects]
    assets += [_stage_asset(mapping, obj) for obj in objects]
    assets.append(_schema_asset(mapping, objects))
    assets += [_load_asset(mapping, obj) for obj in objects]
    assets.append(_plan_asset(mapping, objects))
    assets.append(_report_asset(mapping, objects))
    if mapping.has_rebuild_package:  # what Twenty cannot hold: exported as files instead
        from migration_pipeline.factories.rebuild import build_rebuild_package_asset
        assets.append(build_rebuild_package_asset(mapping))
    assert len({a.key for a in assets}) == len(assets), f"duplicate asset keys in {slug}"
    return assets


def _common(mapping: Mapping) -> dict[str, Any]:
    return {"group_name": mapping.slug, "partitions_def": migration_run}


# --- extract ---------------------------------------------------------------------------------


def _extract_asset(mapping: Mapping, source_object: str) -> dg.AssetsDefinition:
    slug = mapping.slug
    spec = mapping.source.objects[source_object]
    asset_key = key(slug, "extract", source_object)
    schema = source_schema(slug, source_object)

    @dg.asset(
        key=asset_key,
        description=f"{mapping.source.label} {spec.file}: {spec.description}".strip(": "),
        required_resource_keys={files_resource_key(slug), "migration_settings"},
        check_specs=[dg.AssetCheckSpec("schema", asset=asset_key, description=schema.__doc__)],
        kinds={"pandas", "csv"},
        **_common(mapping),
    )
    def _extract(context: AssetExecutionContext):
        files: SourceFiles = getattr(context.resources, files_resource_key(slug))
        stated = run_settings(context, mapping, files.folder())  # unstated time zone: stop before reading
        read = read_mapped_object(files.folder(), mapping, source_object, schema)
        for warning in read.warnings:
            context.log.warning(warning)
        frame = read.frame
        validation = validate(schema, frame)
        warnings = {"warnings": dg.MetadataValue.json(read.warnings)} if read.warnings else {}
        yield dg.Output(frame, metadata={"rows": len(frame), "file": str(files.folder() / spec.file),
                                         "encoding": read.encoding, "delimiter": read.delimiter, **warnings,
                                         **settings_metadata(stated)})
        # A warning, not an error: messy values are expected and handled row by row at stage.
        yield schema_check_result(validation, len(frame), severity=dg.AssetCheckSeverity.WARN, warnings=read.warnings)

    return _extract


# --- stage -----------------------------------------------------------------------------------


def _stage_asset(mapping: Mapping, twenty_object: str) -> dg.AssetsDefinition:
    slug = mapping.slug
    asset_key = key(slug, "stage", twenty_object)
    schema = stage_schema(twenty_object)
    ins = {name: dg.AssetIn(key=key(slug, "extract", name)) for name in mapping.migrated_source_objects}
    checks = [dg.AssetCheckSpec("schema", asset=asset_key, blocking=True, description=schema.__doc__)]
    links_within = any(rel.object == obj.name for obj in mapping.objects if obj.twenty_object == twenty_object
                       for rel in obj.relations.values())
    if links_within:
        checks.append(dg.AssetCheckSpec(
            "no_circular_references", asset=asset_key,
            description="No record is its own ancestor through a relation to its own object (a parent "
            "company chain A -> B -> A); the records of such a chain are loaded unlinked and listed"))

    @dg.asset(
        key=asset_key,
        ins=ins,
        description=f"{mapping.catalogue[twenty_object].label} in Twenty's shape, invalid rows quarantined",
        required_resource_keys=_settings_keys(mapping),
        check_specs=checks,
        kinds={"pandas"},
        **_common(mapping),
    )
    def _stage(context: AssetExecutionContext, **extracts: pd.DataFrame):
        settings: MigrationSettings = context.resources.migration_settings
        values = run_settings(context, mapping, _source_folder(context, mapping)).values
        if run_kind(context.partition_key) == "sample":  # a representative, related slice of the export
            # Fields, select options and who keeps a shared unique value (a company domain) are
            # decided over the whole export: the sample and its full run create the same schema
            # and give a shared value to the same record, whichever rows the slice holds.
            whole = Stager(mapping, extracts, values)
            custom_fields = whole.stage(twenty_object).custom_fields
            sliced = sample_extracts(mapping, extracts, values, settings.sample_size).extracts
            staged = Stager(mapping, sliced, values, owners=whole.unique_owners(twenty_object)).stage(twenty_object)
            staged.custom_fields = custom_fields
        else:
            staged = Stager(mapping, extracts, values).stage(twenty_object)
        validation = validate(schema, staged.records)
        staged = _quarantine_invalid(staged, validation.failed_rows)
        final = validate(schema, staged.records)
        yield dg.Output(staged, metadata=_stage_metadata(staged))
        yield schema_check_result(
            final,
            sum(staged.input_rows.values()),
            quarantined=len(staged.quarantined),
            max_quarantine_ratio=mapping.defaults.max_quarantine_ratio,
        )
        if links_within:
            yield dg.AssetCheckResult(
                check_name="no_circular_references",
                passed=not staged.cycles,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"cycles": len(staged.cycles),
                          "chains": dg.MetadataValue.json([describe(c) for c in staged.cycles[:50]])},
            )

    return _stage


def _quarantine_invalid(staged: StagedObject, failed_rows: dict[object, str]) -> StagedObject:
    if not failed_rows:
        return staged
    bad = staged.records.loc[list(failed_rows)]
    moved = bad[["object", "source_object", "source_row", "source_key"]].assign(
        reason=[failed_rows[i] for i in bad.index]
    )
    staged.records = staged.records.drop(index=list(failed_rows)).reset_index(drop=True)
    staged.quarantined = pd.concat([staged.quarantined, moved], ignore_index=True)
    return staged


def _stage_metadata(staged: StagedObject) -> dict[str, Any]:
    return {
        "records": len(staged.records),
        "quarantined": len(staged.quarantined),
        "excluded": len(staged.excluded),
        "field_issues": len(staged.field_issues),
        "source_rows": dg.MetadataValue.json(staged.input_rows),
        "preview": dg.MetadataValue.md(staged.records.head(5).astype(str).to_markdown(index=False)),
    }


# --- schema pre-creation -----------------------------------------------------------------------


def _schema_asset(mapping: Mapping, objects: list[str]) -> dg.AssetsDefinition:
    slug = mapping.slug
    ins = {obj: dg.AssetIn(key=key(slug, "stage", obj)) for obj in objects}

    asset_key = key(slug, "prepare", "twenty_schema")

    @dg.asset(
        key=asset_key,
        ins=ins,
        description="Custom fields, select options and objects the mapping needs, created in Twenty "
        "through the metadata API before any record moves (idempotent, read back to verify); "
        "active workflows the load would set off are listed",
        required_resource_keys={"twenty", "ledger", "migration_settings"},
        check_specs=[dg.AssetCheckSpec(WORKFLOWS_CHECK, asset=asset_key, description=WORKFLOWS_CHECK_DOC)],
        kinds={"twenty"},
        **_common(mapping),
    )
    def _prepare(context: AssetExecutionContext, **staged: StagedObject):
        writer: TwentyWriter = context.resources.twenty
        settings: MigrationSettings = context.resources.migration_settings
        run_key = context.partition_key
        with context.resources.ledger.open(source=slug) as ledger:
            gate = enforce_sample_gate(ledger, slug, run_key, skip=settings.skip_sample_gate)
            ledger.start_run(run_key, slug, run_kind(run_key), {"mapping_version": mapping.version})
            with writer.client() as client:
                # each change is in the ledger as it happens, so a rollback can undo a failed attempt
                report = ensure_schema(client, schema_spec(list(staged.values()), mapping),
                                       ledger.schema_journal(run_key))
                workflows = warnings_for(active_record_triggers(client), planned_writes(ledger, staged.values()))
        for skipped in report.skipped:
            context.log.warning(f"field {skipped.object}.{skipped.name} ({skipped.type}) skipped: {skipped.reason}")
        for warning in workflows:
            context.log.warning(warning.message())
        _write_workflow_warnings(settings.output_folder(run_key, slug) / "report", workflows)
        yield dg.Output(
            report,
            metadata={
                "sample_gate": gate,
                "created_objects": len(report.created_objects),
                "created_fields": len(report.created_fields),
                "added_options": len(report.added_options),
                "already_present": len(report.already_present),
                "ours_from_earlier_runs": len(report.ours_from_earlier),
                "skipped_fields": dg.MetadataValue.json([f"{s.object}.{s.name}: {s.reason}" for s in report.skipped]),
                "report": dg.MetadataValue.json(report.to_dict()),
                **writer.limits.as_metadata(),
                "workflows_triggered": len(workflows),
                WORKFLOW_WARNINGS: dg.MetadataValue.json([w.to_dict() for w in workflows]),
            },
        )
        yield dg.AssetCheckResult(
            check_name=WORKFLOWS_CHECK, passed=not workflows, severity=dg.AssetCheckSeverity.WARN,
            metadata={"workflows": dg.MetadataValue.json([w.to_dict() for w in workflows])},
        )

    return _prepare


WORKFLOWS_CHECK = "no_active_workflows"
WORKFLOWS_CHECK_DOC = ("No active Twenty workflow is triggered by the records this run creates or updates "
                       "(each would run once per record); a warning names each one, how many records set it "
                       "off and how to pause it")
WORKFLOW_WARNINGS = "workflow_warnings"
WORKFLOWS_FILE = "workflows_triggered.csv"


def _write_workflow_warnings(folder: Path, warnings: list[WorkflowWarning]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["workflow", "workflow_id", "event", "watched_fields", "creates", "updates", "message"]
    pd.DataFrame([w.to_dict() for w in warnings], columns=columns).to_csv(folder / WORKFLOWS_FILE, index=False)


# --- load ------------------------------------------------------------------------------------


def _load_asset(mapping: Mapping, twenty_object: str) -> dg.AssetsDefinition:
    slug = mapping.slug
    asset_key = key(slug, "load", twenty_object)
    deps = [key(slug, "prepare", "twenty_schema")]
    deps += [key(slug, "load", dep) for dep in sorted(load_dependencies(mapping, twenty_object))]
    is_junction = is_target_junction(twenty_object)
    twenty = mapping.catalogue[twenty_object]
    # Attachments download their files through the source's client resource.
    files_from = rest_resource_key(mapping) if twenty_object == ATTACHMENT else None

    @dg.asset(
        key=asset_key,
        ins={"staged": dg.AssetIn(key=key(slug, "stage", twenty_object))},
        deps=deps,
        description=f"{twenty.label} written to Twenty through the ledger"
        + (" (each file downloaded from the source and uploaded)" if files_from else ""),
        required_resource_keys={"twenty", "ledger", "migration_settings"} | ({files_from} if files_from else set()),
        check_specs=[dg.AssetCheckSpec("rows_reconcile", asset=asset_key,
                                       description="created + updated + unchanged + rejected == staged; "
                                       "source rows == loaded + quarantined + excluded")]
        + ([dg.AssetCheckSpec(FILES_CHECK, asset=asset_key, description="Twenty accepted at least one of the "
                              "files this run uploaded (all refused: a setup problem, not bad files)")]
           if files_from else []),
        kinds={"twenty"},
        **_common(mapping),
    )
    def _load(context: AssetExecutionContext, staged: StagedObject):
        writer: TwentyWriter = context.resources.twenty
        settings: MigrationSettings = context.resources.migration_settings
        run_key = context.partition_key
        with context.resources.ledger.open(source=slug) as ledger, writer.client() as client:
            ledger.start_run(run_key, slug, run_kind(run_key), {"mapping_version": mapping.version})
            members = client.workspace_member_ids() if staged.members else {}

            def load(part: StagedObject) -> tuple[PayloadBatch, LoadOutcome]:
                batch = staged_payloads(part, mapping, ledger, members, settings.fallback_owner_email)
                records = [LoadRecord(k, p, batch.cleared.get(k, {})) for k, p in batch.records]
                if files_from is None:
                    return batch, load_object(
                        client,
                        ledger,
                        run_key,
                        staged.plural,
                        records,
                        external_key_field=mapping.defaults.external_key_field if twenty.has_external_key else None,
                        natural_keys=twenty.unique_fields,
                        identity_fields=tuple(staged.relations) if is_junction else (),
                        batch_size=writer.limits.batch_size,
                        log=context.log.info,
                    )
                files = _source_files(part)
                with getattr(context.resources, files_from).open_client(log=context.log.info, run_key=run_key) as source:
                    outcome = load_attachments(
                        client, ledger, run_key, [(r, files[r.source_key]) for r in records], source,
                        identity_fields=(*staged.relations, "name"), max_bytes=mapping.defaults.max_upload_bytes,
                        batch_size=writer.limits.batch_size, log=context.log.info,
                    )
                batch.rejected += outcome.not_downloaded
                return batch, outcome

            first, later = split_self_links(staged, self_link_columns(staged, mapping), ledger)
            batch, outcome = load(first)
            links: dict[str, Any] = {}
            if later is not None:  # records linked to others of this object, once all are in Twenty
                refused = {k for k, _ in batch.rejected} | {k for k, _ in outcome.rejected}
                link_batch, linked = load(without_keys(later, refused))
                batch.field_issues += link_batch.field_issues
                links = {"linked_after_load": linked.updated, "links_refused": len(link_batch.rejected) + len(linked.rejected)}
                for source_key, reason in [*link_batch.rejected, *linked.rejected]:
                    context.log.warning(f"{source_key}: not linked: {reason}")
        summary = LoadSummary.of(staged, outcome, batch)
        yield dg.Output(summary, metadata={**summary.as_metadata(), **links, **writer.limits.as_metadata()})
        yield dg.AssetCheckResult(
            check_name="rows_reconcile", passed=summary.reconciles(), metadata=summary.accounting_metadata()
        )
        if files_from:
            yield _files_uploaded_check(outcome)

    return _load


FILES_CHECK = "files_uploaded"


def _files_uploaded_check(outcome: AttachmentOutcome) -> dg.AssetCheckResult:
    """Fails when Twenty refused every upload it was sent (fewer than the loader's fail-fast
    count, e.g. in a sample): the files' content or the server's setup, never a clean run."""
    refused = outcome.upload_refusals
    return dg.AssetCheckResult(
        check_name=FILES_CHECK, passed=not (refused and not outcome.uploaded),
        metadata={"uploaded": outcome.uploaded, "upload_refused": refused},
    )


def _source_files(staged: StagedObject) -> dict[str, SourceFile]:
    """Staged attachment key -> its file as the source knows it."""
    return {
        row[KEY]: SourceFile(str(row[FILE_REFERENCE]), None if pd.isna(row[FILE_SIZE]) else int(row[FILE_SIZE]))
        for row in staged.records.to_dict("records")
    }


# --- dry run plan and report -------------------------------------------------------------------


def _plan_asset(mapping: Mapping, objects: list[str]) -> dg.AssetsDefinition:
    slug = mapping.slug
    ins = {obj: dg.AssetIn(key=key(slug, "stage", obj)) for obj in objects}

    @dg.asset(
        key=key(slug, "plan", "load_plan"),
        ins=ins,
        description="Dry run: the Twenty-import-ready CSV per object in load order, plus a summary; "
        "writes nothing to Twenty",
        required_resource_keys=_settings_keys(mapping),
        kinds={"csv"},
        **_common(mapping),
    )
    def _plan(context: AssetExecutionContext, **staged: StagedObject):
        settings: MigrationSettings = context.resources.migration_settings
        folder = settings.output_folder(context.partition_key, slug) / "load_plan"
        summary = write_load_plan(folder, [staged[o] for o in objects])
        summary |= _write_conditions(context, mapping, folder)
        return dg.Output(str(folder), metadata={"folder": str(folder), **summary})

    return _plan


def _report_asset(mapping: Mapping, objects: list[str]) -> dg.AssetsDefinition:
    slug = mapping.slug
    ins = {f"load_{obj}": dg.AssetIn(key=key(slug, "load", obj)) for obj in objects}

    @dg.asset(
        key=key(slug, "report", "migration"),
        ins=ins,
        description="What happened to every source row: loaded, quarantined (reason) or excluded "
        "(reason); unmatched notes, held contacts and unresolved owners listed",
        required_resource_keys=_settings_keys(mapping) | {"ledger"},
        kinds={"csv"},
        **_common(mapping),
    )
    def _report(context: AssetExecutionContext, **loads: LoadSummary):
        settings: MigrationSettings = context.resources.migration_settings
        folder = settings.output_folder(context.partition_key, slug) / "report"
        with context.resources.ledger.open(source=slug) as ledger:
            summary = write_run_report(folder, list(loads.values()), ledger, context.partition_key,
                                       _input_warnings(context, mapping))
            summary |= report_deleted_in_source(folder, ledger, slug, mapping.source.kind,
                                                context.partition_key, list(loads.values()))
            summary |= _write_conditions(context, mapping, folder)
            ledger.finish_run(context.partition_key, "succeeded")
        return dg.Output(str(folder), metadata={"folder": str(folder), **summary})

    return _report


def _input_warnings(context: AssetExecutionContext, mapping: Mapping) -> list[str]:
    """The warnings this partition's extract steps recorded (optional input read as blank)."""
    found: list[str] = []
    for source_object in mapping.migrated_source_objects:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key(mapping.slug, "extract", source_object),
                                  asset_partitions=[context.partition_key]), limit=1).records
        materialization = records[0].asset_materialization if records else None
        value = materialization.metadata.get("warnings") if materialization else None
        found += list(value.value) if value is not None else []
    return found


__all__ = ["build_source_assets", "staged_objects", "load_dependencies"]
