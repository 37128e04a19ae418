"""A new user signs up in a real browser and sees an empty console."""

from __future__ import annotations

from tests.browser.conftest import log_in, sign_up


def test_requester_and_labeler_sign_up_in_the_browser(new_page):
    requester = new_page()
    sign_up(requester, "requester", "ann@example.com")
    assert requester.url.endswith("/requester")
    assert requester.locator("h1").first.inner_text() == "Projects"

    labeler = new_page()
    sign_up(labeler, "labeler", "bob@example.com")
    assert labeler.url.endswith("/labeler")
    assert "Available work" in labeler.locator("h1").first.inner_text()

    labeler.click("text=Log out")
    log_in(labeler, "bob@example.com", "wrong password!")
    assert "Wrong email or password." in labeler.content()
