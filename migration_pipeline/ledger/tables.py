"""Ledger schema: one row per run, one row per record write (the audit log), one row per
schema change."""

from __future__ import annotations

import sqlalchemy as sa

OPERATIONS = ("create", "update", "restore", "unchanged", "rejected")
STATUSES = ("pending", "done")

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_key", sa.String(255), primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20), nullable=False),
)

writes = sa.Table(
    "writes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_key", sa.String(255), nullable=False),
    sa.Column("object", sa.String(100), nullable=False),
    sa.Column("source_key", sa.String(500), nullable=False),
    sa.Column("twenty_id", sa.String(36)),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payload_hash", sa.String(64)),
    sa.Column("before_image", sa.JSON(none_as_null=True)),
    # Top-level fields an update sent (its payload keys): what a rollback restores.
    sa.Column("fields", sa.JSON(none_as_null=True)),
    sa.Column("message", sa.Text),
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(
        f"operation IN ({', '.join(repr(o) for o in OPERATIONS)})", name="ck_writes_operation"
    ),
    sa.CheckConstraint(
        f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="ck_writes_status"
    ),
    sa.Index("ix_writes_object_source_key", "object", "source_key"),
    sa.Index("ix_writes_run_key_object", "run_key", "object"),
)

# Ledgers made before schema_writes kept one summary per finished prepare here; they are
# converted into schema_writes rows (and removed) the first time a newer version opens them.
schema_changes = sa.Table(
    "schema_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_key", sa.String(255), nullable=False, index=True),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# Every change a run's schema pre-creation makes in Twenty, like record writes: an intent
# (pending) before the metadata request, its outcome (done, with the metadata id, or failed,
# with the reason) after it. `use` rows: the run relied on something an earlier run of ours
# created. A rollback drops what `create`/`add_option` rows made and sets `dropped_by`.
SCHEMA_OPERATIONS = ("create", "add_option", "use")
SCHEMA_KINDS = ("object", "field", "option")
SCHEMA_STATUSES = ("pending", "done", "failed")
schema_writes = sa.Table(
    "schema_writes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_key", sa.String(255), nullable=False, index=True),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("object", sa.String(100), nullable=False),  # nameSingular of the object
    sa.Column("name", sa.String(255), nullable=False),  # object: its nameSingular; field; option value
    sa.Column("field", sa.String(255)),  # option only: the field it belongs to
    sa.Column("metadata_id", sa.String(36)),  # object's or field's id (an option: its field's); NULL until known
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("dropped_by", sa.BigInteger),  # the rollback that removed it
    sa.CheckConstraint(f"operation IN ({', '.join(repr(o) for o in SCHEMA_OPERATIONS)})",
                       name="ck_schema_writes_operation"),
    sa.CheckConstraint(f"kind IN ({', '.join(repr(k) for k in SCHEMA_KINDS)})", name="ck_schema_writes_kind"),
    sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in SCHEMA_STATUSES)})", name="ck_schema_writes_status"),
)

# Sample runs a person approved, which gate full runs of the same source.
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("run_key", sa.String(255), primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("approved_by", sa.String(255), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
)

# Rollbacks: one row per attempt to undo one run. Writes of `run_key` up to `through_write_id`
# are covered by it: the id map ignores them from the moment the rollback starts.
rollbacks = sa.Table(
    "rollbacks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_key", sa.String(255), nullable=False, index=True),
    sa.Column("through_write_id", sa.BigInteger),
    sa.Column("drop_schema", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("schema_dropped_at", sa.DateTime(timezone=True)),
    sa.Column("schema_through_id", sa.BigInteger),  # legacy: the last schema_changes row it dropped
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20), nullable=False),  # running, done, incomplete
    sa.Column("message", sa.Text),
)

# What a rollback did, one row per undone write (or dropped schema item): the audit of undo.
ROLLBACK_OPERATIONS = ("destroy", "revert", "redelete", "drop_object", "drop_field", "drop_option")
rollback_actions = sa.Table(
    "rollback_actions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("rollback_id", sa.BigInteger, nullable=False),
    sa.Column("write_id", sa.BigInteger, index=True),  # the writes row undone; NULL for schema items
    sa.Column("run_key", sa.String(255), nullable=False, index=True),
    sa.Column("object", sa.String(100), nullable=False),
    sa.Column("source_key", sa.String(500)),
    sa.Column("twenty_id", sa.String(36)),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # done, failed
    sa.Column("message", sa.Text),
    sa.Column("acted_at", sa.DateTime(timezone=True), nullable=False),
)
