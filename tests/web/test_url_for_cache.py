"""Pages resolve route names through a remembered ``url_for``: each pool's page links to
that pool, not to the first one rendered, and a wrong name still fails loudly."""

from __future__ import annotations

import pytest
from starlette.routing import NoMatchFound

from app.web.templating import url_path
from tests.builders.pools import make_pool


def test_each_pool_page_links_to_its_own_pool(requester_client, session, requester):
    first, second = make_pool(session, requester), make_pool(session, requester)
    for pool, other in ((first, second), (second, first)):
        page = requester_client.get(f"/requester/pools/{pool.id}")
        assert page.status_code == 200
        assert f'/requester/pools/{pool.id}/edit"' in page.text
        assert f'/requester/pools/{other.id}/edit"' not in page.text


def test_a_remembered_path_matches_the_router_and_unknown_names_still_fail(app):
    assert url_path(app.router, "pools:detail", pool_id=7) == "/requester/pools/7"
    assert url_path(app.router, "pools:detail", pool_id=7) == "/requester/pools/7"
    assert url_path(app.router, "pools:detail", pool_id=8) == "/requester/pools/8"
    with pytest.raises(NoMatchFound):
        url_path(app.router, "pools:no-such-page", pool_id=7)
