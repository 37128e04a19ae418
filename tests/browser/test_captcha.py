"""A labeler meets a captcha between suites and solves it with the keyboard only."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import CaptchaChallenge
from app.services.labeling import captchas
from tests.browser.conftest import log_in
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler


def test_captcha_between_suites_is_typed_and_sent_with_enter(session, requester, page, monkeypatch):
    monkeypatch.setattr(captchas, "new_text", lambda: "M4QZT")
    pool = make_pool(
        session, requester, general_per_suite=5, control_per_suite=0, captcha_frequency="HIGH"
    )
    add_tasks(session, pool, general=15)
    open_pool(session, requester, pool)
    labeler = make_labeler(session)
    log_in(page, labeler.email)
    page.goto("/labeler")
    page.click("text=Start labeling")
    page.wait_for_selector("#task-0:focus")
    for _ in range(5):
        page.keyboard.press("1")
    page.keyboard.press("Enter")  # five tasks done: a captcha comes before the next suite

    page.wait_for_selector("#captcha-answer:focus")
    assert "/captcha" in page.url
    page.wait_for_function("document.querySelector('[data-captcha-image]').complete")
    assert page.evaluate("document.querySelector('[data-captcha-image]').naturalWidth") == 240
    assert "M4QZT" not in page.content()
    page.keyboard.type("m4qzt")
    page.keyboard.press("Enter")

    page.wait_for_selector("text=Captcha solved.")
    page.wait_for_selector("#task-0:focus")
    assert "/labeler/assignments/" in page.url and page.locator(".suite-task").count() == 5
    session.expire_all()
    (row,) = session.exec(select(CaptchaChallenge)).all()
    assert row.solved is True and row.labeler_id == labeler.id and row.image is None
