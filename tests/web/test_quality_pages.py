"""Quality pages: rules editor (HTMX rows, validation, JSON, dry run), review, labeler page."""

from __future__ import annotations

import json
import re

from sqlmodel import select

from app.db.models import Assignment, Ban, Pool, Task
from app.services.money import ledger
from app.services.quality.presets import image_classification_preset
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler, make_requester
from tests.services.quality.helpers import submit_suite


def _pool(session, requester, **fields):
    pool = make_pool(
        session, requester, overlap=2, general_per_suite=2, control_per_suite=0, **fields
    )
    add_tasks(session, pool, general=4)
    open_pool(session, requester, pool, budget_cents=1000)
    session.expire_all()
    tasks = list(session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)))
    return pool, tasks


def _row_form(page: str) -> dict:
    """The editor's current inputs, as a browser would post them."""
    data = {}
    for name, value in re.findall(r'<input[^>]*name="(r-[^"]+)"[^>]*value="([^"]*)"', page):
        data[name] = value
    for name, body in re.findall(r'<select name="(r-[^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', body) or re.search(
            r"<option[^>]*selected>([^<]*)<", body
        )
        data[name] = chosen.group(1) if chosen else ""
    return data


def test_rules_editor_shows_if_then_rows_and_refuses_a_rule_that_can_never_fire(
    session, requester, requester_client
):
    pool, _ = _pool(session, requester, quality_rules=image_classification_preset())
    page = requester_client.get(f"/requester/pools/{pool.id}/quality")
    assert page.status_code == 200
    assert page.text.count('class="card rule-row') == 3
    form = _row_form(page.text)
    token = next(k.split("-")[1] for k in form if k.endswith("-collector"))
    form[f"r-{token}-c0_value"] = "9"  # fast_submitted_count ≥ 9 with a window of 5
    form["exclude_banned_answers"] = "on"
    response = requester_client.post(f"/requester/pools/{pool.id}/quality", data=form)
    assert response.status_code == 422
    assert "can never fire" in response.text
    assert 'value="9"' in response.text  # the input is kept
    session.expire_all()
    assert session.get(Pool, pool.id).quality_rules[0]["rules"][0]["conditions"][0]["value"] == 4
    form[f"r-{token}-c0_value"] = "3"
    form.pop("exclude_banned_answers")
    response = requester_client.post(
        f"/requester/pools/{pool.id}/quality", data=form, follow_redirects=False
    )
    assert response.status_code == 303
    session.expire_all()
    saved = session.get(Pool, pool.id)
    assert saved.quality_rules[0]["rules"][0]["conditions"][0]["value"] == 3
    assert saved.exclude_banned_answers is False


def test_htmx_add_row_and_rate_without_count_error(session, requester, requester_client):
    pool, _ = _pool(session, requester)
    fragment = requester_client.get("/requester/quality/rule-row", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.count('class="card rule-row') == 1
    form = _row_form(fragment.text)
    token = next(k.split("-")[1] for k in form if k.endswith("-collector"))
    form.update(
        {
            f"r-{token}-collector": "MAJORITY_VOTE",
            f"r-{token}-threshold": "2",
            f"r-{token}-c0_key": "correct_answers_rate",
            f"r-{token}-c0_op": "LT",
            f"r-{token}-c0_value": "40",
            f"r-{token}-private_comment": "",
        }
    )
    response = requester_client.post(f"/requester/pools/{pool.id}/quality", data=form)
    assert response.status_code == 422
    assert "without it the rule fires on the very first answer" in response.text


def test_export_import_and_dry_run(session, requester, requester_client):
    pool, tasks = _pool(session, requester)
    fast = make_labeler(session)
    for task in tasks:
        submit_suite(pool, fast, [(task, "cat")], duration=2)
    exported = requester_client.get(f"/requester/pools/{pool.id}/quality/export.json").json()
    assert exported == {"quality_control": {"configs": []}}
    body = json.dumps({"quality_control": {"configs": image_classification_preset()}})
    response = requester_client.post(
        f"/requester/pools/{pool.id}/quality/import", data={"json": body}, follow_redirects=False
    )
    assert response.status_code == 303
    exported = requester_client.get(f"/requester/pools/{pool.id}/quality/export.json").json()
    assert len(exported["quality_control"]["configs"]) == 3
    bad = requester_client.post(f"/requester/pools/{pool.id}/quality/import", data={"json": "{"})
    assert bad.status_code == 422 and "not JSON" in bad.text
    form = _row_form(requester_client.get(f"/requester/pools/{pool.id}/quality").text)
    result = requester_client.post(
        f"/requester/pools/{pool.id}/quality/dry-run", data=form, headers={"HX-Request": "true"}
    )
    assert result.status_code == 200
    assert "would have banned 1 labeler" in result.text and f"#{fast.id}" in result.text
    assert session.exec(select(Ban)).all() == []


def test_review_page_reject_needs_comment_then_accept_pays(session, requester, requester_client):
    pool, tasks = _pool(session, requester, auto_accept=False)
    labeler = make_labeler(session)
    first = submit_suite(pool, labeler, [(tasks[0], "cat"), (tasks[1], "dog")])
    second = submit_suite(pool, labeler, [(tasks[2], "cat"), (tasks[3], "dog")])
    page = requester_client.get(f"/requester/pools/{pool.id}/review?status=submitted")
    assert (
        page.status_code == 200 and f"suite-{first}" in page.text and f"suite-{second}" in page.text
    )
    hx = {"HX-Request": "true"}
    refused = requester_client.post(f"/requester/assignments/{first}/reject", data={}, headers=hx)
    assert refused.status_code == 422 and "why" in refused.text.lower()
    rejected = requester_client.post(
        f"/requester/assignments/{first}/reject", data={"comment": "Wrong animals"}, headers=hx
    )
    assert "rejected" in rejected.text and "Wrong animals" in rejected.text
    accepted = requester_client.post(f"/requester/assignments/{second}/accept", data={}, headers=hx)
    assert "badge accepted" in accepted.text
    session.expire_all()
    assert ledger.get_balance(session, user=labeler) == pool.reward_cents
    filtered = requester_client.get(f"/requester/pools/{pool.id}/review?status=rejected")
    assert f"suite-{first}" in filtered.text and f"suite-{second}" not in filtered.text


def test_review_file_upload_lists_bad_rows(session, requester, requester_client):
    pool, tasks = _pool(session, requester, auto_accept=False)
    labeler = make_labeler(session)
    suite = submit_suite(pool, labeler, [(tasks[0], "cat"), (tasks[1], "dog")])
    tsv = requester_client.get(f"/requester/pools/{pool.id}/review.tsv").text
    header, *rows = tsv.splitlines()
    assert header.startswith("ASSIGNMENT:assignment_id\tASSIGNMENT:worker_id\tINPUT:image")
    bad = "\n".join([header] + [r.rsplit("\t", 2)[0] + "\t-\t" for r in rows])
    response = requester_client.post(
        f"/requester/pools/{pool.id}/review/upload",
        files={"file": ("review.tsv", bad.encode(), "text/tab-separated-values")},
    )
    assert response.status_code == 422 and "row 2" in response.text and "row 3" in response.text
    good = "\n".join([header] + [r.rsplit("\t", 2)[0] + "\t+\tok" for r in rows])
    response = requester_client.post(
        f"/requester/pools/{pool.id}/review/upload",
        files={"file": ("review.tsv", good.encode(), "text/tab-separated-values")},
    )
    assert "1 accepted" in response.text
    session.expire_all()
    assert session.get(Assignment, suite).status == "accepted"


def test_labeler_page_ban_unban_bonus_and_privacy(
    session, requester, requester_client, make_client
):
    pool, tasks = _pool(session, requester)
    labeler = make_labeler(session)
    submit_suite(pool, labeler, [(tasks[0], "cat"), (tasks[1], "dog")], duration=42)
    url = f"/requester/pools/{pool.id}/labelers/{labeler.id}"
    assert (
        f'href="http://testserver{url}"' in requester_client.get(f"/requester/pools/{pool.id}").text
    )
    page = requester_client.get(url)
    assert page.status_code == 200 and "42 s" in page.text
    no_reason = requester_client.post(
        f"{url}/ban", data={"scope": "PROJECT", "duration": "2", "duration_unit": "HOURS"}
    )
    assert no_reason.status_code == 422 and "private reason" in no_reason.text
    requester_client.post(
        f"{url}/ban",
        data={
            "scope": "PROJECT",
            "duration": "2",
            "duration_unit": "HOURS",
            "private_comment": "bot",
            "public_comment": "Automated answers",
        },
    )
    session.expire_all()
    [ban] = session.exec(select(Ban).where(Ban.labeler_id == labeler.id)).all()
    assert ban.scope == "project" and ban.public_comment == "Automated answers"
    requester_client.post(f"{url}/unban", data={"ban_id": str(ban.id)})
    session.expire_all()
    assert session.get(Ban, ban.id).lifted_at is not None
    ledger.top_up(session, user=requester, amount_cents=500)
    too_much = requester_client.post(f"{url}/bonus", data={"amount": "150", "message": "x"})
    assert too_much.status_code == 422
    requester_client.post(f"{url}/bonus", data={"amount": "1.25", "message": "Thanks!"})
    session.expire_all()
    assert ledger.get_balance(session, user=labeler) == pool.reward_cents + 125
    from tests.builders.users import login

    stranger = login(make_client(), make_requester(session))
    assert stranger.get(url).status_code == 404
    assert stranger.get(f"/requester/pools/{pool.id}/review").status_code == 404


def test_ban_after_completion_offers_a_priced_exclusion(session, requester, requester_client):
    from app.db.models import Answer, Pool
    from app.services.projects.pool_state import mark_closed

    pool, tasks = _pool(session, requester)
    labeler = make_labeler(session)
    submit_suite(pool, labeler, [(tasks[0], "cat"), (tasks[1], "dog")])
    session.expire_all()
    mark_closed(session, pool=session.get(Pool, pool.id), reason="COMPLETED")
    session.commit()
    url = f"/requester/pools/{pool.id}/labelers/{labeler.id}"
    banned = requester_client.post(
        f"{url}/ban",
        data={
            "scope": "PROJECT",
            "duration": "2",
            "duration_unit": "HOURS",
            "private_comment": "bot",
        },
        follow_redirects=True,
    )
    assert "still count in 1 finished pool" in banned.text
    assert (
        "Answers in finished pools" in banned.text and "Exclude and re-issue for $" in banned.text
    )
    session.expire_all()
    assert session.get(Pool, pool.id).status == "closed"
    assert not any(session.exec(select(Answer.excluded).where(Answer.pool_id == pool.id)))
    stale = requester_client.post(
        f"{url}/exclude-answers", data={"target_pool_id": str(pool.id), "cost_cents": "1"}
    )
    assert stale.status_code == 409 and "confirm that amount" in stale.text
    from app.services.quality import banned_answers

    cost = banned_answers.preview_exclusion(
        session, requester_id=requester.id, pool_id=pool.id, labeler_id=labeler.id
    ).cost_cents
    done = requester_client.post(
        f"{url}/exclude-answers",
        data={"target_pool_id": str(pool.id), "cost_cents": str(cost)},
        follow_redirects=True,
    )
    assert "Excluded 2 answer(s)" in done.text
    session.expire_all()
    assert session.get(Pool, pool.id).status == "open"


def test_bulk_ban_file_page(session, requester, requester_client):
    pool, _ = _pool(session, requester)
    a, b = make_labeler(session), make_labeler(session)
    data = {"scope": "POOL", "duration": "1", "duration_unit": "DAYS", "private_comment": "spam"}
    bad = requester_client.post(
        f"/requester/pools/{pool.id}/bans/upload",
        data=data,
        files={"file": ("ids.txt", f"{a.id}\nnope\n".encode(), "text/plain")},
    )
    assert bad.status_code == 422 and "row 2" in bad.text
    ok = requester_client.post(
        f"/requester/pools/{pool.id}/bans/upload",
        data=data,
        files={"file": ("ids.tsv", f"worker_id\n{a.id}\n{b.id}\n".encode(), "text/plain")},
    )
    assert ok.status_code == 200 and "Banned 2 labeler" in ok.text


def test_captcha_frequency_and_a_captcha_rule_are_set_on_the_rules_page(
    session, requester, requester_client
):
    pool, _ = _pool(session, requester)
    page = requester_client.get(f"/requester/pools/{pool.id}/quality")
    assert 'name="captcha_frequency"' in page.text and "Captchas" in page.text
    form = {
        "r-cap1-collector": "CAPTCHA",
        "r-cap1-history_size": "5",
        "r-cap1-c0_key": "stored_results_count",
        "r-cap1-c0_op": "GTE",
        "r-cap1-c0_value": "3",
        "r-cap1-c1_key": "success_rate",
        "r-cap1-c1_op": "LT",
        "r-cap1-c1_value": "65",
        "r-cap1-action": "RESTRICTION_V2",
        "r-cap1-scope": "PROJECT",
        "r-cap1-duration": "10",
        "r-cap1-duration_unit": "DAYS",
        "r-cap1-private_comment": "fails captchas",
        "captcha_frequency": "",
    }
    refused = requester_client.post(f"/requester/pools/{pool.id}/quality", data=form)
    assert refused.status_code == 422
    assert "set the pool&#39;s captcha frequency" in refused.text
    assert 'value="fails captchas"' in refused.text  # the row is kept
    session.expire_all()
    assert session.get(Pool, pool.id).quality_rules == []

    form["captcha_frequency"] = "MEDIUM"
    saved = requester_client.post(
        f"/requester/pools/{pool.id}/quality", data=form, follow_redirects=False
    )
    assert saved.status_code == 303
    session.expire_all()
    stored = session.get(Pool, pool.id)
    assert stored.captcha_frequency == "MEDIUM"
    assert stored.quality_rules[0]["collector_config"] == {
        "type": "CAPTCHA",
        "parameters": {"history_size": 5},
    }
    again = requester_client.get(f"/requester/pools/{pool.id}/quality").text
    assert '<option value="MEDIUM" selected>' in again
