"""`migration-pipeline`: the same runs as the Dagster UI, headless, with progress on stdout.

    migration-pipeline run --source allclients --input DIR [--run-id ID] [--dry-run]
    migration-pipeline run --source actionstep [--run-id ID] [--dry-run]     (API: ACTIONSTEP__* credentials)
        [--requests-per-minute N] [--batch-size N]                           (TWENTY__REQUESTS_PER_MINUTE, ...)
    migration-pipeline generate --source allclients --out DIR [--rows N] [--seed S]
    migration-pipeline audit [--run-id ID] [--source S] [--object O] [--operation A,B] [--outcome X] [--since T] [--until T] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import dagster as dg

from migration_pipeline.definitions import MAPPINGS_DIR, default_resources
from migration_pipeline.destinations.twenty.resource import TwentyLimits, TwentyWriter
from migration_pipeline.destinations.twenty.workflows import HOW_TO_PAUSE, RecordTrigger, active_record_triggers
from migration_pipeline.engine.mapping import Mapping, MappingError, load_mappings
from migration_pipeline.engine.preflight import check_all
from migration_pipeline.factories.assets import (
    WORKFLOW_WARNINGS,
    build_source_assets,
    files_resource_key,
    staged_objects,
)
from migration_pipeline.factories.extract_rest import rest_resource_key
from migration_pipeline.factories.rebuild import PACKAGE_FOLDER, rebuild_package_key
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.lifecycle import add_limit_options, lifecycle_commands
from migration_pipeline.factories.reconciliation import reconciliation_asset
from migration_pipeline.factories.verification import build_verification, field_diff_key
from migration_pipeline.partitions import migration_run, new_run_key, run_kind, validate_run_key
from migration_pipeline.resources import PROJECT_ROOT, LedgerStore, MigrationSettings, SourceFiles
from migration_pipeline.sources.registry import missing_credentials


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (MappingError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migration-pipeline", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True)

    run = commands.add_parser("run", help="migrate one source export into Twenty (or plan it: --dry-run)")
    run.add_argument("--source", required=True, help="source slug, e.g. allclients")
    run.add_argument("--input", type=Path, help="folder with the export files (default: bundled sample); "
                     "not used by API sources such as actionstep")
    run.add_argument("--run-id", help="partition key, e.g. full-20260501T1000Z (default: new full-<now>)")
    run.add_argument("--dry-run", action="store_true", help="stage and write the load plan; write nothing to Twenty")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a mapping setting")
    run.add_argument("--fallback-owner", default=os.environ.get("MIGRATION__FALLBACK_OWNER_EMAIL", ""),
                     help="workspace member email for records whose owner is not a member")
    run.add_argument("--output", type=Path, help="folder for reports (default: ./migration_output)")
    run.add_argument("--skip-sample-gate", action="store_true",
                     help="load a full run without an approved sample run")
    add_limit_options(run)
    run.set_defaults(handler=_run)

    generate = commands.add_parser("generate", help="write a realistic synthetic export")
    generate.add_argument("--source", required=True, choices=["allclients"])
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument("--rows", type=int, default=300)
    generate.add_argument("--seed", type=int, default=7)
    generate.set_defaults(handler=_generate)

    audit = commands.add_parser("audit", help="export the audit log (every write and every undo) as CSV")
    audit.add_argument("--run-id", help="only this run")
    audit.add_argument("--source", help="only runs of this source (slug)")
    audit.add_argument("--object", help="only this Twenty object (plural), e.g. people")
    audit.add_argument("--operation", help="only these operations, comma-separated: create, update, restore, "
                       "unchanged, rejected; destroy, revert, redelete, drop_field, ... (rollback)")
    audit.add_argument("--outcome", choices=["done", "pending", "rejected", "failed"], help="only this outcome")
    audit.add_argument("--since", help="from this UTC time on, e.g. 2026-11-22 or 2026-11-22T10:00")
    audit.add_argument("--until", help="before this UTC time")
    audit.add_argument("--out", type=Path, help="CSV file (default: stdout)")
    audit.set_defaults(handler=_audit)

    for register in lifecycle_commands():
        register(commands)
    return parser


# --- run -------------------------------------------------------------------------------------

LOG_FILE = "run.log"  # in the run's output folder: Dagster's own messages and stack traces
PREFLIGHT = "preflight"


def _run(args: argparse.Namespace) -> int:
    mapping = _mapping(args.source)
    is_api = mapping.source.kind == "rest"
    if is_api:  # read through the API: credentials from the environment, checked before launch
        problem = missing_credentials(mapping.slug, dict(os.environ))
        if problem:
            raise ValueError(problem)
        if args.input:
            print(f"note: --input is not used: {mapping.source.label} is read through its API")
    twenty_configured = bool(os.environ.get("TWENTY__API_URL") and os.environ.get("TWENTY__API_KEY"))
    dry_run = args.dry_run or not twenty_configured
    limits = TwentyLimits.resolve(args.requests_per_minute, args.batch_size, os.environ)
    resources = _resources(mapping, args, limits)
    # The settings the run states (time zone, currency): an unstated one stops it here, before
    # any partition, output folder or log exists.
    stated = resources["migration_settings"].resolve(
        mapping, None if is_api else resources[files_resource_key(mapping.slug)].folder())
    instance = _instance()
    with LedgerStore().open() as ledger:
        run_key = _run_key(ledger, mapping.slug, args.run_id)
    instance.add_dynamic_partitions(migration_run.name, [run_key])
    output = resources["migration_settings"].output_folder(run_key, mapping.slug)
    log_file = output / LOG_FILE

    assets = build_source_assets(mapping)
    layers = {"extract", "stage", "plan"} if dry_run else {"extract", "stage", "prepare", "load", "report"}
    selection = [a.key for a in assets if a.key.path[1] in layers]
    package = next((a.key for a in assets if a.key == rebuild_package_key(mapping.slug)), None)
    if package is not None and package not in selection:  # writes nothing to Twenty: dry runs get it too
        selection.append(package)
    if not dry_run:  # read Twenty back: reconciliation after every real run
        assets.append(reconciliation_asset(mapping))
        selection.append(assets[-1].key)
    if run_kind(run_key) == "sample" and not dry_run:  # and the field-level diff of a sample
        assets += build_verification(mapping)
        selection.append(field_diff_key(mapping.slug))
    if dry_run:
        resources["twenty"] = TwentyWriter(api_url="http://dry-run.invalid", api_key="unused")

    print(f"{'Planning' if dry_run else 'Migrating'} {mapping.source.label} run {run_key}")
    if is_api:
        print(f"  source: the {mapping.source.label} API (credentials from {mapping.slug.upper()}__* variables)")
    else:
        print(f"  input: {resources[files_resource_key(mapping.slug)].folder()}")
    for line in stated.lines():
        print(line)
    setting_tags = stated.tags()
    if not dry_run:
        print(f"  Twenty limits: {limits.describe()} (--requests-per-minute, --batch-size)")
    print(f"  log: {log_file}")

    problems = _preflight(mapping, resources, dry_run)
    if problems:
        _append_log(log_file, f"{PREFLIGHT}: the run was not started\n" + "\n".join(problems))
        print(f"\nRun {run_key} NOT started: {problems[0]}")
        for problem in problems[1:]:
            print(f"  also: {problem}")
        print(f"Fix it and run the same command again. Log: {log_file}")
        return 1
    if not dry_run:
        for trigger in _workflows_ahead(mapping):
            print(f"  WARNING: active Twenty workflow \"{trigger.workflow}\" ({trigger.event}) runs for every "
                  f"{trigger.object} this run writes: {HOW_TO_PAUSE}")

    with _logging_to(log_file):
        result = dg.materialize(
            assets,
            instance=instance,
            resources=resources,
            partition_key=run_key,
            selection=selection,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            tags={"migration/source": mapping.slug, **setting_tags,
                  **{f"migration/{k}": str(v) for k, v in limits.as_metadata().items()}},
        )
    _print_progress(result)
    _print_workflow_warnings(result)
    if not result.success:
        print(f"\nRun {run_key} FAILED: {_first_failure(result)}")
        input_flag = "" if is_api else f" --input {args.input or '<same folder>'}"
        print(f"What to do: fix the cause above, then rerun the same partition to resume: "
              f"migration-pipeline run --source {mapping.slug}{input_flag} --run-id {run_key}")
        print(f"Details (Dagster's messages and stack traces): {log_file}")
        return 1
    failed_checks = [
        f"{e.check_name} on {'/'.join(e.asset_key.path)}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    if failed_checks:
        print(f"\nRun {run_key} finished, but checks FAILED: {', '.join(failed_checks)}. "
              f"See the reports in {output} and the log {log_file}.")
        return 1
    if package is not None:
        print(f"Rebuild package (what Twenty cannot hold: CSV, workflow.json/.html, README.txt): "
              f"{output / PACKAGE_FOLDER}")
    if dry_run:
        reason = "--dry-run" if args.dry_run else "TWENTY__API_URL / TWENTY__API_KEY are not set"
        print(f"\nDry run ({reason}): NOTHING was written to Twenty.")
        print(f"Load plan (Twenty-import-ready CSV per object, in load order): {output / 'load_plan'}")
    else:
        print(f"\nDone. Report (dispositions, unresolved owners, audit log): {output / 'report'}")
        if run_kind(run_key) == "sample":
            print(f"Field-level diff: {output / 'verify' / 'field_diff.html'}; once checked, approve it: "
                  f"migration-pipeline approve --run-id {run_key}")
    return 0


def _run_key(ledger: Ledger, slug: str, given: str | None) -> str:
    """The given run id (refused when it is another source's run), else a new full-<now>, with
    the source as suffix when another source's run already has that minute."""
    if given:
        ledger.check_run_source(validate_run_key(given), slug)
        return given
    run_key = new_run_key("full")
    owner = ledger.get_run(run_key)
    return run_key if owner is None or owner["source"] == slug else f"{run_key}-{slug}"


def _preflight(mapping: Mapping, resources: dict[str, Any], dry_run: bool) -> list[str]:
    """Each server the run needs, asked once; the problems (nothing is launched when any)."""
    servers: dict[str, Any] = {}
    if mapping.source.kind == "rest":
        servers["source"] = resources[rest_resource_key(mapping)]
    if not dry_run:  # with the values themselves: the run's own resource only names the variables
        servers["twenty"] = TwentyWriter(api_url=os.environ["TWENTY__API_URL"], api_key=os.environ["TWENTY__API_KEY"])
    return check_all(servers)


def _workflows_ahead(mapping: Mapping) -> list[RecordTrigger]:
    """Active workflows on the objects the run writes, before it starts (the prepare step counts
    the records that will set each off)."""
    objects = set(staged_objects(mapping))
    writer = TwentyWriter(api_url=os.environ["TWENTY__API_URL"], api_key=os.environ["TWENTY__API_KEY"], max_attempts=2)
    with writer.client() as client:
        return [t for t in active_record_triggers(client) if t.object in objects]


@contextmanager
def _logging_to(log_file: Path) -> Iterator[None]:
    """Everything Dagster prints during the run (events, warnings, stack traces) goes to the log
    file; the CLI prints its own summary after."""
    with log_file.open("a", encoding="utf-8") as log, redirect_stdout(log), redirect_stderr(log):
        yield


def _append_log(log_file: Path, text: str) -> None:
    with log_file.open("a", encoding="utf-8") as log:
        log.write(text.rstrip() + "\n")


def _mapping(slug: str) -> Mapping:
    mappings = {m.slug: m for m in load_mappings(MAPPINGS_DIR)}
    if slug not in mappings:
        raise ValueError(f"unknown source {slug!r}; mappings exist for: {', '.join(sorted(mappings))}")
    return mappings[slug]


def _instance() -> dg.DagsterInstance:
    """The DAGSTER_HOME instance, else a local SQLite one in ./.dagster_home (no server)."""
    if not os.environ.get("DAGSTER_HOME"):
        home = Path.cwd() / ".dagster_home"
        home.mkdir(exist_ok=True)
        if not (home / "dagster.yaml").exists():
            (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _resources(mapping: Mapping, args: argparse.Namespace, limits: TwentyLimits) -> dict[str, Any]:
    resources = default_resources([mapping])
    resources["twenty"] = TwentyWriter(
        api_url=dg.EnvVar("TWENTY__API_URL"), api_key=dg.EnvVar("TWENTY__API_KEY"),
        requests_per_minute=limits.requests_per_minute, batch_size=limits.batch_size,
    )
    if mapping.source.kind != "rest":  # a REST source's client resource reads its credentials at launch
        resources[files_resource_key(mapping.slug)] = SourceFiles(
            slug=mapping.slug, input_dir=str(args.input.resolve()) if args.input else ""
        )
    overrides = dict(item.split("=", 1) for item in args.set)
    resources["migration_settings"] = MigrationSettings(
        overrides_json=json.dumps(overrides),
        fallback_owner_email=args.fallback_owner,
        output_dir=str(args.output.resolve()) if args.output else "",
        skip_sample_gate=args.skip_sample_gate,
    )
    resources["ledger"] = LedgerStore()
    return resources


def _print_progress(result: dg.ExecuteInProcessResult) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        counts = {
            k: v.value
            for k, v in materialization.metadata.items()
            if k in {"rows", "records", "quarantined", "excluded", "created", "updated", "unchanged", "rejected"}
        }
        print(f"  {'/'.join(materialization.asset_key.path):<40} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            verdict = "warning" if evaluation.severity == dg.AssetCheckSeverity.WARN else "FAILED"
            failures = evaluation.metadata.get("failures")
            detail = f" ({failures.value} failing values; samples in the check metadata)" if failures else ""
            print(f"  check {evaluation.check_name} on {'/'.join(evaluation.asset_key.path)}: {verdict}{detail}")


def _print_workflow_warnings(result: dg.ExecuteInProcessResult) -> None:
    for event in result.get_asset_materialization_events():
        warnings = event.event_specific_data.materialization.metadata.get(WORKFLOW_WARNINGS)
        for warning in warnings.value if warnings is not None else []:
            print(f"  WARNING: {warning['message']}")


def _first_failure(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step and its reason, in one line (a Failure's description, else the
    error's first line), and how many other steps failed."""
    failures = [e for e in result.all_events if e.is_step_failure and e.step_failure_data]
    if not failures:
        return "see the log"
    data = failures[0].step_failure_data
    user = data.user_failure_data
    text = user.description if user is not None and user.description else (data.error.message if data.error else "")
    reason = " ".join(text.strip().splitlines()[:1]) or "no reason given"
    others = f" ({len(failures) - 1} more steps failed: see the log)" if len(failures) > 1 else ""
    return f"{failures[0].step_key.replace('__', '/')}: {reason}{others}"


# --- generate and audit ----------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    from migration_pipeline.sources.allclients.generate import generate_export

    summary = generate_export(args.out, rows=args.rows, seed=args.seed)
    print(f"wrote {args.out}: {summary}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    import pandas as pd

    from migration_pipeline.ledger.ledger import AUDIT_COLUMNS

    def utc_time(flag: str, text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{flag} {text!r} is not a time: write e.g. 2026-11-22 or 2026-11-22T10:00 (UTC)") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    operations = [op.strip() for op in (args.operation or "").split(",") if op.strip()]
    with LedgerStore().open() as ledger:
        rows = ledger.audit(run_key=args.run_id, source=args.source, object=args.object, operations=operations, outcome=args.outcome,
                            since=utc_time("--since", args.since), until=utc_time("--until", args.until))
    frame = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"wrote {len(frame)} audit rows to {args.out}")
    else:
        frame.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
