"""How a source API splits a collection into pages, independent of any one CRM.

A paginator answers three questions, and nothing else (it never sends a request):

- `first_params(resume_after)`: the query parameters of the first request, or of the
  request right after a checkpointed page when an extraction resumes;
- `next_params(sent, page)`: the parameters of the next request, given those that fetched
  the page just received and what that page said about itself; `None` means stop;
- `position(sent, page)`: a short string naming the page just completed, which a checkpoint
  store records so the next run can pass it back as `resume_after` and continue after it.

The source client reads a response into a `PageInfo` (how many records it held, and what
paging metadata the server sent, if any) so paginators stay free of response shapes.

Kinds: `PageNumberPaginator` (Actionstep: `page` / `pageSize`) and `OffsetPaginator`
(`offset` / `limit`, for AllClients' API). Cursor and next-link kinds fit the same
protocol (the position is the cursor or the URL) and are added with their first source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PageInfo:
    """What one response said about itself.

    `record_count` is the number of records on this page (0 for an empty page, e.g. HTTP
    204). The rest is optional paging metadata: the total number of pages or records the
    query produces, and whether the server announced a next page (`None`: it did not say).
    """

    record_count: int
    total_pages: int | None = None
    total_records: int | None = None
    has_next: bool | None = None


class Paginator(Protocol):
    """Next-request parameters from the last response, and when to stop."""

    def first_params(self, resume_after: str | None = None) -> dict[str, str]: ...

    def next_params(self, sent: Mapping[str, str], page: PageInfo) -> dict[str, str] | None: ...

    def position(self, sent: Mapping[str, str], page: PageInfo) -> str: ...


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def _read_int(sent: Mapping[str, str], name: str, default: int) -> int:
    raw = sent.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"query parameter {name}={raw!r} is not a whole number") from None


@dataclass(frozen=True)
class PageNumberPaginator:
    """`?page=N&pageSize=S`, pages numbered from `first_page`.

    Stops at an empty page; else when the server says there is no next page; else when
    the page number reaches the announced page count; with no metadata at all, at the
    first page shorter than `page_size`.
    """

    page_size: int
    page_param: str = "page"
    size_param: str = "pageSize"
    first_page: int = 1

    def __post_init__(self) -> None:
        _positive("page_size", self.page_size)

    def first_params(self, resume_after: str | None = None) -> dict[str, str]:
        page = self.first_page if resume_after is None else int(resume_after) + 1
        return {self.page_param: str(page), self.size_param: str(self.page_size)}

    def next_params(self, sent: Mapping[str, str], page: PageInfo) -> dict[str, str] | None:
        number = _read_int(sent, self.page_param, self.first_page)
        if page.record_count == 0 or page.has_next is False:
            return None
        if page.total_pages is not None and page.has_next is None and number >= page.total_pages:
            return None
        if page.has_next is None and page.total_pages is None and page.record_count < self.page_size:
            return None
        return {**sent, self.page_param: str(number + 1), self.size_param: str(self.page_size)}

    def position(self, sent: Mapping[str, str], page: PageInfo) -> str:
        """The number of the completed page."""
        return str(_read_int(sent, self.page_param, self.first_page))


@dataclass(frozen=True)
class OffsetPaginator:
    """`?offset=O&limit=L`: the next offset is this offset plus the records received.

    Stops at an empty page; else when the server says there is no next page; else when the
    announced total is reached; with no metadata, at the first page shorter than `limit`.
    """

    limit: int
    offset_param: str = "offset"
    limit_param: str = "limit"
    first_offset: int = 0

    def __post_init__(self) -> None:
        _positive("limit", self.limit)

    def first_params(self, resume_after: str | None = None) -> dict[str, str]:
        offset = self.first_offset if resume_after is None else int(resume_after)
        return {self.offset_param: str(offset), self.limit_param: str(self.limit)}

    def next_params(self, sent: Mapping[str, str], page: PageInfo) -> dict[str, str] | None:
        offset = _read_int(sent, self.offset_param, self.first_offset)
        following = offset + page.record_count
        if page.record_count == 0 or page.has_next is False:
            return None
        if page.total_records is not None and page.has_next is None and following >= page.total_records:
            return None
        if page.has_next is None and page.total_records is None and page.record_count < self.limit:
            return None
        return {**sent, self.offset_param: str(following), self.limit_param: str(self.limit)}

    def position(self, sent: Mapping[str, str], page: PageInfo) -> str:
        """The offset of the first record after the completed page."""
        return str(_read_int(sent, self.offset_param, self.first_offset) + page.record_count)
