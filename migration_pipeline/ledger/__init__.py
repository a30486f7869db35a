from migration_pipeline.ledger.ledger import DEFAULT_URL, KnownWrite, Ledger, Operation, WriteRow

__all__ = ["DEFAULT_URL", "KnownWrite", "Ledger", "Operation", "WriteRow"]
