"""The launch page shows what the rules can make a pool cost, reserves that, and a pool whose
reservation is used up asks its requester for more instead of spending their balance."""

from __future__ import annotations

import re

from app.services.labeling.assignments import (
    PoolBudgetUsedUp,
    assign_next_suite,
    submit_assignment,
)
from app.services.money import ledger
from app.services.quality.bans import ban_labeler
from app.services.quality.presets import image_classification_preset
from tests.browser.conftest import log_in
from tests.builders.concurrency import in_own_session
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_labeler, make_requester


def _money(text: str) -> float:
    return float(re.search(r"\$([\d,]+\.\d\d)", text).group(1).replace(",", ""))


def _do_suite(labeler, pool_id):
    def work(s):
        suite = assign_next_suite(s, labeler=labeler, pool_id=pool_id)
        answers = {str(i): "cat" for i in range(len(suite.tasks))}
        return submit_assignment(
            s, labeler=labeler, assignment_id=suite.assignment_id, answers=answers,
            by_position=True,
        )  # fmt: skip

    return in_own_session(work)


def test_launch_shows_the_range_and_a_used_up_reservation_asks_for_consent(page, session):
    requester = make_requester(session, email="budget@example.com")
    rules = [  # the preset's majority-vote ban (its fast-responses ban would catch the test)
        c for c in image_classification_preset()
        if c["collector_config"]["type"] == "MAJORITY_VOTE"
    ]  # fmt: skip
    pool = make_pool(
        session, requester, name="Cats", overlap=1, reward_cents=10, general_per_suite=1,
        control_per_suite=0, quality_rules=rules,
    )  # fmt: skip
    add_tasks(session, pool, general=20)
    ledger.top_up(session, user=requester, amount_cents=1_000)
    log_in(page, "budget@example.com")

    # The review names the rules that re-issue tasks and shows a range, not one figure.
    page.goto(f"/requester/pools/{pool.id}/launch")
    risks = page.inner_text("#budget-risks")
    assert "re-issued" in risks and "Majority vote" in risks
    assert _money(page.inner_text("#budget-estimate")) == 2.00
    assert page.input_value("#f-margin_percent") == "30"
    assert _money(page.inner_text("#budget-limit")) == 2.60  # 20 suites + 6 for re-issues
    assert "$2.00 and $2.60" in page.inner_text("#budget-range")

    # A bad margin is a clear error on its field; a recalculated one changes the figures.
    page.fill("#f-margin_percent", "-5")
    page.click("#recalculate")
    assert "whole percent from 0 to 300" in page.inner_text("#margin-form")
    page.fill("#f-margin_percent", "10")
    page.click("#recalculate")
    assert _money(page.inner_text("#budget-limit")) == 2.20
    assert "reserve $2.20" in page.inner_text("#launch-pool")
    page.click("#launch-pool")
    page.wait_for_url(re.compile(rf"/requester/pools/{pool.id}$"))
    assert ledger.get_pool_reserved(session, pool=pool) == 220
    assert ledger.get_balance(session, user=requester) == 780

    # One labeler does 19 of the 20 tasks, then is banned: their answers are re-issued, and
    # what is left of the reservation covers three of the 20 suites now needed.
    cheat, honest = make_labeler(session), make_labeler(session)
    for _ in range(19):
        assert _do_suite(cheat, pool.id).paid
    session.expire_all()  # (the pool was launched in the browser: read it afresh)
    ban_labeler(
        session, requester=requester, labeler_id=cheat.id, scope="POOL", pool_id=pool.id,
        duration=1, private_comment="test",
    )  # fmt: skip
    for _ in range(3):
        assert _do_suite(honest, pool.id).paid
    refused = in_own_session(lambda s: assign_next_suite(s, labeler=honest, pool_id=pool.id))
    assert isinstance(refused, PoolBudgetUsedUp)
    assert ledger.get_balance(session, user=requester) == 780  # not spent silently

    # The requester sees why, how much finishes the work, and adds it with one click.
    page.goto(f"/requester/pools/{pool.id}")
    notice = page.inner_text("#reservation-used-up")
    assert "More money needed" in notice and "17 more suites" in notice
    assert "$1.70 in all" in notice
    page.click("#add-reservation")
    page.wait_for_url(re.compile(rf"/requester/pools/{pool.id}$"))
    assert "Added 1.70 USD to the reservation" in page.inner_text("body")
    assert page.locator("#reservation-used-up").count() == 0
    assert ledger.get_balance(session, user=requester) == 610
    assert _do_suite(honest, pool.id).paid
