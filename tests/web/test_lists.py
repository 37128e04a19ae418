"""Server-side lists: search, sort and pages in the URL; bad values fall back, never a 500."""

from __future__ import annotations

import re

import pytest

from app.db.models import AggregationRun, Collection, LedgerAccount, LedgerKind, TrainedModel
from app.services.listing import ListSpec
from app.services.money import ledger
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool, make_project
from tests.builders.users import login, make_requester


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


def _links(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td><a href="[^"]+">([^<]+)</a>', body)


def test_projects_are_searched_sorted_and_paged(requester_client, session, requester):
    for n in range(30):
        make_project(session, requester, name=f"{'Birds' if n % 3 == 0 else 'Cars'} {n:02d}")

    home = requester_client.get("/requester")
    assert _links(home.text, "project-table")[:2] == ["Cars 29", "Cars 28"]
    assert len(_links(home.text, "project-table")) == 25 and "1–25 of 30" in home.text
    birds = requester_client.get("/requester?q=birds&sort=name&dir=asc")
    assert _links(birds.text, "project-table") == [f"Birds {n:02d}" for n in range(0, 30, 3)]
    assert "1–10 of 10" in birds.text
    assert requester_client.get("/requester?page=zz&sort=owner_id").status_code == 200


def test_a_requester_lists_only_their_own_projects_and_pools(requester_client, session, requester):
    other = make_requester(session)
    make_project(session, other, name="Secret project")
    mine = make_project(session, requester, name="Mine")
    theirs = make_project(session, other, name="Theirs")
    make_pool(session, other, project=theirs, name="Secret pool")

    assert "Secret project" not in requester_client.get("/requester?q=secret").text
    assert requester_client.get(f"/requester/projects/{theirs.id}?q=pool").status_code == 404
    assert "Secret pool" not in requester_client.get(f"/requester/projects/{mine.id}").text


def test_a_projects_pools_sort_by_price_and_page(requester_client, session, requester):
    project = make_project(session, requester, name="Pets")
    for n in range(12):
        make_pool(session, requester, project=project, name=f"Batch {n:02d}", reward_cents=n + 1)

    first = requester_client.get(f"/requester/projects/{project.id}?sort=price&per_page=10")
    assert _links(first.text, "pool-table") == [f"Batch {n:02d}" for n in range(11, 1, -1)]
    second = requester_client.get(f"/requester/projects/{project.id}?sort=price&per_page=10&page=2")
    assert _links(second.text, "pool-table") == ["Batch 01", "Batch 00"]
    found = requester_client.get(f"/requester/projects/{project.id}?q=batch+07")
    assert _links(found.text, "pool-table") == ["Batch 07"]


def test_a_pools_tasks_are_searched_paged_and_filtered_by_kind(
    requester_client, session, requester
):
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=60, control=["cat", "dog"])
    url = f"/requester/pools/{pool.id}/tasks"

    def shown(html):
        return [int(t) for t in re.findall(r'data-task="(\d+)"', html)]

    assert shown(requester_client.get(url).text) == [t.id for t in tasks[:48]]
    assert shown(requester_client.get(url + "?page=2").text) == [t.id for t in tasks[48:]]
    assert shown(requester_client.get(url + "?per_page=96").text) == [t.id for t in tasks]
    assert len(shown(requester_client.get(url + "?per_page=25").text)) == 48  # not offered
    control = requester_client.get(url + "?kind=control&sort=answer&dir=desc").text
    assert shown(control) == [tasks[61].id, tasks[60].id]
    found = requester_client.get(url, params={"q": tasks[7].image}).text
    assert shown(found) == [tasks[7].id]
    for query in ("page=abc", "page=-1", "kind=nonsense&sort=x&dir=y", "per_page=1e9"):
        response = requester_client.get(f"{url}?{query}")
        assert response.status_code == 200, query
        assert shown(response.text)[:1] == [tasks[0].id]


def _earn(session, labeler, assignment, cents):
    ledger.add_entry(
        session,
        user_id=labeler.id,
        account=LedgerAccount.BALANCE,
        kind=LedgerKind.EARNING,
        amount_cents=cents,
        assignment_id=assignment.id,
        memo=f"Suite {assignment.id}",
    )
    session.commit()


def test_labeler_earnings_sort_by_paid_and_search_pools(labeler_client, session, labeler):
    requester = make_requester(session)
    project = make_project(session, requester, name="Birds")
    for n, cents in enumerate((30, 10, 20)):
        pool = make_pool(session, requester, project=project, name=f"Flock {n}")
        task = add_tasks(session, pool, general=1)[0]
        (assignment,) = add_answers(session, pool, {task.id: [(labeler, "cat")]})
        _earn(session, labeler, assignment, cents)

    def pools(html):
        body = html.split('id="earned-suites"', 1)[1].split("</table>", 1)[0]
        return re.findall(r"<td>(Flock \d)</td>", body)

    by_paid = labeler_client.get("/labeler/earnings?sort=paid&dir=desc")
    assert pools(by_paid.text) == ["Flock 0", "Flock 2", "Flock 1"]
    assert pools(labeler_client.get("/labeler/earnings?sort=paid&dir=asc").text) == [
        "Flock 1",
        "Flock 2",
        "Flock 0",
    ]
    assert pools(labeler_client.get("/labeler/earnings?q=flock+2").text) == ["Flock 2"]


def test_labeler_money_movements_are_paged(labeler_client, session, labeler):
    requester = make_requester(session)
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=30)
    for n, task in enumerate(tasks):
        (assignment,) = add_answers(session, pool, {task.id: [(labeler, "cat")]})
        _earn(session, labeler, assignment, n + 1)

    first = labeler_client.get("/labeler/earnings?show=history")
    assert _amounts(first.text)[:2] == ["$0.30", "$0.29"] and "1–25 of 30" in first.text
    assert 'href="/labeler/earnings?page=2&amp;show=history"' in first.text
    second = labeler_client.get("/labeler/earnings?show=history&page=2")
    assert _amounts(second.text) == ["$0.05", "$0.04", "$0.03", "$0.02", "$0.01"]
    assert labeler_client.get("/labeler/earnings?show=../../etc&page=x").status_code == 200


def test_models_sort_by_accuracy_with_unmeasured_last_and_search(
    requester_client, session, requester
):
    other = make_requester(session)
    birds = Collection(owner_id=requester.id, name="Birds", classes=["a", "b"])
    cars = Collection(owner_id=requester.id, name="Cars", classes=["a", "b"])
    secret = Collection(owner_id=other.id, name="Secret", classes=["a", "b"])
    session.add_all([birds, cars, secret])
    session.commit()
    for collection, iteration, accuracy in (
        (birds, 1, 0.7),
        (birds, 2, None),
        (cars, 1, 0.9),
        (cars, 2, 0.8),
        (secret, 1, 0.99),
    ):
        metrics = {} if accuracy is None else {"accuracy": accuracy}
        session.add(
            TrainedModel(
                owner_id=collection.owner_id,
                collection_id=collection.id,
                iteration=iteration,
                arch="resnet18",
                metrics=metrics,
            )
        )
    session.commit()

    def accuracies(html):
        body = html.split('id="model-table"', 1)[1].split("</table>", 1)[0]
        return [cells[4] for cells in _cells(body)]

    best = requester_client.get("/requester/models?sort=accuracy")
    assert accuracies(best.text) == ["90.0%", "80.0%", "70.0%", "—"]
    worst = requester_client.get("/requester/models?sort=accuracy&dir=asc")
    assert accuracies(worst.text) == ["70.0%", "80.0%", "90.0%", "—"]
    assert accuracies(requester_client.get("/requester/models?q=cars").text) == ["80.0%", "90.0%"]
    assert "Secret" not in requester_client.get("/requester/models?q=secret").text


def test_collections_are_sorted_and_searched(requester_client, session, requester):
    for name in ("Zebras", "Apples", "Mangos"):
        session.add(Collection(owner_id=requester.id, name=name, classes=["a", "b"]))
    session.commit()

    def names(html):
        return re.findall(r'<tr data-collection="([^"]+)">', html)

    assert names(requester_client.get("/requester/collections").text) == [
        "Mangos",
        "Apples",
        "Zebras",
    ]
    by_name = requester_client.get("/requester/collections?sort=name&dir=asc").text
    assert names(by_name) == ["Apples", "Mangos", "Zebras"]
    assert names(requester_client.get("/requester/collections?q=ngo").text) == ["Mangos"]


def test_aggregation_runs_are_paged_newest_first(requester_client, make_client, session, requester):
    pool = make_pool(session, requester)
    for _ in range(12):
        session.add(AggregationRun(pool_id=pool.id, owner_id=requester.id, method="mv"))
    session.commit()
    url = f"/requester/pools/{pool.id}/aggregations"

    def runs(html):
        return [int(n) for n in re.findall(r'<tr data-run="(\d+)">', html)]

    first = requester_client.get(url + "?per_page=10")
    assert runs(first.text) == list(range(12, 2, -1))
    assert runs(requester_client.get(url + "?per_page=10&page=2").text) == [2, 1]
    other = login(make_client(), make_requester(session))
    assert other.get(url + "?page=2").status_code == 404


def _cells(body: str) -> list[list[str]]:
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
        if "<td" in r
    ]
