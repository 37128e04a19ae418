"""Jinja2 set-up and the one render helper: the partial for HTMX, the page otherwise."""

from __future__ import annotations

import threading
from datetime import datetime
from functools import lru_cache
from typing import Any

import nh3
from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.datastructures import URL, URLPath
from starlette.responses import Response

from app.security import CSRF_SESSION_KEY, new_csrf_token
from app.settings import REPO_ROOT

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown_safe(text: str | None) -> Markup:
    """Render Markdown to HTML with raw HTML disabled and the output sanitised."""
    html = _markdown.render(text or "")
    return Markup(nh3.clean(html, link_rel="noopener noreferrer nofollow"))


def money(cents: int | None) -> str:
    """Format cents as dollars with two decimals."""
    cents = int(cents or 0)
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def when(value: datetime | None) -> str:
    """A short UTC timestamp."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def percent(value: float | None, digits: int = 0) -> str:
    """A fraction in [0, 1] as a percentage."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not token:
        token = new_csrf_token()
        request.session[CSRF_SESSION_KEY] = token
    return token


def flash(request: Request, message: str, category: str = "info") -> None:
    """Queue a message for the next rendered page."""
    request.session.setdefault("_flashes", [])
    request.session["_flashes"] = [*request.session["_flashes"], [category, message]]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    """Take the queued messages."""
    return [tuple(item) for item in request.session.pop("_flashes", [])]


# Resolving a route's name walks the app's routes (several hundred, each refusing with an
# exception) and a page names forty or so: most of a page's rendering time. Routes do not
# change once the app is built, so each router keeps the paths it resolved, by name and
# parameters (a page's are mostly the same from one request to the next).
_URL_PATHS_ATTRIBUTE = "_crowdlab_url_paths"
_URL_PATHS_LOCK = threading.Lock()
MAX_URL_PATHS = 20_000  # per router; then it starts afresh


def url_path(router: Any, name: str, /, **path_params: Any) -> URLPath:
    """``router.url_path_for(name, **path_params)``, remembered."""
    try:
        key = (name, *sorted(path_params.items()))
        hash(key)
    except TypeError:  # an unhashable or unsortable parameter: resolve it every time
        return router.url_path_for(name, **path_params)
    with _URL_PATHS_LOCK:
        paths = getattr(router, _URL_PATHS_ATTRIBUTE, None)
        if paths is None:
            paths = {}
            setattr(router, _URL_PATHS_ATTRIBUTE, paths)
        found = paths.get(key)
    if found is None:
        found = router.url_path_for(name, **path_params)
        with _URL_PATHS_LOCK:
            if len(paths) >= MAX_URL_PATHS:
                paths.clear()
            paths[key] = found
    return found


@pass_context
def url_for(context: dict[str, Any], name: str, /, **path_params: Any) -> URL:
    """Starlette's template ``url_for`` (an absolute URL), with the path remembered."""
    request: Request = context["request"]
    router = request.scope.get("router") or request.scope.get("app")
    return url_path(router, name, **path_params).make_absolute_url(base_url=request.base_url)


@lru_cache
def get_templates() -> Jinja2Templates:
    """The template environment with our filters and globals."""
    templates = Jinja2Templates(directory=str(REPO_ROOT / "templates"))
    env = templates.env
    env.globals["url_for"] = url_for
    env.filters["markdown"] = markdown_safe
    env.filters["money"] = money
    env.filters["when"] = when
    env.filters["percent"] = percent
    env.globals["csrf_token"] = csrf_token
    env.globals["pop_flashes"] = pop_flashes
    return templates


def is_htmx(request: Request) -> bool:
    """Whether the request came from htmx (and wants a partial)."""
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render ``partial`` for an htmx request (when given), ``template`` otherwise."""
    name = partial if partial and is_htmx(request) else template
    ctx = {"user": getattr(request.state, "user", None), **(context or {})}
    return get_templates().TemplateResponse(
        request, name, ctx, status_code=status_code, headers=headers
    )
