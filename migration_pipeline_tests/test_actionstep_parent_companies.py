"""Parent companies from Actionstep's "Parent Company" contact relationships: linked through a
custom relation field, and a circular chain reported before the load and left unlinked."""

from __future__ import annotations

import httpx

from migration_pipeline_tests.test_actionstep_e2e import (  # noqa: F401  (fixtures)
    _actionstep_server,
    _by_source_id,
    fake_actionstep,
    migrate,
)


def _parents(fake_actionstep) -> dict[str, str]:
    """Company participant id -> its parent's, read from the generated relationships."""
    return {str(r["links"]["fromContact"]): str(r["links"]["toContact"])
            for r in fake_actionstep.records("contactrelationships") if r["relationship"] == "Parent Company"}


def _cycle_members(parents: dict[str, str]) -> set[str]:
    on_cycle = set()
    for start in parents:
        seen, node = [], start
        while node in parents and node not in seen:
            seen.append(node)
            node = parents[node]
        if node == start:
            on_cycle.add(start)
    return on_cycle


def test_parent_companies_are_linked_and_a_circular_chain_is_reported_before_load(
        migrate, fake_twenty, fake_actionstep) -> None:
    parents = _parents(fake_actionstep)
    circular = _cycle_members(parents)
    assert len(circular) == 3 and len(parents) > len(circular)  # the dataset has both kinds

    run = migrate(layers=("extract", "stage", "prepare", "load", "report", "verify"))
    assert run.success, run.result.all_events[-1]

    # Reported at stage, before any write: the chain, as a warning that does not stop the run.
    check = run.check("actionstep/stage/company", "no_circular_references")
    assert not check.passed
    (chain,) = check.metadata["chains"].value
    assert set(chain.replace("companies:", "").split(" -> ")) == circular
    issues = run.report("field_issues.csv")
    flagged = issues[(issues["field"] == "parentCompanyId") & issues["reason"].str.startswith("circular reference")]
    assert {k.split(":", 1)[1] for k in flagged["source_key"]} == circular

    # Twenty got the relation field, and every other parent link.
    with httpx.Client(base_url=fake_twenty.base_url, headers={"Authorization": f"Bearer {fake_twenty.api_key}"},
                      timeout=10) as http:
        objects = http.get("/rest/metadata/objects").json()["data"]
    fields = {f["name"]: f for o in objects if o["nameSingular"] == "company" for f in o["fields"]}
    assert fields["parentCompany"]["type"] == "RELATION"
    companies = _by_source_id(fake_twenty.records("companies"))
    for company_id, company in companies.items():
        wanted = parents.get(company_id)
        if wanted is None or company_id in circular:
            assert company["parentCompanyId"] is None, company_id
        else:
            assert company["parentCompanyId"] == companies[wanted]["id"], company_id
    assert run.check("actionstep/verify/reconciliation", "counts_match").passed
    assert (run.output / "verify" / "field_diff.csv").read_text(encoding="utf-8").splitlines()[1:] == []

    # A rerun finds every parent in the ledger: nothing is written again.
    fake_twenty.clear_requests()
    again = migrate(layers=("extract", "stage", "prepare", "load"))
    assert again.success
    assert not [r for r in fake_twenty.requests if r.method in ("POST", "PATCH", "DELETE")
                and not r.path.startswith("/rest/metadata")]
