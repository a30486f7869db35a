"""Links between records of one object (a company's parent company).

Both ends must be in Twenty before the link can be written, and within one object there is
no load order to rely on. So records whose parent has no Twenty id yet are first written
without the link, then linked in a second pass once every record of the object is loaded.
A rerun finds every parent in the ledger and writes each record once, with its link.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from migration_pipeline.engine.mapping import Mapping
from migration_pipeline.engine.payloads import TwentyIds, is_blank
from migration_pipeline.engine.staging import KEY, StagedObject


def self_link_columns(staged: StagedObject, mapping: Mapping) -> list[str]:
    twenty_object = {obj.name: obj.twenty_object for obj in mapping.objects}
    return [column for column, target in staged.relations.items() if twenty_object[target] == staged.twenty_object]


def split_self_links(
    staged: StagedObject, columns: list[str], ids: TwentyIds
) -> tuple[StagedObject, StagedObject | None]:
    """(what to load first, with links to records not yet in Twenty left blank; what to load
    after it: the records whose links were left blank, with their links), or (staged, None)."""
    records = staged.records
    waiting = pd.Series(False, index=records.index)
    first = records.copy()
    for column in columns:
        if column not in records:
            continue
        wanted = [k for k in records[column] if not is_blank(k)]
        loaded = ids.twenty_ids(staged.plural, sorted(set(wanted))) if wanted else {}
        unloaded = records[column].map(lambda k: not is_blank(k) and k not in loaded)
        first.loc[unloaded, column] = None
        waiting |= unloaded
    if not waiting.any():
        return staged, None
    return replace(staged, records=first), replace(staged, records=records[waiting].reset_index(drop=True))


def without_keys(staged: StagedObject, keys: set[str]) -> StagedObject:
    return replace(staged, records=staged.records[~staged.records[KEY].isin(keys)].reset_index(drop=True))
