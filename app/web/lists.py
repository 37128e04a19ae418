"""Server-side lists on pages: read ``q``/``sort``/``dir``/``page``/``per_page`` from the URL
and build the links of the search box, the sortable headers and the pager.

Every state is a plain URL (works without JS, survives reload and Back); htmx swaps only
the list's region (``hx-select`` on the full page), see ``templates/components/_list.html``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from fastapi import Request

from app.services.listing import ListParams, ListSpec, Page

LIST_KEYS = ("q", "sort", "dir", "page", "per_page")


def list_params(request: Request, spec: ListSpec) -> ListParams:
    """The request's list state, cleaned against ``spec`` (bad values -> defaults)."""
    query = request.query_params
    return spec.clean(**{key: query.get(key) for key in LIST_KEYS})


class ListView:
    """One list on a page: its page of rows and the URL of every neighbouring state."""

    def __init__(
        self,
        request: Request,
        page: Page,
        *,
        target: str = "list",
        filters: Mapping[str, str | None] | None = None,
        path: str | None = None,
    ) -> None:
        # A page re-rendered after a form post (errors) passes the path of its GET route.
        self.path = path or request.url.path
        self.page = page
        self.items = page.items
        self.params = page.params
        self.spec = page.spec
        self.target = target
        self.filters = {k: str(v) for k, v in (filters or {}).items() if v not in (None, "")}
        self.per_page_choices = sorted({*self.spec.per_page_choices, self.spec.per_page})

    @property
    def worth_searching(self) -> bool:
        """Whether to offer the search box: more rows than the smallest page, or a search on."""
        return bool(self.params.q) or self.page.total > self.per_page_choices[0]

    def state(self, **changes) -> dict[str, str]:
        """The query parameters of this state with ``changes``, defaults left out."""
        params = self.params
        values = {
            "q": params.q,
            "sort": params.sort,
            "dir": params.dir,
            "page": params.page,
            "per_page": params.per_page,
            **self.filters,
        }
        values.update(changes)
        if values["sort"] == self.spec.default_sort and values["dir"] == self.spec.default_dir:
            values.pop("sort")
            values.pop("dir")
        if str(values.get("page")) == "1":
            values.pop("page")
        if str(values.get("per_page")) == str(self.spec.per_page):
            values.pop("per_page")
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def href(self, **changes) -> str:
        """This page's URL in the state with ``changes``."""
        query = urlencode(self.state(**changes))
        return f"{self.path}?{query}" if query else self.path

    def sort_href(self, key: str) -> str:
        """Sort by ``key``: the other direction when it is the current sort; back to page 1."""
        if key == self.params.sort:
            direction = "asc" if self.params.dir == "desc" else "desc"
        else:
            direction = self.spec.first_dir(key)
        return self.href(sort=key, dir=direction, page=1)

    def sort_dir(self, key: str) -> str | None:
        """``asc``/``desc`` when the list is sorted by ``key``."""
        return self.params.dir if key == self.params.sort else None

    def page_href(self, number: int) -> str:
        """The URL of page ``number``."""
        return self.href(page=number)

    def size_href(self, size: int) -> str:
        """The URL with ``size`` rows a page, from the first page."""
        return self.href(per_page=size, page=1)

    def page_numbers(self, around: int = 2) -> list[int | None]:
        """Pages to link: the first, the last and a window around the current (None: a gap)."""
        last, current = self.page.pages, self.params.page
        shown = sorted({1, last, *range(max(1, current - around), min(last, current + around) + 1)})
        numbers: list[int | None] = []
        for number in shown:
            if numbers and number - (numbers[-1] or 0) > 1:
                numbers.append(None)
            numbers.append(number)
        return numbers

    def hidden(self, *, filters: bool = True) -> list[tuple[str, str]]:
        """The state a search or filter form must carry along (never ``q`` and ``page``)."""
        state = self.state()
        state.pop("q", None)
        state.pop("page", None)
        if not filters:
            for key in self.filters:
                state.pop(key, None)
        return list(state.items())
