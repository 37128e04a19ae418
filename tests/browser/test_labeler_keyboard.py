"""A labeler works through suites with the keyboard only, in a real browser."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Answer, AssignmentTask
from tests.browser.conftest import log_in
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler


def test_keys_pick_answers_enter_submits_and_next_suite_loads_in_place(session, requester, page):
    pool = make_pool(session, requester, general_per_suite=3, control_per_suite=1)
    add_tasks(session, pool, general=9, control=["dog"])
    open_pool(session, requester, pool)
    labeler = make_labeler(session)
    log_in(page, labeler.email)
    page.goto("/labeler")
    page.click("text=Start labeling")
    page.wait_for_selector("#task-0:focus")
    first_url = page.url
    page.evaluate("window.__sameDocument = true")

    page.keyboard.press("1")  # task 1 → cat, focus moves to task 2
    page.wait_for_selector("#task-1:focus")
    page.keyboard.press("2")  # task 2 → dog
    page.keyboard.press("3")  # task 3 → bird, focus on task 4
    page.wait_for_selector("#task-3:focus")
    page.keyboard.press("Enter")  # task 4 unanswered: shown in place, nothing sent
    page.wait_for_selector("#task-3.missing")
    assert "Task 4" in page.inner_text("[data-missing]")
    assert page.is_checked("#task-0 input[value=cat]")
    assert page.is_checked("#task-2 input[value=bird]")

    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=you earned $0.05")
    page.wait_for_selector("#task-0:focus")
    assert page.url != first_url and "/labeler/assignments/" in page.url
    assert page.evaluate("window.__sameDocument") is True  # no full reload
    assert page.locator(".suite-task").count() == 4
    assert page.locator("[data-timer-text]").inner_text().startswith(("9:", "10:"))

    first_id = int(first_url.rsplit("/", 1)[1])
    by_position = dict(
        session.exec(
            select(AssignmentTask.position, Answer.value)
            .join(
                Answer,
                (Answer.task_id == AssignmentTask.task_id)
                & (Answer.assignment_id == AssignmentTask.assignment_id),
            )
            .where(AssignmentTask.assignment_id == first_id)
        ).all()
    )
    assert by_position == {0: "cat", 1: "dog", 2: "bird", 3: "dog"}


def test_practice_task_hint_after_wrong_key_then_asks_again(session, requester, page):
    pool = make_pool(
        session, requester, general_per_suite=0, control_per_suite=0, training_per_suite=1
    )
    add_tasks(session, pool, training=[("cat", "Cats have pointy ears.")])
    open_pool(session, requester, pool)
    labeler = make_labeler(session)
    log_in(page, labeler.email)
    page.goto("/labeler")
    page.click("text=Start labeling")
    page.wait_for_selector("#task-0:focus")
    assert "pointy ears" not in page.content()
    page.keyboard.press("2")  # dog: wrong
    page.wait_for_selector("text=Cats have pointy ears.")
    assert not page.is_checked("#task-0 input[value=dog]")
    page.keyboard.press("1")  # cat: right
    page.wait_for_selector("#task-0 .check.right")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=you earned")


def test_refresh_keeps_the_chosen_answers_and_back_shows_the_suite_submitted(
    session, requester, page
):
    pool = make_pool(session, requester, general_per_suite=3, control_per_suite=0)
    add_tasks(session, pool, general=9)
    open_pool(session, requester, pool)
    log_in(page, make_labeler(session).email)
    page.goto("/labeler")
    page.click("text=Start labeling")
    page.wait_for_selector("#task-0:focus")
    page.keyboard.press("2")  # dog
    page.wait_for_selector("#task-1:focus")
    page.keyboard.press("3")  # bird
    page.wait_for_selector("#task-2:focus")
    page.wait_for_load_state("networkidle")  # the draft has been saved
    suite_url = page.url
    page.reload()
    page.wait_for_selector("#task-2:focus")  # the first unanswered task
    assert page.is_checked("#task-0 input[value=dog]")
    assert page.is_checked("#task-1 input[value=bird]")

    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=you earned")
    assert page.url != suite_url
    page.go_back()
    page.wait_for_url(suite_url)
    page.wait_for_selector("text=This suite is")
    assert page.locator("#suite-form").count() == 0
    assert page.locator("button:has-text('Submit suite')").count() == 0


def test_the_key_of_a_digit_option_is_that_digit(session, requester, page):
    from tests.builders.pools import make_project

    project = make_project(session, requester, options=("0", "1", "2", "3"), name="Digits")
    pool = make_pool(session, requester, project, general_per_suite=2, control_per_suite=0)
    add_tasks(session, pool, general=4)
    open_pool(session, requester, pool)
    log_in(page, make_labeler(session).email)
    page.goto("/labeler")
    page.click("text=Start labeling")
    page.wait_for_selector("#task-0:focus")
    assert page.locator("#task-0 label.option kbd").all_inner_texts() == ["0", "1", "2", "3"]
    page.keyboard.press("3")
    page.wait_for_selector("#task-1:focus")
    page.keyboard.press("0")
    assert page.is_checked("#task-0 input[value='3']")
    assert page.is_checked("#task-1 input[value='0']")
