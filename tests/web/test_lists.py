"""Server-side lists: search, sort and pages in the URL; bad values fall back, never a 500."""

from __future__ import annotations

import re

import pytest

from app.services.listing import ListSpec
from app.services.money import ledger


def _amounts(html: str) -> list[str]:
    if 'id="ledger"' not in html:
        return []
    body = html.split('id="ledger"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td class="num">([^<]+)</td>', body)


def _top_ups(session, requester, cents: list[int]) -> None:
    for n, amount in enumerate(cents):
        ledger.top_up(session, user=requester, amount_cents=amount, memo=f"Top-up #{n}")


def test_balance_history_is_paged_in_pages_of_25_newest_first(requester_client, session, requester):
    _top_ups(session, requester, [100 * (n + 1) for n in range(60)])
    first = requester_client.get("/requester/balance")
    assert first.status_code == 200
    assert _amounts(first.text)[:2] == ["$60.00", "$59.00"]
    assert len(_amounts(first.text)) == 25
    assert "1–25 of 60" in first.text
    third = requester_client.get("/requester/balance?page=3")
    assert _amounts(third.text) == [f"${n}.00" for n in range(10, 0, -1)]
    assert "51–60 of 60" in third.text


def test_balance_history_sorts_by_amount_and_searches_memos(requester_client, session, requester):
    _top_ups(session, requester, [500, 100, 900, 300])
    ascending = requester_client.get("/requester/balance?sort=amount&dir=asc")
    assert _amounts(ascending.text) == ["$1.00", "$3.00", "$5.00", "$9.00"]
    # The header now offers the other direction, keeping the rest of the state.
    assert 'href="/requester/balance?sort=amount&amp;dir=desc"' in ascending.text
    found = requester_client.get("/requester/balance?q=top-up+%232")
    assert _amounts(found.text) == ["$9.00"]
    nothing = requester_client.get("/requester/balance?q=zzz")
    assert "No money movements match" in nothing.text


def test_search_treats_like_wildcards_as_text(requester_client, session, requester):
    _top_ups(session, requester, [100, 200])
    response = requester_client.get("/requester/balance?q=%25")
    assert response.status_code == 200
    assert _amounts(response.text) == []


@pytest.mark.parametrize(
    "query",
    [
        "sort=password_hash",
        "sort=amount;DROP TABLE user",
        "dir=sideways",
        "page=abc",
        "page=-4",
        "page=0",
        "page=99999999999999999999999",
        "per_page=0",
        "per_page=100000",
        "per_page=x",
        "q=" + "a" * 5000,
        "q=%00",
        "sort=&dir=&page=&per_page=",
    ],
)
def test_bad_list_parameters_fall_back_to_defaults(requester_client, session, requester, query):
    _top_ups(session, requester, [100, 200, 300])
    response = requester_client.get(f"/requester/balance?{query}")
    assert response.status_code == 200
    if "q=" not in query:
        assert _amounts(response.text) == ["$3.00", "$2.00", "$1.00"]


def test_a_page_past_the_end_shows_the_last_page(requester_client, session, requester):
    _top_ups(session, requester, [100 * (n + 1) for n in range(30)])
    response = requester_client.get("/requester/balance?page=40")
    assert response.status_code == 200
    assert _amounts(response.text) == [f"${n}.00" for n in range(5, 0, -1)]
    assert 'aria-current="page">2<' in response.text


def test_clean_keeps_known_values_and_replaces_unknown_ones():
    spec = ListSpec(sorts={"a": None, "b": None}, default_sort="a", default_dir="desc", search=(1,))
    assert spec.clean(sort="b", dir="asc", page="3", per_page="50").__dict__ == {
        "q": "",
        "sort": "b",
        "dir": "asc",
        "page": 3,
        "per_page": 50,
    }
    cleaned = spec.clean(q="  two   words ", sort="zzz", dir="asc", page="x", per_page="7")
    assert (cleaned.q, cleaned.sort, cleaned.dir, cleaned.page, cleaned.per_page) == (
        "two words",
        "a",
        "desc",
        1,
        25,
    )
