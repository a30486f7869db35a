"""Which pandera model describes which source object; one entry per source module."""

from __future__ import annotations

import pandera.pandas as pa

from migration_pipeline.schemas import actionstep, actionstep_datacollections, actionstep_rebuild, allclients

SOURCE_SCHEMAS: dict[str, dict[str, type[pa.DataFrameModel]]] = {
    "allclients": allclients.SOURCE_SCHEMAS,
    "actionstep": {**actionstep.SOURCE_SCHEMAS, **actionstep_rebuild.SOURCE_SCHEMAS,
                   **actionstep_datacollections.SOURCE_SCHEMAS},
}


def source_schema(slug: str, source_object: str) -> type[pa.DataFrameModel]:
    try:
        return SOURCE_SCHEMAS[slug][source_object]
    except KeyError:
        raise KeyError(f"no pandera model for {slug}/{source_object}: add it to schemas/{slug}.py") from None
