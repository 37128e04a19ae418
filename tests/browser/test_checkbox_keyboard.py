"""A labeler answers a checkbox (several answers) suite with the keyboard, in a real browser."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Answer, AssignmentTask
from tests.browser.conftest import log_in
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler


def test_keys_tick_options_arrows_move_enter_submits(session, requester, page):
    project = make_project(session, requester, options=("cat", "dog", "bird"),
                           answer_type="multiple", allow_none=True)  # fmt: skip
    pool = make_pool(session, requester, project, general_per_suite=3, control_per_suite=0)
    add_tasks(session, pool, general=6)
    open_pool(session, requester, pool)
    labeler = make_labeler(session)
    log_in(page, labeler.email)
    page.goto("/labeler")
    page.click("text=Start labeling")
    page.wait_for_selector("#task-0:focus")
    first_url = page.url
    assert page.locator("#task-0 input[type=checkbox]").count() == 4  # 3 + none of these

    page.keyboard.press("1")  # task 1: tick cat
    page.keyboard.press("2")  # ... and dog; focus stays on task 1
    page.keyboard.press("3")
    page.keyboard.press("3")  # bird ticked, then unticked again
    assert page.is_checked("#task-0 input[value=cat]")
    assert page.is_checked("#task-0 input[value=dog]")
    assert not page.is_checked("#task-0 input[value=bird]")
    page.keyboard.press("ArrowDown")
    page.wait_for_selector("#task-1:focus")
    page.keyboard.press("3")  # task 2: bird
    page.keyboard.press("n")  # "none of these" clears bird
    assert page.is_checked("#task-1 input[data-none]")
    assert not page.is_checked("#task-1 input[value=bird]")
    page.keyboard.press("ArrowDown")
    page.wait_for_selector("#task-2:focus")
    page.keyboard.press("Enter")  # task 3 has nothing ticked: shown in place, nothing sent
    page.wait_for_selector("#task-2.missing")
    assert "Task 3" in page.inner_text("[data-missing]")
    page.keyboard.press("3")
    page.keyboard.press("1")  # task 3: bird and cat
    page.keyboard.press("Enter")
    page.wait_for_selector("text=you earned $0.05")
    page.wait_for_selector("#task-0:focus")
    assert page.url != first_url

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
    assert by_position == {0: '["cat","dog"]', 1: "[]", 2: '["cat","bird"]'}
