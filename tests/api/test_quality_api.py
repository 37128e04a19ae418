"""Quality JSON API in Toloka's shapes."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Task
from app.services.money import ledger
from app.services.quality.presets import image_classification_preset
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler, make_requester, make_token
from tests.services.quality.helpers import submit_suite


def _pool(session, requester, **fields):
    pool = make_pool(
        session, requester, overlap=2, general_per_suite=1, control_per_suite=0, **fields
    )
    add_tasks(session, pool, general=3)
    open_pool(session, requester, pool, budget_cents=1000)
    session.expire_all()
    return pool, list(session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)))


def test_user_restrictions_put_list_delete(session, requester, requester_api, make_client):
    pool, _ = _pool(session, requester)
    labeler = make_labeler(session)
    body = {
        "scope": "PROJECT",
        "user_id": str(labeler.id),
        "project_id": str(pool.project_id),
        "private_comment": "bad",
        "will_expire": "2099-01-01T00:00:00",
    }
    made = requester_api.put("/api/v1/user-restrictions", json=body)
    assert made.status_code == 201, made.text
    ban = made.json()
    assert ban["scope"] == "PROJECT" and ban["user_id"] == f"{labeler.id:010d}"
    assert ban["will_expire"] == "2099-01-01T00:00:00.000"
    listed = requester_api.get("/api/v1/user-restrictions", params={"user_id": labeler.id}).json()
    assert [b["id"] for b in listed["items"]] == [ban["id"]] and listed["has_more"] is False
    missing = requester_api.put("/api/v1/user-restrictions", json={"user_id": str(labeler.id)})
    assert missing.status_code == 422 and missing.json()["code"] == "VALIDATION_ERROR"
    no_reason = requester_api.put("/api/v1/user-restrictions", json={**body, "private_comment": ""})
    assert no_reason.status_code == 422
    other = make_client()
    other.headers["Authorization"] = f"OAuth {make_token(session, make_requester(session))}"
    assert other.delete(f"/api/v1/user-restrictions/{ban['id']}").status_code == 404
    assert requester_api.delete(f"/api/v1/user-restrictions/{ban['id']}").status_code == 204
    lifted = requester_api.get(f"/api/v1/user-restrictions/{ban['id']}").json()
    assert lifted["lifted"] is not None


def test_skills_and_user_skills(session, requester, requester_api):
    labeler = make_labeler(session)
    skill = requester_api.post("/api/v1/skills", json={"name": "Birds", "private_comment": "x"})
    assert skill.status_code == 201
    skill_id = skill.json()["id"]
    assert requester_api.post("/api/v1/skills", json={"name": "Birds"}).status_code == 409
    bad = requester_api.put(
        "/api/v1/user-skills", json={"skill_id": skill_id, "user_id": str(labeler.id), "value": 101}
    )
    assert bad.status_code == 422
    row = requester_api.put(
        "/api/v1/user-skills", json={"skill_id": skill_id, "user_id": str(labeler.id), "value": 80}
    ).json()
    assert row["value"] == 80 and row["user_id"] == f"{labeler.id:010d}"
    found = requester_api.get("/api/v1/user-skills", params={"user_id": labeler.id}).json()
    assert [r["id"] for r in found["items"]] == [row["id"]]


def test_assignment_patch_and_bonus(session, requester, requester_api):
    pool, tasks = _pool(session, requester, auto_accept=False)
    labeler = make_labeler(session)
    first = submit_suite(pool, labeler, [(tasks[0], "cat")])
    second = submit_suite(pool, labeler, [(tasks[1], "dog")])
    accepted = requester_api.patch(f"/api/v1/assignments/{first}", json={"status": "ACCEPTED"})
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "ACCEPTED" and accepted.json()["accepted"]
    assert accepted.json()["solutions"] == [{"output_values": {"result": "cat"}}]
    again = requester_api.patch(
        f"/api/v1/assignments/{first}", json={"status": "REJECTED", "public_comment": "no"}
    )
    assert again.status_code == 409 and again.json()["code"] == "INAPPROPRIATE_STATUS"
    rejected = requester_api.patch(
        f"/api/v1/assignments/{second}", json={"status": "REJECTED", "public_comment": "Wrong"}
    ).json()
    assert rejected["status"] == "REJECTED" and rejected["public_comment"] == "Wrong"
    ledger.top_up(session, user=requester, amount_cents=500)
    bonus = requester_api.post(
        "/api/v1/user-bonuses",
        json={
            "user_id": str(labeler.id),
            "amount": 1.5,
            "public_title": {"EN": "Thanks"},
            "public_message": {"EN": "Great work"},
            "assignment_id": str(first),
        },
    )
    assert bonus.status_code == 201, bonus.text
    assert bonus.json()["amount"] == 1.5
    session.expire_all()
    assert ledger.get_balance(session, user=labeler) == pool.reward_cents + 150


def test_pool_quality_rules_get_put_and_dry_run(session, requester, requester_api):
    pool, tasks = _pool(session, requester)
    assert requester_api.get(f"/api/v1/pools/{pool.id}/quality-rules").json()["configs"] == []
    saved = requester_api.put(
        f"/api/v1/pools/{pool.id}/quality-rules", json={"configs": image_classification_preset()}
    )
    assert saved.status_code == 200 and len(saved.json()["configs"]) == 3
    never = image_classification_preset()
    never[0]["rules"][0]["conditions"][0]["value"] = 6
    refused = requester_api.put(f"/api/v1/pools/{pool.id}/quality-rules", json=never)
    assert refused.status_code == 422
    assert "never fire" in refused.json()["payload"]["errors"]["configs.0.rules.0.conditions.0"]
    fast = make_labeler(session)
    for task in tasks:
        submit_suite(pool, fast, [(task, "cat")], duration=1)
    result = requester_api.post(
        f"/api/v1/pools/{pool.id}/quality-rules/dry-run", json=image_classification_preset()
    ).json()
    assert [r["labelers_count"] for r in result["rules"]] == [0, 0, 0]  # 3 suites < 4; no controls
    other_pool = make_pool(session, make_requester(session))
    assert requester_api.get(f"/api/v1/pools/{other_pool.id}/quality-rules").status_code == 404


def test_labeler_token_cannot_use_requester_endpoints(labeler_api):
    assert labeler_api.get("/api/v1/user-restrictions").status_code == 403


def test_fast_labeler_is_banned_by_the_preset_through_the_real_submit(
    session, requester, labeler, labeler_api
):
    pool = make_pool(
        session,
        requester,
        overlap=1,
        general_per_suite=1,
        control_per_suite=0,
        quality_rules=image_classification_preset(),
    )
    add_tasks(session, pool, general=6)
    open_pool(session, requester, pool, budget_cents=1000)
    for n in range(4):
        suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites")
        assert suite.status_code == 200, (n, suite.text)
        answers = {str(t["position"]): "cat" for t in suite.json()["tasks"]}
        submitted = labeler_api.post(
            f"/api/v1/labeler/assignments/{suite.json()['id']}/submit", json={"answers": answers}
        )
        assert submitted.status_code == 200
    refused = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites")
    assert refused.status_code == 403
    assert refused.json()["code"] == "USER_RESTRICTED"
    assert "Your answers came too fast to be careful." in refused.json()["message"]
    assert "Fast responses" not in refused.text  # the private reason stays private


def test_a_ban_after_completion_shows_the_cost_and_excluding_is_explicit(
    session, requester, requester_api
):
    from app.db.models import Answer, Pool
    from app.services.projects.pool_state import mark_closed

    pool, tasks = _pool(session, requester)
    bad, good = make_labeler(session), make_labeler(session)
    for task in tasks:
        for who in (bad, good):
            submit_suite(pool, who, [(task, "cat")])
    session.expire_all()
    done = session.get(Pool, pool.id)
    mark_closed(session, pool=done, reason="COMPLETED")
    session.commit()
    balance = ledger.get_balance(session, user=requester)

    made = requester_api.put(
        "/api/v1/user-restrictions",
        json={
            "scope": "PROJECT",
            "user_id": str(bad.id),
            "project_id": str(pool.project_id),
            "private_comment": "bot",
        },
    )
    assert made.status_code == 201, made.text
    (finished,) = made.json()["finished_pools_with_answers"]
    assert finished["pool_id"] == f"{pool.id:010d}" and finished["answers_count"] == 3
    assert finished["reissued_slots"] == 3 and finished["reopens_pool"] is True
    session.expire_all()
    assert session.get(Pool, pool.id).status == "closed"
    assert not any(session.exec(select(Answer.excluded).where(Answer.pool_id == pool.id)))
    assert ledger.get_balance(session, user=requester) == balance

    url = f"/api/v1/pools/{pool.id}/banned-answers"
    preview = requester_api.get(url, params={"user_id": bad.id}).json()
    assert preview["cost"] == finished["cost"] > 0
    wrong = requester_api.post(f"{url}/exclude", json={"user_id": str(bad.id), "cost": 0.01})
    assert wrong.status_code == 409 and wrong.json()["code"] == "COST_CHANGED"
    missing = requester_api.post(f"{url}/exclude", json={"user_id": str(bad.id)})
    assert missing.status_code == 422
    ok = requester_api.post(
        f"{url}/exclude", json={"user_id": str(bad.id), "cost": preview["cost"]}
    )
    assert ok.status_code == 200, ok.text
    session.expire_all()
    assert session.get(Pool, pool.id).status == "open"
    excluded = session.exec(select(Answer.excluded).where(Answer.labeler_id == bad.id)).all()
    assert excluded == [True, True, True]
    not_banned = requester_api.post(f"{url}/exclude", json={"user_id": str(good.id), "cost": 0})
    assert not_banned.status_code == 409
