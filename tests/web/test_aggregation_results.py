"""The per-image results view of an aggregation run: labels, confidence, who answered what,
filters, sorting and pages; only the pool's owner sees it."""

from __future__ import annotations

import re
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from app.db.models import AggregationRun
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import login, make_labeler, make_requester


@pytest.fixture
def pool(session, requester):
    pool = make_pool(session, requester, name="Cats and dogs")
    tasks = add_tasks(session, pool, general=3, control=["cat"])
    ann, bob, cid = (make_labeler(session, name=n) for n in ("Ann", "Bob", "Cid"))
    add_answers(
        session,
        pool,
        {
            tasks[0].id: [(ann, "cat"), (bob, "cat"), (cid, "cat")],
            tasks[1].id: [(ann, "dog"), (bob, "dog"), (cid, "cat")],
            tasks[3].id: [(ann, "cat"), (bob, "cat"), (cid, "dog")],
        },
    )
    return SimpleNamespace(id=pool.id, tasks=tasks)


def _run(client, pool) -> str:
    response = client.post(
        f"/requester/pools/{pool.id}/aggregations",
        data={"method": "mv", "use_known": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return urlsplit(response.headers["location"]).path + "/results"


def _rows(html: str) -> dict[int, str]:
    """Each task row's HTML by task id, links unwrapped (``<a …>Ann</a>`` -> ``Ann``)."""
    found = re.findall(r'<tr data-task="(\d+)">(.*?)</tr>', html, re.S)
    return {int(task): re.sub(r"<a [^>]*>|</a>", "", row) for task, row in found}


def test_results_show_each_image_with_label_confidence_and_answers_by_name(requester_client, pool):
    html = requester_client.get(_run(requester_client, pool)).text

    rows = _rows(html)
    assert list(rows) == [t.id for t in pool.tasks[:3]]  # general tasks, in task order
    first, second, unanswered = (rows[t.id] for t in pool.tasks[:3])
    assert pool.tasks[0].image in first and "data-label>cat<" in first
    assert 'data-confidence="1.0000"' in first and "split" not in first
    assert "Ann: cat" in first and "Bob: cat" in first and "Cid: cat" in first
    assert "data-label>dog<" in second and "split" in second
    assert "<strong>dog</strong> 2 · <strong>cat</strong> 1" in second
    assert "Cid: cat" in second
    assert "no label" in unanswered and "no answers" in unanswered


def test_confidence_below_disagreement_and_label_filters(requester_client, pool):
    url = _run(requester_client, pool)

    low = _rows(requester_client.get(url + "?below=70").text)
    assert list(low) == [pool.tasks[1].id]
    assert (
        list(_rows(requester_client.get(url + "?below=100").text))
        == [
            pool.tasks[0].id,
            pool.tasks[1].id,
        ][1:]
    )  # 1.0 is not below 100 %
    split = _rows(requester_client.get(url + "?disagreement=1").text)
    assert list(split) == [pool.tasks[1].id]
    cats = _rows(requester_client.get(url + "?label=cat").text)
    assert list(cats) == [pool.tasks[0].id]
    none = requester_client.get(url + "?label=dog&below=50")
    assert _rows(none.text) == {} and "No images match" in none.text


def test_control_tasks_show_their_known_answer_and_who_missed_it(requester_client, pool):
    url = _run(requester_client, pool)

    html = requester_client.get(url + "?control=1").text
    rows = _rows(html)

    assert list(rows) == [pool.tasks[3].id]
    row = rows[pool.tasks[3].id]
    assert "data-label>cat<" in row and "known" in row
    assert '<li class="wrong">Cid: dog ✗</li>' in row and "<li>Ann: cat</li>" in row
    assert f"/requester/pools/{pool.id}/labelers/" in html  # each name leads to the labeler


def test_sorting_by_confidence_puts_the_least_confident_first_and_unlabelled_last(
    requester_client, pool
):
    url = _run(requester_client, pool)

    ascending = list(_rows(requester_client.get(url + "?sort=confidence&dir=asc").text))
    descending = list(_rows(requester_client.get(url + "?sort=confidence&dir=desc").text))

    ids = [t.id for t in pool.tasks]
    assert ascending == [ids[1], ids[0], ids[2]]
    assert descending == [ids[0], ids[1], ids[2]]


def test_results_are_paged_and_filters_survive_paging(requester_client, session, requester):
    pool = make_pool(session, requester, name="Many")
    tasks = add_tasks(session, pool, general=30)
    ann, bob = make_labeler(session, name="Ann"), make_labeler(session, name="Bob")
    add_answers(session, pool, {t.id: [(ann, "cat"), (bob, "dog")] for t in tasks})
    url = _run(requester_client, SimpleNamespace(id=pool.id))

    first = requester_client.get(url + "?disagreement=1")
    assert len(_rows(first.text)) == 25 and "1–25 of 30" in first.text
    assert 'href="' + url + '?page=2&amp;disagreement=1"' in first.text
    second = requester_client.get(url + "?page=2&disagreement=1")
    assert list(_rows(second.text)) == [t.id for t in tasks[25:]]


@pytest.mark.parametrize(
    "query",
    ["below=abc", "below=-5", "below=250", "below=nan", "label=%3Cscript%3E", "sort=image;--"],
)
def test_bad_filters_are_ignored_with_a_message_not_an_error(requester_client, pool, query):
    url = _run(requester_client, pool)

    response = requester_client.get(f"{url}?{query}")

    assert response.status_code == 200
    assert list(_rows(response.text)) == [t.id for t in pool.tasks[:3]]
    if query.startswith("below"):
        assert "give a percentage from 1 to 100" in response.text
    assert "<script>" not in response.text


def test_another_requesters_run_is_404(requester_client, pool, make_client, session):
    url = _run(requester_client, pool)
    other = login(make_client(), make_requester(session))

    assert other.get(url).status_code == 404
    assert other.get(url + "?control=1&below=50").status_code == 404
    assert other.get(f"/requester/pools/{pool.id}/results").status_code == 404
    assert "Ann" not in other.get(url).text


def test_a_run_of_another_pool_is_404_under_this_pool(requester_client, pool, session, requester):
    url = _run(requester_client, pool)
    second = make_pool(session, requester, name="Second")
    run_id = url.rsplit("/", 2)[-2]

    response = requester_client.get(f"/requester/pools/{second.id}/aggregations/{run_id}/results")

    assert response.status_code == 404


def test_linked_from_the_aggregation_and_the_pool_page(requester_client, pool):
    url = _run(requester_client, pool)
    detail = requester_client.get(url.rsplit("/results", 1)[0]).text
    assert f'href="http://testserver{url}"' in detail and "Browse results" in detail
    pool_page = requester_client.get(f"/requester/pools/{pool.id}").text
    latest = f"/requester/pools/{pool.id}/results"
    assert f'href="http://testserver{latest}"' in pool_page
    response = requester_client.get(latest, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].endswith(url)


def test_the_pool_results_link_without_a_finished_run_goes_to_aggregation(requester_client, pool):
    response = requester_client.get(f"/requester/pools/{pool.id}/results", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/requester/pools/{pool.id}/aggregations")


def test_results_of_an_unfinished_run_say_so(requester_client, session, requester):
    pool = make_pool(session, requester)
    run = AggregationRun(pool_id=pool.id, owner_id=requester.id, method="mv", status="running")
    session.add(run)
    session.commit()

    response = requester_client.get(f"/requester/pools/{pool.id}/aggregations/{run.id}/results")

    assert response.status_code == 409
    assert "has not finished yet" in response.text
