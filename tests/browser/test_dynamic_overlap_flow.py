"""A requester sets dynamic overlap in the pool form, sees the worst case reserved at
launch, and after the crowd has answered sees the answers bought and the money saved."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Pool, PoolStatus
from app.errors import CrowdlabError
from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.money import ledger
from tests.browser.conftest import log_in
from tests.builders.pools import add_tasks, make_project
from tests.builders.users import make_labeler


def test_requester_sets_dynamic_overlap_and_sees_the_savings(session, requester, page):
    project = make_project(session, requester)
    log_in(page, requester.email)
    page.goto(f"/requester/projects/{project.id}/pools/new")
    page.fill("#f-name", "Dynamic batch")
    page.fill("#f-price", "0.10")
    page.fill("#f-overlap", "2")
    page.fill("#f-general_per_suite", "1")
    page.fill("#f-control_per_suite", "0")
    page.fill("#f-max_overlap", "1")  # below the overlap: refused with words, in place
    page.fill("#f-min_confidence", "0.6")
    page.click("button:has-text('Create pool')")
    assert "at least the overlap" in page.locator(".field.has-error").inner_text()
    page.fill("#f-overlap", "1")
    page.fill("#f-max_overlap", "4")
    page.click("button:has-text('Create pool')")
    assert "Dynamic batch" in page.locator("h1").first.inner_text()
    assert "dynamic: 1 to 4, until 60" in page.content()

    pool = session.exec(select(Pool).where(Pool.project_id == project.id)).one()
    add_tasks(session, pool, general=3)
    ledger.top_up(session, user=requester, amount_cents=1000)
    page.click("text=Launch…")
    budget = page.locator("#budget").inner_text()
    assert "3 tasks × 4 → at most 12 answers" in budget
    page.click("button:has-text('Launch pool')")
    page.get_by_text("is open").first.wait_for()

    # Labelers with no control history: two agreeing answers reach 67 % ≥ 60 %; one does not.
    answered = 0
    for _ in range(10):
        labeler = make_labeler(session)
        try:
            view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        except CrowdlabError:
            break
        submit_assignment(
            session,
            labeler=labeler,
            assignment_id=view.assignment_id,
            answers={t.position: "cat" for t in view.tasks},
            by_position=True,
        )
        answered += 1
    assert answered == 6
    session.expire_all()
    assert session.get(Pool, pool.id).status == PoolStatus.CLOSED

    page.goto(f"/requester/pools/{pool.id}")
    savings = page.locator("#overlap-savings")
    assert page.locator("#answers-bought").inner_text() == "6"
    assert "fixed overlap 4 = 12" in savings.inner_text()
    assert "$0.00" not in page.locator("#money-saved").inner_text()
    bars = page.locator("#answers-histogram .bar-row")
    assert "2 answers" in bars.nth(2).inner_text() and "3 tasks" in bars.nth(2).inner_text()
    assert "0 tasks" in bars.nth(4).inner_text()
