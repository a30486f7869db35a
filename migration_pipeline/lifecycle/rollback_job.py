"""Rollback as a Dagster job (`rollback`) and as the `migration-pipeline rollback` command.

    migration-pipeline rollback --run-id full-20261122T1000Z [--drop-schema] [--dry-run]
    migration-pipeline rollback --all [--source SLUG] [--drop-schema] [--dry-run]
    (and --requests-per-minute N / --batch-size N, as for `run`)

In the Dagster UI, launch the `rollback` job with op config `run_id: <partition key>` or
`all_runs: true` (and `drop_schema: true` to remove the custom fields and objects too). The
command runs the same job on the local instance, so both show up in the run history.
"""

# No `from __future__ import annotations`: Dagster reads the config annotation at runtime.
import argparse
import os
from typing import Any

import dagster as dg
from pydantic import Field

from migration_pipeline.destinations.twenty.client import TwentyRequestError
from migration_pipeline.destinations.twenty.resource import TwentyLimits, TwentyWriter
from migration_pipeline.engine.retry import RetriesExhausted
from migration_pipeline.lifecycle.rollback import (
    PlannedRun,
    RollbackRefused,
    RollbackResult,
    plan_rollback,
    roll_back,
)
from migration_pipeline.lifecycle import add_limit_options
from migration_pipeline.resources import LedgerStore

OP_NAME = "roll_back_runs"


class RollbackConfig(dg.Config):
    run_id: str = Field(default="", description="The run to undo (its migration_run partition key)")
    all_runs: bool = Field(default=False, description="Undo every run, newest first")
    source: str = Field(default="", description="Only runs of this source (its slug); the run must be one of them")
    drop_schema: bool = Field(
        default=False, description="Also remove the custom objects, fields and select options the runs created"
    )


@dg.op(
    name=OP_NAME,
    required_resource_keys={"twenty", "ledger"},
    description="Destroy the records the runs created, put back the before-images of the records "
    "they updated, delete again what they restored; newest run first, resumable",
)
def roll_back_runs(context: dg.OpExecutionContext, config: RollbackConfig) -> dg.Output[dict[str, Any]]:
    if bool(config.run_id) == config.all_runs:
        raise dg.Failure(description="Say what to roll back: run_id: <partition key>, or all_runs: true (not both).")
    writer: TwentyWriter = context.resources.twenty
    try:
        with context.resources.ledger.open() as ledger, writer.client() as client:
            context.log.info(f"Twenty limits: {writer.limits.describe()}")
            result = roll_back(
                client, ledger, config.run_id or None, drop_schema=config.drop_schema,
                source=config.source or None, batch_size=writer.limits.batch_size, log=context.log.info,
            )
    except RollbackRefused as refused:
        raise dg.Failure(description=f"Rollback refused: {refused}") from None
    except (TwentyRequestError, RetriesExhausted) as error:
        raise dg.Failure(
            description=f"{str(error).rstrip('.')}. What was undone so far is recorded: rerun the "
            "rollback to resume."
        ) from None
    metadata = {**_metadata(result), **writer.limits.as_metadata()}
    if not result.complete:
        failures = [f for run in result.runs for f in run.failures]
        raise dg.Failure(
            description=f"Twenty refused {len(failures)} undo steps (first: {failures[0]}). Fix them "
            "and rerun the rollback: what was undone is not undone twice.",
            metadata=metadata,
        )
    return dg.Output({run.run_key: dict(run.done) for run in result.runs}, metadata=metadata)


@dg.job(name="rollback", description="Undo one migration run, or all of them, exactly (see the op config)")
def rollback_job() -> None:
    roll_back_runs()


def rollback_definitions() -> dg.Definitions:
    """The job; `twenty` and `ledger` come from the project's core definitions."""
    return dg.Definitions(jobs=[rollback_job])


def _metadata(result: RollbackResult) -> dict[str, Any]:
    rows = "\n".join(
        f"| {run.run_key} | {', '.join(f'{op} {n}' for op, n in sorted(run.done.items())) or '-'} "
        f"| {len(run.failures)} | {run.requests} |"
        for run in result.runs
    )
    table = "| run | undone | failed | requests |\n| --- | --- | --- | --- |\n" + rows
    return {
        **{key: dg.MetadataValue.int(value) for key, value in result.totals().items()},
        "runs": dg.MetadataValue.md(table if result.runs else "nothing to roll back"),
    }


# -- command line ------------------------------------------------------------------------------


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "rollback", help="undo one run (--run-id) or every run (--all), newest first, exactly"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", help="the run to undo, e.g. full-20261122T1000Z")
    which.add_argument("--all", dest="all_runs", action="store_true", help="undo every run, newest first")
    parser.add_argument("--drop-schema", action="store_true",
                        help="also remove the custom objects, fields and select options the runs created")
    parser.add_argument("--source", help="only runs of this source (slug); --run-id must be one of them")
    parser.add_argument("--dry-run", action="store_true", help="print what would be undone; change nothing")
    add_limit_options(parser)
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    if not args.dry_run and not (os.environ.get("TWENTY__API_URL") and os.environ.get("TWENTY__API_KEY")):
        raise ValueError("a rollback writes to Twenty: set TWENTY__API_URL and TWENTY__API_KEY")
    limits = TwentyLimits.resolve(args.requests_per_minute, args.batch_size, os.environ)
    planned = _print_plan(args)  # refused, or nothing to do: no need to start a Dagster run
    if planned is None:
        return 1
    if args.dry_run:
        print("Dry run: nothing was changed.")
        return 0
    if not planned:
        return 0
    from migration_pipeline.cli import _instance  # the CLI's instance; imported late (cli imports us)

    print(f"Twenty limits: {limits.describe()}")
    config = {"run_id": args.run_id or "", "all_runs": args.all_runs, "drop_schema": args.drop_schema,
              "source": args.source or ""}
    result = rollback_job.execute_in_process(
        # The outcome is printed below; the console logger would add stack traces to it.
        run_config={"ops": {OP_NAME: {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        instance=_instance(),
        resources={
            "twenty": TwentyWriter(api_url=dg.EnvVar("TWENTY__API_URL"), api_key=dg.EnvVar("TWENTY__API_KEY"),
                                   requests_per_minute=limits.requests_per_minute, batch_size=limits.batch_size),
            "ledger": LedgerStore(),
        },
        raise_on_error=False,
    )
    if not result.success:
        print(f"Rollback FAILED: {_failure_description(result)}")
        return 1
    print("Done:")
    for run_key, done in result.output_for_node(OP_NAME).items():
        print(f"  {run_key}: " + (", ".join(f"{op} {n}" for op, n in sorted(done.items())) or "nothing to undo"))
    print("`migration-pipeline audit --operation destroy,revert,redelete` lists every undo.")
    return 0


def _print_plan(args: argparse.Namespace) -> list[PlannedRun] | None:
    """Prints what the rollback would undo; None (and why) when it is refused."""
    with LedgerStore().open() as ledger:
        try:
            planned = plan_rollback(ledger, args.run_id, drop_schema=args.drop_schema, source=args.source)
        except RollbackRefused as refused:
            print(f"Rollback refused: {refused}")
            return None
    if not planned:
        print(f"Nothing to roll back: {args.run_id or 'every run'} is already rolled back.")
    for run in planned:
        counts = run.counts()
        print(f"{run.run_key}:" + ("" if counts else " nothing to undo in Twenty"))
        for object, operations in counts.items():
            print(f"  {object:<16} " + ", ".join(f"{op} {n}" for op, n in sorted(operations.items())))
    return planned


def _failure_description(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            user = event.step_failure_data.user_failure_data
            if user is not None and user.description:
                return user.description
            if event.step_failure_data.error:  # not a dg.Failure: a bug, say what it was
                return event.step_failure_data.error.message.strip()
    return "see the Dagster run's event log"
