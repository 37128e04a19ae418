"""Requester pages: run an aggregation, follow it, read its figures, download its TSV."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

import pytest
from sqlmodel import select

from app.db.models import AggregationRun
from app.services.jobs.records import create_job
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import login, make_labeler, make_requester


@pytest.fixture
def pool(session, requester):
    pool = make_pool(session, requester, name="Cats and dogs")
    tasks = add_tasks(session, pool, general=3, control=["cat"])
    people = [make_labeler(session, name=f"worker{i}") for i in range(3)]
    add_answers(
        session,
        pool,
        {
            tasks[0].id: [(p, "cat") for p in people],
            tasks[1].id: [(people[0], "dog"), (people[1], "dog"), (people[2], "cat")],
            tasks[3].id: [(p, "cat") for p in people],
        },
    )
    return SimpleNamespace(id=pool.id, tasks=tasks)


def _start(client, pool, method="ds"):
    return client.post(
        f"/requester/pools/{pool.id}/aggregations",
        data={"method": method, "use_known": "1"},
        follow_redirects=False,
    )


def test_the_form_offers_every_method_with_auto_preselected(requester_client, pool):
    html = requester_client.get(f"/requester/pools/{pool.id}/aggregations").text

    assert "Run aggregation" in html
    assert re.search(r'<option value="auto" selected>Auto', html)
    for name in ("Dawid-Skene", "Majority vote", "One-coin Dawid-Skene", "GLAD", "Wawa"):
        assert name in html
    assert "No aggregations yet" in html


def test_running_an_aggregation_shows_its_figures_and_lists_it(requester_client, pool):
    response = _start(requester_client, pool)

    assert response.status_code == 303
    detail = requester_client.get(response.headers["location"])
    html = detail.text
    assert "Dawid-Skene aggregation" in html and "succeeded" in html
    assert "Download TSV" in html
    assert 'class="bars"' in html and "0.9–1" in html
    assert pool.tasks[2].image in html  # the unanswered task is listed
    assert html.count('data-labeler="') == 3 and "worker0" in html
    assert "Control accuracy" in html and "(1/1)" in html
    listing = requester_client.get(f"/requester/pools/{pool.id}/aggregations").text
    row = re.search(r'<tr data-run="\d+">(.*?)</tr>', listing, re.S).group(1)
    assert "Dawid-Skene" in row and "succeeded" in row and "Download TSV" in row
    assert re.search(r'<td class="num">3</td>\s*<td class="num">1</td>', row)
    assert "%" in row  # mean confidence


def test_downloads_are_tsv_with_one_row_per_answered_task(requester_client, pool, session):
    location = _start(requester_client, pool, method="mv").headers["location"]

    response = requester_client.get(location + "/results.tsv")

    assert response.headers["content-type"].startswith("text/tab-separated-values")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text), delimiter="\t"))
    assert rows == [
        ["INPUT:image", "OUTPUT:result", "CONFIDENCE:result"],
        [pool.tasks[0].image, "cat", "1"],
        [pool.tasks[1].image, "dog", "0.6667"],
    ]
    unanswered = requester_client.get(location + "/unanswered.tsv").text
    assert unanswered.splitlines() == ["INPUT:image", pool.tasks[2].image]


def test_an_unknown_method_shows_an_inline_error_and_keeps_the_form(
    requester_client, pool, session
):
    response = _start(requester_client, pool, method="magic")

    assert response.status_code == 422
    assert 'role="alert"' in response.text and "Choose one of" in response.text
    assert session.exec(select(AggregationRun)).all() == []


def test_a_running_aggregation_shows_a_polling_progress_bar(
    requester_client, pool, session, requester
):
    job = create_job(session, kind="aggregation", owner=requester, payload={"run_id": 0})
    run = AggregationRun(pool_id=pool.id, owner_id=requester.id, method="ds", job_id=job.id)
    session.add(run)
    session.commit()

    html = requester_client.get(f"/requester/pools/{pool.id}/aggregations/{run.id}").text

    assert f'hx-get="/jobs/{job.id}/progress"' in html
    assert 'hx-trigger="job-done from:body"' in html
    assert "Download TSV" not in html


def test_another_requester_gets_404_for_the_pool_and_its_runs(
    requester_client, pool, session, make_client
):
    location = _start(requester_client, pool).headers["location"]
    other = login(make_client(), make_requester(session))

    assert other.get(f"/requester/pools/{pool.id}/aggregations").status_code == 404
    assert _start(other, pool).status_code == 404
    assert other.get(location).status_code == 404
    assert other.get(location + "/results.tsv").status_code == 404
    assert other.get(location + "/unanswered.tsv").status_code == 404


def test_labelers_cannot_open_the_aggregation_pages(labeler_client, pool):
    assert labeler_client.get(f"/requester/pools/{pool.id}/aggregations").status_code == 403


def test_an_auto_run_shows_the_method_used_and_that_confidence_is_uncalibrated(
    requester_client, pool
):
    location = _start(requester_client, pool, method="auto").headers["location"]

    html = requester_client.get(location).text

    assert 'id="calibration"' in html and "Method used: <strong>bds</strong>" in html
    assert "uncalibrated" in html  # one control task is too few to calibrate on
    assert "Estimated labeler accuracy" in html and "95% interval" in html


def test_a_dawid_skene_run_says_its_confidence_is_uncalibrated_and_why(requester_client, pool):
    location = _start(requester_client, pool, method="ds").headers["location"]

    html = requester_client.get(location).text

    assert "uncalibrated" in html and "only the Auto" in html
    assert "reliability" not in html


def test_with_enough_control_tasks_auto_shows_a_reliability_diagram_and_its_scores(
    requester_client, session, requester
):
    pool = make_pool(session, requester, name="Calibrated")
    control = ["cat", "dog"] * 8
    tasks = add_tasks(session, pool, general=20, control=control)
    people = [make_labeler(session, name=f"labeler{i}") for i in range(4)]
    answers = {}
    for i, task in enumerate(tasks):
        truth = task.known_answer or ("cat" if i % 2 else "dog")
        wrong = "dog" if truth == "cat" else "cat"
        answers[task.id] = [(p, wrong if (i + j) % 5 == 0 else truth) for j, p in enumerate(people)]
    add_answers(session, pool, answers)
    location = _start(requester_client, SimpleNamespace(id=pool.id), method="auto").headers[
        "location"
    ]

    html = requester_client.get(location).text

    assert 'id="calibration"' in html and "calibrated on 16 control tasks" in html
    assert 'class="reliability"' in html and "<circle" in html
    assert "held-out accuracy" in html and "✓" in html
