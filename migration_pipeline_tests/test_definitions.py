"""The Dagster graph derived from the mappings: it loads with an empty environment, has the
three layers per object, its checks, and loads in Twenty's dependency order."""

from __future__ import annotations

import dagster as dg

from migration_pipeline.definitions import build_definitions


def _graph() -> tuple[dg.Definitions, dg.AssetGraph]:
    defs = build_definitions()
    return defs, defs.resolve_asset_graph()


def test_definitions_load_with_an_empty_environment(monkeypatch) -> None:
    for name in ("TWENTY__API_URL", "TWENTY__API_KEY", "DAGSTER_HOME", "MIGRATION__LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    defs, _ = _graph()
    assert defs.resolve_all_asset_keys()


def test_allclients_assets_have_extract_stage_and_load_layers() -> None:
    _, graph = _graph()
    keys = {"/".join(k.path) for k in graph.get_all_asset_keys()}
    assert {"allclients/extract/contacts", "allclients/extract/notes", "allclients/extract/users"} <= keys
    for obj in ("company", "person", "note", "noteTarget"):
        assert {f"allclients/stage/{obj}", f"allclients/load/{obj}"} <= keys
    assert {"allclients/prepare/twenty_schema", "allclients/plan/load_plan", "allclients/report/migration"} <= keys


def test_actionstep_assets_have_extract_stage_and_load_layers() -> None:
    defs, graph = _graph()
    keys = {"/".join(k.path) for k in graph.get_all_asset_keys()}
    extracts = {"actions", "participants", "action_participants", "participant_types", "matter_values"}
    assert {f"actionstep/extract/{name}" for name in extracts} <= keys
    for obj in ("company", "person", "opportunity"):
        assert {f"actionstep/stage/{obj}", f"actionstep/load/{obj}"} <= keys
    assert {"actionstep/prepare/twenty_schema", "actionstep/plan/load_plan", "actionstep/report/migration"} <= keys
    parents = graph.get(dg.AssetKey(["actionstep", "load", "opportunity"])).parent_keys
    assert {k.path[2] for k in parents if k.path[1] == "load"} == {"company", "person"}
    extract = next(a for a in defs.assets if dg.AssetKey(["actionstep", "extract", "actions"]) in a.keys)
    assert "actionstep_source" in extract.required_resource_keys
    assert {"actionstep_source", "allclients_files"} <= set(defs.resources)
    assert "actionstep_files" not in defs.resources
    # Attachments load after their notes and download the files through the source's client.
    attachments = graph.get(dg.AssetKey(["actionstep", "load", "attachment"]))
    assert {k.path[2] for k in attachments.parent_keys if k.path[1] == "load"} == {"note"}
    load = next(a for a in defs.assets if dg.AssetKey(["actionstep", "load", "attachment"]) in a.keys)
    assert "actionstep_source" in load.required_resource_keys


def test_every_asset_is_in_its_source_group_and_shares_the_migration_run_partitions() -> None:
    _, graph = _graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == key.path[0]
        assert node.partitions_def is not None and node.partitions_def.name == "migration_run"


def test_checks_come_from_schemas_and_block_only_on_stage() -> None:
    defs, graph = _graph()
    checks = {("/".join(k.asset_key.path), k.name) for k in graph.asset_check_keys}
    assert ("allclients/extract/contacts", "schema") in checks
    assert ("allclients/stage/person", "schema") in checks
    assert ("allclients/load/person", "rows_reconcile") in checks
    blocking = {
        "/".join(spec.asset_key.path)
        for asset in defs.assets
        for spec in asset.check_specs
        if spec.blocking
    }
    assert blocking == {f"allclients/stage/{o}" for o in ("company", "person", "note", "noteTarget")} | {
        f"actionstep/stage/{o}" for o in ("company", "person", "opportunity", "note", "noteTarget", "task", "taskTarget",
                                          "attachment", "matterRecord", "matterParticipant")}


def test_load_order_follows_declared_relations() -> None:
    _, graph = _graph()

    def upstream_loads(obj: str) -> set[str]:
        parents = graph.get(dg.AssetKey(["allclients", "load", obj])).parent_keys
        return {k.path[2] for k in parents if k.path[1] == "load"}

    assert upstream_loads("company") == set()
    assert upstream_loads("person") == {"company"}
    assert upstream_loads("note") == {"person"}
    assert upstream_loads("noteTarget") == {"note", "person"}


def test_custom_objects_load_after_the_objects_they_relate_to() -> None:
    _, graph = _graph()

    def upstream_loads(obj: str) -> set[str]:
        parents = graph.get(dg.AssetKey(["actionstep", "load", obj])).parent_keys
        return {k.path[2] for k in parents if k.path[1] == "load"}

    assert upstream_loads("matterRecord") == {"opportunity"}
    assert upstream_loads("matterParticipant") == {"opportunity", "person", "company"}
    schema = dg.AssetKey(["actionstep", "prepare", "twenty_schema"])
    assert schema in graph.get(dg.AssetKey(["actionstep", "load", "matterRecord"])).parent_keys
