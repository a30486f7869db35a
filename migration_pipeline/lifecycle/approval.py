"""Approving a sample run, which opens the gate for full runs of the same source.

A person approves only what they could check: a sample run whose field-level diff exists and
found nothing, unless they accept its differences explicitly. Two ways in, same rules: the CLI
(`migration-pipeline approve --run-id sample-...`) and the Dagster job `approve_sample`.
"""

# No `from __future__ import annotations`: Dagster reads the context/config annotations at runtime.
import argparse
import getpass

import dagster as dg

from migration_pipeline.factories.verification import field_diff_key, latest_field_diff
from migration_pipeline.ledger.ledger import Ledger
from migration_pipeline.partitions import run_kind, validate_run_key


class ApprovalRefused(ValueError):
    """The run may not be approved; the message says why and what to do."""


def approve_sample(
    ledger: Ledger,
    instance: dg.DagsterInstance,
    run_key: str,
    approved_by: str,
    note: str = "",
    *,
    accept_differences: bool = False,
    source: str | None = None,
) -> str:
    """Records the approval and returns a one-line confirmation, or raises ApprovalRefused.
    With `source`, the run must be one of that source's."""
    validate_run_key(run_key)
    if run_kind(run_key) != "sample":
        raise ApprovalRefused(
            f"{run_key} is a {run_kind(run_key)} run; only sample runs can be approved "
            "(run one with --run-id sample-<UTC time>, e.g. sample-20260501T1000Z)"
        )
    if not approved_by.strip():
        raise ApprovalRefused("say who approves: --by NAME (approved_by in the job config)")
    run = ledger.get_run(run_key)
    if run is None:
        raise ApprovalRefused(f"no run {run_key} in the ledger at {ledger.url}: run the sample first")
    if source and run["source"] != source:
        raise ApprovalRefused(f"{run_key} is a sample of {run['source']}, not of {source}: nothing was approved")
    record = latest_field_diff(instance, run["source"], run_key)
    if record is None:
        raise ApprovalRefused(
            f"sample {run_key} has no field-level diff yet: materialize "
            f"{'/'.join(field_diff_key(run['source']).path)} for partition {run_key} "
            f"(migration-pipeline run --source {run['source']} --run-id {run_key} does it)"
        )
    differences = int(record.metadata.get("differences", 0))
    if differences and not accept_differences:
        report = record.metadata.get("html_report", "")
        raise ApprovalRefused(
            f"the field-level diff of {run_key} found {differences} differing or missing values "
            f"(report: {report}). Fix the mapping and run a new sample, or approve anyway with "
            "--accept-differences (accept_differences in the job config)"
        )
    ledger.approve(run_key, approved_by.strip(), note, source=run["source"])
    accepted = f", accepting {differences} differences" if differences else ""
    return f"approved sample {run_key} of {run['source']} by {approved_by.strip()}{accepted}"


# --- Dagster job (the UI's way in) -----------------------------------------------------------


class ApproveSampleConfig(dg.Config):
    run_key: str
    approved_by: str
    source: str = ""  # optional: the run must be one of this source's
    note: str = ""
    accept_differences: bool = False


@dg.op(name="approve_sample_run", required_resource_keys={"ledger"})
def _approve_sample_op(context: dg.OpExecutionContext, config: ApproveSampleConfig) -> str:
    with context.resources.ledger.open() as ledger:
        try:
            done = approve_sample(ledger, context.instance, config.run_key, config.approved_by, config.note,
                                  accept_differences=config.accept_differences, source=config.source or None)
        except ValueError as refused:  # ApprovalRefused, or a malformed run id
            raise dg.Failure(description=str(refused)) from None
    context.log.info(done)
    return done


@dg.job(name="approve_sample", description="Approve a sample run so full runs of its source may load")
def approve_sample_job() -> None:
    _approve_sample_op()


def approval_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[approve_sample_job])


# --- CLI -------------------------------------------------------------------------------------


def register_approve_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    approve = commands.add_parser("approve", help="approve a sample run so full runs may load")
    approve.add_argument("--run-id", required=True, help="the sample run, e.g. sample-20260501T1000Z")
    approve.add_argument("--by", default=None, help="who approves (default: the current user)")
    approve.add_argument("--note", default="", help="why, or what was checked")
    approve.add_argument("--source", help="the sample's source (slug); refused when the run is another's")
    approve.add_argument("--accept-differences", action="store_true",
                         help="approve although the sample's field-level diff found differences")
    approve.set_defaults(handler=_approve_command)


def _approve_command(args: argparse.Namespace) -> int:
    from migration_pipeline.cli import _instance  # the CLI's instance; imported late (cli imports us)
    from migration_pipeline.resources import LedgerStore

    with LedgerStore().open() as ledger:
        done = approve_sample(ledger, _instance(), args.run_id, args.by or getpass.getuser(), args.note,
                              accept_differences=args.accept_differences, source=args.source)
    print(done)
    return 0


__all__ = ["approve_sample", "ApprovalRefused", "approve_sample_job", "register_approve_command"]
