"""Server-side lists: search, sort and one page of rows, filtered, counted and cut in SQL.

A list declares a ``ListSpec`` (which columns sort, which are searched, the default order);
a request's raw ``q``, ``sort``, ``dir``, ``page``, ``per_page`` are cleaned against it into
``ListParams`` (anything unknown or malformed falls back to a default, never an error), and
``paginate`` runs the statement with ``LIMIT``/``OFFSET`` and one ``COUNT``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlmodel import Session

PER_PAGE_CHOICES = (10, 25, 50, 100)
MAX_PAGE = 1_000_000
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class ListParams:
    """One cleaned list state: search text, sort key and direction, page and page size."""

    q: str = ""
    sort: str = ""
    dir: str = "asc"
    page: int = 1
    per_page: int = 25

    @property
    def offset(self) -> int:
        """Rows skipped before this page."""
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class ListSpec:
    """What a list allows: sortable columns by key (a column or a tuple of them), searched
    columns, ``tiebreak`` columns that make the order total, defaults; keys in ``nulls_last``
    put empty values last in both directions."""

    sorts: Mapping[str, Any]
    default_sort: str
    default_dir: str = "asc"
    search: Sequence[Any] = ()
    tiebreak: Sequence[Any] = ()
    per_page: int = 25
    first_dirs: Mapping[str, str] = field(default_factory=dict)
    nulls_last: Sequence[str] = ()
    per_page_choices: Sequence[int] = PER_PAGE_CHOICES

    def first_dir(self, key: str) -> str:
        """The direction a column sorts in when first clicked (dates and amounts: desc)."""
        if key == self.default_sort:
            return self.default_dir
        return self.first_dirs.get(key, "asc")

    def clean(
        self,
        *,
        q: str | None = None,
        sort: str | None = None,
        dir: str | None = None,
        page: str | int | None = None,
        per_page: str | int | None = None,
    ) -> ListParams:
        """Raw query values made safe: an unknown sort, a bad page or size -> the default."""
        # Control characters (NUL among them) cannot be in the data and PostgreSQL refuses them.
        printable = "".join(ch if ch.isprintable() else " " for ch in (q or "")[:MAX_QUERY_CHARS])
        text = " ".join(printable.split()) if self.search else ""
        key = sort if sort in self.sorts else self.default_sort
        if dir in ("asc", "desc") and sort in self.sorts:
            direction = dir
        else:
            direction = self.first_dir(key)
        size = _int(per_page, self.per_page)
        if size not in self.per_page_choices and size != self.per_page:
            size = self.per_page
        number = min(max(_int(page, 1), 1), MAX_PAGE)
        return ListParams(q=text, sort=key, dir=direction, page=number, per_page=size)


def _int(value: str | int | None, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class Page:
    """One page of a list, with the cleaned state it was cut with and the total count."""

    items: list
    total: int
    params: ListParams
    spec: ListSpec

    @property
    def pages(self) -> int:
        """How many pages the whole list has (at least one)."""
        return max(1, -(-self.total // self.params.per_page))

    @property
    def first_index(self) -> int:
        """1-based number of the first row shown (0 when empty)."""
        return self.params.offset + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        """1-based number of the last row shown."""
        return self.params.offset + len(self.items)


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards escaped (``\\`` is the escape character)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_clause(columns: Sequence[Any], text: str):
    """Any of ``columns`` contains ``text``, case-insensitively."""
    pattern = like_pattern(text)
    return or_(*(func.lower(column).like(pattern.lower(), escape="\\") for column in columns))


def _order(spec: ListSpec, params: ListParams) -> list:
    sort = spec.sorts[params.sort]
    columns = list(sort) if isinstance(sort, tuple | list) else [sort]
    order = [c.desc() if params.dir == "desc" else c.asc() for c in columns]
    if params.sort in spec.nulls_last:
        order = [o.nulls_last() for o in order]
    return order + [t.desc() if params.dir == "desc" else t.asc() for t in spec.tiebreak]


def paginate(
    session: Session,
    statement: Select,
    *,
    spec: ListSpec,
    params: ListParams,
    row: Callable[[Any], Any] | None = None,
) -> Page:
    """Search, count, sort and cut ``statement``; a page past the end becomes the last page.

    ``row`` maps each result row; a one-entity statement yields the entity itself.
    """
    if params.q and spec.search:
        statement = statement.where(search_clause(spec.search, params.q))
    total = int(
        session.execute(
            select(func.count()).select_from(statement.order_by(None).subquery())
        ).scalar_one()
    )
    last = max(1, -(-total // params.per_page))
    if params.page > last:
        params = replace(params, page=last)
    statement = (
        statement.order_by(None)
        .order_by(*_order(spec, params))
        .limit(params.per_page)
        .offset(params.offset)
    )
    result = session.execute(statement)
    single = len(statement.column_descriptions) == 1
    items = list(result.scalars()) if single else list(result)
    if row is not None:
        items = [row(item) for item in items]
    return Page(items=items, total=total, params=params, spec=spec)
