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


def _domains(fake_twenty) -> dict[str, str]:
    return {c["actionstepId"]: (c.get("domainName") or {}).get("primaryLinkUrl") or ""
            for c in fake_twenty.records("companies")}


def test_a_shared_domain_has_one_owner_in_the_sample_and_the_full_run(migrate, fake_twenty) -> None:
    sample = migrate(run_key="sample-20261122T1000Z")
    in_sample = _domains(fake_twenty)
    full = migrate(run_key="full-20261122T1100Z")
    assert sample.success and full.success
    after_full = _domains(fake_twenty)
    assert {k: after_full[k] for k in in_sample} == in_sample  # no domain moved to another company
    refused = full.report("quarantined.csv")
    assert not refused["reason"].str.contains("duplicate|not loaded", case=False).any(), refused["reason"].tolist()
    blanked = full.report("field_issues.csv")
    assert blanked["reason"].str.contains("domainName.primaryLinkUrl .* left blank").any()  # the export shares some

    fake_twenty.clear_requests()
    again = migrate(run_key="full-20261122T1200Z")
    assert again.success
    assert not [r for r in fake_twenty.requests if r.method in ("POST", "PATCH", "DELETE")
                and not r.path.startswith("/rest/metadata")]
