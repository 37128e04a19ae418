"""Labeler pages: available work, the suite page (HTMX), skip, bans, earnings, practice."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from app.db.models import Assignment, AssignmentTask, Ban, BanScope, Task, TaskKind
from app.db.types import utcnow
from app.services.money import ledger
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool

HTMX = {"HX-Request": "true"}
HINT = "Pointy ears mean cat."


def _pool(session, requester, *, general=6, control=("dog",), training=(), **fields):
    fields.setdefault("general_per_suite", 3)
    fields.setdefault("control_per_suite", 1)
    project = make_project(
        session, requester, instructions="Pick the **animal** you see.", name="Pets"
    )
    pool = make_pool(session, requester, project, public_description="Label pets", **fields)
    add_tasks(session, pool, general=general, control=control, training=training)
    return open_pool(session, requester, pool)


def _take(client, pool):
    response = client.post(f"/labeler/pools/{pool.id}/take", follow_redirects=False)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def _tasks_html(html: str) -> list[str]:
    return re.findall(r'<li class="suite-task.*?</li>', html, flags=re.S)


def test_available_work_shows_pool_price_size_and_instructions(session, requester, labeler_client):
    _pool(session, requester, reward_cents=25, general=7)
    html = labeler_client.get("/labeler").text
    assert "Pets" in html and "Label pets" in html and "$0.25 per suite" in html
    assert "4 tasks per suite" in html and "3 suites left for you" in html
    assert "<details" in html and "<strong>animal</strong>" in html


def test_suite_page_shows_every_task_with_image_options_and_timer(
    session, requester, labeler_client
):
    pool = _pool(session, requester)
    assignment_id = _take(labeler_client, pool)
    html = labeler_client.get(f"/labeler/assignments/{assignment_id}").text
    items = _tasks_html(html)
    assert len(items) == 4
    for position, item in enumerate(items):
        assert f'id="task-{position}"' in item and "<img" in item and "data-expand" in item
        assert item.count('type="radio"') == 3 and f'name="a{position}"' in item
    assert "data-timer-text" in html and "9:5" in html  # 10 min limit, just started
    assert "Skip suite" in html and "labeler.js" in html


def test_suite_page_never_reveals_control_tasks(session, requester, labeler_client):
    pool = _pool(session, requester, control=("bird",))
    assignment_id = _take(labeler_client, pool)
    html = labeler_client.get(f"/labeler/assignments/{assignment_id}").text
    lowered = html.lower()
    for word in ("control", "golden", "known", "training", "kind"):
        assert word not in lowered
    # Every task's markup is the same apart from its position and image.
    normalised = {re.sub(r'src="[^"]*"|\d+', "#", item) for item in _tasks_html(html)}
    assert len(normalised) == 1


def test_submit_with_missing_answers_marks_them_and_keeps_the_others(
    session, requester, labeler_client
):
    pool = _pool(session, requester)
    assignment_id = _take(labeler_client, pool)
    response = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit",
        data={"a0": "cat", "a2": "dog"},
        headers=HTMX,
    )
    assert response.status_code == 422
    items = _tasks_html(response.text)
    assert 'value="cat" checked' in items[0] and 'value="dog" checked' in items[2]
    assert "missing" in items[1] and "Task 2: choose an answer." in items[1]
    assert "missing" in items[3] and "missing" not in items[0].split(">", 1)[0]
    assert "2 task(s) have no answer yet." in response.text


def test_submit_loads_the_next_suite_in_place(session, requester, labeler, labeler_client):
    pool = _pool(session, requester, reward_cents=5)
    assignment_id = _take(labeler_client, pool)
    data = {f"a{i}": "cat" for i in range(4)}
    response = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit", data=data, headers=HTMX
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="suite"')  # a partial, no <html>
    assert "you earned $0.05" in response.text
    next_id = int(response.headers["HX-Push-Url"].rsplit("/", 1)[1])
    assert next_id != assignment_id and len(_tasks_html(response.text)) == 4
    assert ledger.get_balance(session, user=labeler) == 5
    # Two suites in (6 general tasks, 3 per suite), the pool has nothing left for this labeler.
    data = {f"a{i}": "dog" for i in range(4)}
    done = labeler_client.post(f"/labeler/assignments/{next_id}/submit", data=data, headers=HTMX)
    assert "no more tasks for you in this pool" in done.text


def test_skip_returns_to_available_work(session, requester, labeler_client):
    pool = _pool(session, requester)
    assignment_id = _take(labeler_client, pool)
    response = labeler_client.post(f"/labeler/assignments/{assignment_id}/skip")
    assert response.status_code == 200 and "Suite skipped" in response.text
    session.expire_all()
    assert session.get(Assignment, assignment_id).status == "skipped"


def test_expired_suite_page_offers_a_new_suite(session, requester, labeler_client):
    pool = _pool(session, requester)
    assignment_id = _take(labeler_client, pool)
    row = session.get(Assignment, assignment_id)
    row.expires_at = utcnow() - timedelta(seconds=5)
    session.add(row)
    session.commit()
    data = {f"a{i}": "cat" for i in range(4)}
    response = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit", data=data, headers=HTMX
    )
    assert response.status_code == 409
    assert "time for this suite ran out" in response.text and "Take a new suite" in response.text


def test_banned_labeler_sees_project_reason_and_end(session, requester, labeler, labeler_client):
    pool = _pool(session, requester)
    session.add(
        Ban(
            requester_id=requester.id,
            labeler_id=labeler.id,
            scope=BanScope.PROJECT,
            project_id=pool.project_id,
            private_comment="fast answers",
            public_comment="Please slow down and look at each image.",
            expires_at=utcnow() + timedelta(hours=5),
        )
    )
    session.commit()
    response = labeler_client.post(f"/labeler/pools/{pool.id}/take")
    assert response.status_code == 403
    assert "Please slow down and look at each image." in response.text
    assert "Pets" in response.text and "UTC" in response.text
    home = labeler_client.get("/labeler").text
    assert "Restrictions on your account" in home and "Please slow down" in home
    assert "fast answers" not in home + response.text


def test_earnings_history_and_withdraw(session, requester, labeler, labeler_client):
    pool = _pool(session, requester, reward_cents=150)
    assignment_id = _take(labeler_client, pool)
    labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit", data={f"a{i}": "cat" for i in range(4)}
    )
    page = labeler_client.get("/labeler/earnings").text
    assert "$1.50" in page and "Pets" in page and "accepted" in page
    too_much = labeler_client.post("/labeler/earnings/withdraw", data={"amount": "5.00"})
    assert too_much.status_code == 422 and "at most $1.50" in too_much.text
    bad = labeler_client.post("/labeler/earnings/withdraw", data={"amount": "lots"})
    assert bad.status_code == 422 and "like 12.50" in bad.text
    ok = labeler_client.post("/labeler/earnings/withdraw", data={"amount": "1.00"})
    assert ok.status_code == 200 and "$1.00 is on its way" in ok.text
    assert ledger.get_balance(session, user=labeler) == 50


def test_practice_task_shows_hint_only_after_a_wrong_answer(session, requester, labeler_client):
    pool = _pool(
        session, requester, general_per_suite=1, training_per_suite=1, training=[("cat", HINT)]
    )
    assignment_id = _take(labeler_client, pool)
    html = labeler_client.get(f"/labeler/assignments/{assignment_id}").text
    assert HINT not in html
    kinds = dict(
        session.exec(
            select(AssignmentTask.position, Task.kind)
            .join(Task)
            .where(AssignmentTask.assignment_id == assignment_id)
        ).all()
    )
    for position, kind in kinds.items():
        url = f"/labeler/assignments/{assignment_id}/check/{position}"
        wrong = labeler_client.post(url, data={"value": "bird"}, headers=HTMX)
        if kind == TaskKind.TRAINING:
            assert wrong.headers["X-Check"] == "wrong" and HINT in wrong.text
            right = labeler_client.post(url, data={"value": "cat"}, headers=HTMX)
            assert right.headers["X-Check"] == "right" and HINT not in right.text
        else:  # general and control answer alike: nothing
            assert wrong.headers["X-Check"] == "none" and wrong.text.strip() == ""


def test_a_draft_survives_a_refresh_and_keeps_only_real_options(
    session, requester, labeler_client, make_client
):
    pool = _pool(session, requester)
    assignment_id = _take(labeler_client, pool)
    saved = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/draft",
        data={"a0": "dog", "a2": "bird", "a1": "<unicorn>", "a99999": "cat"},
    )
    assert saved.status_code == 204
    items = _tasks_html(labeler_client.get(f"/labeler/assignments/{assignment_id}").text)
    checked = [re.findall(r'value="(\w+)" checked', item) for item in items]
    assert checked == [["dog"], [], ["bird"], []]
    from tests.builders.users import login, make_labeler

    other = login(make_client(), make_labeler(session))
    refused = other.post(f"/labeler/assignments/{assignment_id}/draft", data={"a0": "cat"})
    assert refused.status_code == 404


def test_a_submitted_suite_shows_as_submitted_and_takes_no_draft(
    session, requester, labeler_client
):
    pool = _pool(session, requester)
    assignment_id = _take(labeler_client, pool)
    page = f"/labeler/assignments/{assignment_id}"
    answers = {f"a{i}": "dog" for i in range(4)}
    assert labeler_client.post(page + "/submit", data=answers, headers=HTMX).status_code == 200
    again = labeler_client.get(page)
    assert again.headers["cache-control"] == "no-store"
    assert "Submit suite" not in again.text and "suite-form" not in again.text
    assert re.search(
        r'This suite is <span class="badge \w+">(accepted|submitted)</span>', again.text
    )
    late = labeler_client.post(page + "/draft", data={"a0": "cat"})
    assert late.status_code == 409


def test_the_last_labeler_of_a_pool_hears_it_is_finished(session, requester, labeler_client):
    pool = _pool(session, requester, general=3, control=(), overlap=1, control_per_suite=0)
    assignment_id = _take(labeler_client, pool)
    data = {f"a{i}": "cat" for i in range(3)}
    done = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit", data=data, headers=HTMX
    )
    assert "you earned" in done.text and "no more tasks in it" in done.text
    assert "does not exist" not in done.text


def test_the_site_has_a_favicon(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert 'rel="icon"' in client.get("/login").text


def test_a_captcha_page_stands_between_suites_and_never_shows_its_text(
    session, requester, labeler_client, monkeypatch
):
    from app.db.models import CaptchaChallenge
    from app.services.labeling import captchas

    monkeypatch.setattr(captchas, "new_text", lambda: "M4QZT")
    pool = _pool(
        session, requester, general=12, control=(), general_per_suite=5, control_per_suite=0,
        captcha_frequency="HIGH",
    )  # fmt: skip
    assignment_id = _take(labeler_client, pool)
    data = {f"a{i}": "cat" for i in range(5)}
    response = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit", data=data, headers=HTMX
    )
    captcha_url = f"http://testserver/labeler/pools/{pool.id}/captcha"
    assert response.headers["HX-Redirect"] == captcha_url
    taken = labeler_client.post(f"/labeler/pools/{pool.id}/take", follow_redirects=False)
    assert taken.headers["location"] == captcha_url  # no suite without the captcha

    page = labeler_client.get(captcha_url)
    assert page.status_code == 200 and "M4QZT" not in page.text
    (image_url,) = re.findall(r'src="([^"]+/image)"', page.text)
    assert labeler_client.get(image_url).headers["content-type"] == "image/png"
    captcha_id = int(re.search(r'name="captcha_id" value="(\d+)"', page.text).group(1))
    stored = session.get(CaptchaChallenge, captcha_id)
    assert "M4QZT" not in (stored.answer_hash + stored.salt)

    empty = labeler_client.post(captcha_url, data={"captcha_id": captcha_id, "answer": ""})
    assert empty.status_code == 422 and "Type the characters" in empty.text
    wrong = labeler_client.post(captcha_url, data={"captcha_id": captcha_id, "answer": "AAAAA"})
    assert "That was not the text in the picture." in wrong.text
    assert len(_tasks_html(wrong.text)) == 5  # and the next suite follows
    session.expire_all()
    assert session.get(CaptchaChallenge, captcha_id).solved is False
