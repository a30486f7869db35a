"""A source resource the run may not read: a refusal the client raises, and the record of it.

A source client raises `SourceRequestError` (or a subclass) for a request the API refused.
For a whole resource answered 403 (no permission) or 404 (not there for this account), the
mapping decides what happens (`source.objects.<name>.required`): a required resource stops the
run with a message naming it; an optional one (`required: false`: it only feeds the rebuild
package or an enrichment) is read as empty, and an `UnreadableResource` goes to the extract's
metadata and the run report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

UNREADABLE_STATUSES = frozenset({403, 404})
METADATA_KEY = "unreadable"  # extract metadata: {"resource", "status", "reason"}


class SourceRequestError(Exception):
    """The source answered a request with a 4xx it will not change its mind about."""

    def __init__(self, status: int, route: str, message: str) -> None:
        super().__init__(message)
        self.status, self.route = status, route


@dataclass(frozen=True)
class UnreadableResource:
    source_object: str
    resource: str
    status: int
    reason: str  # the source's own message, secrets redacted

    def as_metadata(self) -> dict[str, object]:
        return {"resource": self.resource, "status": self.status, "reason": self.reason}

    @classmethod
    def from_metadata(cls, source_object: str, raw: dict[str, object]) -> UnreadableResource:
        return cls(source_object, str(raw["resource"]), int(str(raw["status"])), str(raw["reason"]))

    def as_row(self) -> dict[str, object]:
        return asdict(self)


__all__ = ["SourceRequestError", "UnreadableResource", "UNREADABLE_STATUSES", "METADATA_KEY"]
