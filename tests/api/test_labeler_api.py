"""Labeler JSON API: pools, take, read, submit (idempotent), skip; no control secrets."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Answer, Ban, BanScope, LedgerEntry, LedgerKind, Task
from app.db.types import utcnow
from app.services.money import ledger
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler, make_token

SECRET_HINT = "Whiskers mean cat"


def _open_pool(session, requester, **fields):
    fields.setdefault("general_per_suite", 3)
    fields.setdefault("control_per_suite", 1)
    pool = make_pool(session, requester, **fields)
    add_tasks(session, pool, general=9, control=["dog"], training=[])
    return open_pool(session, requester, pool)


def test_labeler_lists_pools_takes_and_submits_a_suite(session, requester, labeler, labeler_api):
    pool = _open_pool(session, requester, reward_cents=12)
    listed = labeler_api.get("/api/v1/labeler/pools").json()["items"]
    assert [
        (p["id"], p["reward"], p["tasks_per_suite"], p["suites_remaining"]) for p in listed
    ] == [(pool.id, 0.12, 4, 3)]
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    assert [t["position"] for t in suite["tasks"]] == [0, 1, 2, 3]
    assert [o["value"] for o in suite["options"]] == ["cat", "dog", "bird"]
    assert 0 < suite["seconds_left"] <= 600
    again = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    assert again["id"] == suite["id"]
    assert (again["options"], again["question"]) == (suite["options"], suite["question"])

    answers = {str(t["position"]): "cat" for t in suite["tasks"]}
    url = f"/api/v1/labeler/assignments/{suite['id']}/submit"
    first = labeler_api.post(url, json={"answers": answers})
    second = labeler_api.post(url, json={"answers": answers})
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["status"] == "accepted" and second.json()["repeated"] is True
    assert len(session.exec(select(Answer)).all()) == 4
    paid = session.exec(select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.EARNING)).all()
    assert len(paid) == 1 and ledger.get_balance(session, user=labeler) == 12
    listed = labeler_api.get("/api/v1/labeler/assignments").json()["items"]
    assert [(a["id"], a["status"]) for a in listed] == [(suite["id"], "accepted")]


def test_unknown_answer_is_a_422_naming_the_task(session, requester, labeler_api):
    pool = _open_pool(session, requester)
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    answers = {str(t["position"]): "cat" for t in suite["tasks"]}
    answers["2"] = "unicorn"
    response = labeler_api.post(
        f"/api/v1/labeler/assignments/{suite['id']}/submit", json={"answers": answers}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert "Task 3" in body["payload"]["errors"]["answers.2"]
    assert "unicorn" in body["message"] and "(use cat, dog, bird)" in body["message"]
    assert session.exec(select(Answer)).all() == []


def test_another_labelers_suite_is_404(session, requester, labeler_api, make_client):
    pool = _open_pool(session, requester)
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    other = make_client()
    other.headers["Authorization"] = f"OAuth {make_token(session, make_labeler(session))}"
    assert other.get(f"/api/v1/labeler/assignments/{suite['id']}").status_code == 404
    answers = {str(t["position"]): "cat" for t in suite["tasks"]}
    response = other.post(
        f"/api/v1/labeler/assignments/{suite['id']}/submit", json={"answers": answers}
    )
    assert response.status_code == 404
    assert other.post(f"/api/v1/labeler/assignments/{suite['id']}/skip").status_code == 404


def test_skip_releases_the_suite(session, requester, labeler_api):
    pool = _open_pool(session, requester, overlap=1)
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    response = labeler_api.post(f"/api/v1/labeler/assignments/{suite['id']}/skip")
    assert response.json()["status"] == "skipped"
    session.expire_all()
    assert all(t.taken_count == 0 for t in session.exec(select(Task)))


def test_banned_labeler_gets_403_with_reason(session, requester, labeler, labeler_api):
    pool = _open_pool(session, requester)
    session.add(
        Ban(
            requester_id=requester.id,
            labeler_id=labeler.id,
            scope=BanScope.POOL,
            pool_id=pool.id,
            private_comment="x",
            public_comment="Too many wrong control answers.",
        )
    )
    session.commit()
    response = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "USER_RESTRICTED"
    assert "Too many wrong control answers." in body["message"]
    assert body["payload"]["until"] is None and "Animals" in body["payload"]["scope"]


def test_suite_payload_reveals_no_control_task(session, requester, labeler_api):
    pool = make_pool(session, requester, general_per_suite=2, control_per_suite=1)
    add_tasks(session, pool, general=4, control=["bird"])
    pool = open_pool(session, requester, pool)
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    assert {tuple(sorted(t)) for t in suite["tasks"]} == {("image", "position")}
    text = str(suite).lower()
    for word in ("control", "golden", "known", "hint", "kind", "training", "task_id"):
        assert word not in text


def test_take_and_submit_need_a_live_labeler_token(session, requester, labeler, make_client):
    """No token, a wrong or revoked one, a deactivated labeler: 401; a requester's: 403."""
    from app.db.models import ApiToken

    pool = _open_pool(session, requester)
    take, submit = f"/api/v1/labeler/pools/{pool.id}/suites", "/api/v1/labeler/assignments/1/submit"
    client = make_client()

    def status(token: str | None, url: str) -> tuple[int, str]:
        headers = {"Authorization": f"OAuth {token}"} if token else {}
        response = client.post(url, headers=headers, json={"answers": {}})
        return response.status_code, response.json()["code"]

    assert status(None, take) == status("nope", submit) == (401, "AUTHENTICATION_ERROR")
    assert status(make_token(session, requester), take)[0] == 403
    revoked = make_token(session, labeler, name="old")
    row = session.exec(select(ApiToken).where(ApiToken.name == "old")).one()
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()
    assert status(revoked, take)[0] == status(revoked, submit)[0] == 401
    live = make_token(session, labeler)
    assert client.post(take, headers={"Authorization": f"OAuth {live}"}).status_code == 200
    labeler.is_active = False
    session.add(labeler)
    session.commit()
    assert status(live, take)[0] == 401


def test_a_captcha_pool_answers_409_until_the_captcha_is_answered(
    session, requester, labeler_api, monkeypatch
):
    from app.services.labeling import captchas

    monkeypatch.setattr(captchas, "new_text", lambda: "H7KPQ")
    pool = make_pool(
        session, requester, general_per_suite=5, control_per_suite=0, captcha_frequency="HIGH"
    )
    add_tasks(session, pool, general=20)
    open_pool(session, requester, pool)
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    answers = {str(t["position"]): "cat" for t in suite["tasks"]}
    labeler_api.post(f"/api/v1/labeler/assignments/{suite['id']}/submit", json={"answers": answers})

    refused = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites")
    assert refused.status_code == 409 and refused.json()["code"] == "CAPTCHA_REQUIRED"
    shown = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/captcha")
    assert shown.status_code == 200 and "H7KPQ" not in shown.text
    image = labeler_api.get(shown.json()["image_url"])
    assert image.headers["content-type"] == "image/png" and b"H7KPQ" not in image.content
    url = f"/api/v1/labeler/captchas/{shown.json()['id']}/answer"
    assert labeler_api.post(url, json={"answer": "h7kpq"}).json()["solved"] is True
    assert labeler_api.post(url, json={"answer": "h7kpq"}).status_code == 409
    assert labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").status_code == 200
