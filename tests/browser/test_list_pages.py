"""Server-side lists in Chromium: the balance history searched, sorted and paged without a
full reload, every state a URL that survives reload and Back; the per-image results view of
an aggregation filtered by confidence."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import User
from app.services.aggregations.runs import start_aggregation
from app.services.money import ledger
from tests.browser.conftest import sign_up
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_labeler


def _amounts(page) -> list[str]:
    return page.locator("#ledger tbody td.num").all_inner_texts()


def _mark_document(page) -> None:
    """A flag on ``window`` that a full page load would wipe."""
    page.evaluate("window.__sameDocument = true")


def _same_document(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def test_balance_history_search_sort_and_pages_swap_in_place_and_keep_their_url(page, session):
    sign_up(page, "requester", "rich@example.com")
    user = session.exec(select(User).where(User.email == "rich@example.com")).one()
    for n in range(60):
        memo = "Grant from Alice" if n % 10 == 0 else f"Top-up #{n}"
        ledger.top_up(session, user=user, amount_cents=100 * (n + 1), memo=memo)

    page.goto("/requester/balance")
    assert len(_amounts(page)) == 25
    assert _amounts(page)[0] == "$60.00"
    assert "1–25 of 60" in page.locator(".pager-count").inner_text()
    _mark_document(page)

    # Next page: the table swaps, the URL follows.
    page.locator("#history a[rel=next]").click()
    page.wait_for_url("**/requester/balance?page=2")
    page.locator(".pager-count", has_text="26–50 of 60").wait_for()
    assert _amounts(page)[0] == "$35.00"
    assert _same_document(page)

    # Sort by amount, smallest first (two clicks: the first click sorts largest first).
    page.locator("th[data-sort=amount] a").click()
    page.wait_for_url("**sort=amount&dir=desc")
    page.locator("th[data-sort=amount] a").click()
    page.wait_for_url("**sort=amount&dir=asc")
    page.locator("#ledger tbody tr").first.filter(has_text="$1.00").wait_for()
    assert _amounts(page)[:3] == ["$1.00", "$2.00", "$3.00"]
    assert page.locator("th[data-sort=amount]").get_attribute("aria-sort") == "ascending"

    # Typing in the search box filters as you type; the sort is kept.
    page.fill("input[name=q]", "alice")
    page.wait_for_url("**q=alice**")
    page.locator(".pager-count", has_text="1–6 of 6").wait_for()
    assert _amounts(page) == ["$1.00", "$11.00", "$21.00", "$31.00", "$41.00", "$51.00"]
    assert "sort=amount" in page.url and "dir=asc" in page.url
    assert _same_document(page)

    # Reload: the same state from the URL alone.
    page.reload()
    assert page.input_value("input[name=q]") == "alice"
    assert _amounts(page) == ["$1.00", "$11.00", "$21.00", "$31.00", "$41.00", "$51.00"]

    # Back: the state before the search.
    page.go_back()
    page.wait_for_url("**/requester/balance?sort=amount&dir=asc")
    page.locator(".pager-count", has_text="1–25 of 60").wait_for()
    assert _amounts(page)[:3] == ["$1.00", "$2.00", "$3.00"]


def test_balance_history_works_without_javascript(browser, live_server, session):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_up(page, "requester", "nojs@example.com")
        user = session.exec(select(User).where(User.email == "nojs@example.com")).one()
        for n in range(30):
            ledger.top_up(session, user=user, amount_cents=100 * (n + 1), memo=f"Top-up #{n}")
        page.goto("/requester/balance")
        page.locator("#history a[rel=next]").click()
        page.wait_for_url("**page=2")
        assert _amounts(page) == [f"${n}.00" for n in range(5, 0, -1)]
        page.fill("input[name=q]", "#7")
        page.click("form.list-search button")
        page.wait_for_url("**q=%237")
        assert _amounts(page) == ["$8.00"]
    finally:
        context.close()


def test_results_view_filters_by_confidence_and_sorts_in_place(page, session):
    sign_up(page, "requester", "checker@example.com")
    user = session.exec(select(User).where(User.email == "checker@example.com")).one()
    pool = make_pool(session, user, name="Pets")
    tasks = add_tasks(session, pool, general=30)
    people = [make_labeler(session, name=n) for n in ("Ann", "Bob", "Cid", "Dee")]
    votes = {0: ["cat"] * 4, 1: ["cat", "cat", "cat", "dog"], 2: ["cat", "cat", "dog", "dog"]}
    add_answers(
        session,
        pool,
        {t.id: list(zip(people, votes[n % 3], strict=True)) for n, t in enumerate(tasks)},
    )
    start_aggregation(session, requester=user, pool_id=pool.id, method="mv", use_known=False)

    # From the pool page to the newest run's results.
    page.goto(f"/requester/pools/{pool.id}")
    page.locator("nav.tabs a", has_text="Results").click()
    page.wait_for_url("**/aggregations/*/results")
    assert page.locator("#results-table tbody tr").count() == 25
    assert "1–25 of 30" in page.locator(".pager-count").inner_text()
    first = page.locator("#results-table tbody tr").first
    assert "Ann: cat" in first.inner_text() and "100.0%" in first.inner_text()
    _mark_document(page)

    # Confidence below 80 %: only the split tasks, the table swapped in place.
    page.fill("#f-below", "80")
    page.press("#f-below", "Enter")
    page.wait_for_url("**below=80**")
    page.locator(".pager-count", has_text="1–20 of 20").wait_for()
    confidences = page.locator("#results-table [data-confidence]").evaluate_all(
        "els => els.map(e => parseFloat(e.dataset.confidence))"
    )
    assert len(confidences) == 20 and max(confidences) < 0.8
    assert _same_document(page)

    # Least confident first; the filter stays.
    page.wait_for_load_state("networkidle")  # the filter's swap is done before the click
    page.locator("th[data-sort=confidence] a").click()
    page.wait_for_url("**sort=confidence&dir=asc**")
    page.wait_for_load_state("networkidle")
    page.locator("th[data-sort=confidence][aria-sort=ascending]").wait_for()
    confidences = page.locator("#results-table [data-confidence]").evaluate_all(
        "els => els.map(e => parseFloat(e.dataset.confidence))"
    )
    assert confidences == sorted(confidences) and confidences[0] == 0.5
    assert "below=80" in page.url

    # Below 60 %: the ties; reload keeps the state.
    page.fill("#f-below", "60")
    page.press("#f-below", "Enter")
    page.locator(".pager-count", has_text="of 10").wait_for()
    page.reload()
    assert page.input_value("#f-below") == "60"
    assert page.locator("#results-table tbody tr").count() == 10
    row = page.locator("#results-table tbody tr").first.inner_text()
    assert "50.0%" in row and "Cid: dog" in row and "Dee: dog" in row
