"""Pools and tasks API: Toloka's pool/task shapes, open/close/archive, operations, paging,
uploads, budget, and 404 for another requester's ids."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from app.services.money import ledger
from tests.builders.pools import add_tasks, make_pool, make_project
from tests.builders.users import make_requester

NOTEBOOK_POOL = {
    "private_name": "Pool 1",
    "may_contain_adult_content": False,
    "reward_per_assignment": 0.01,
    "assignment_max_duration_seconds": 600,
    "will_expire": "2027-11-23T16:24:38.296428",
    "defaults": {"default_overlap_for_new_task_suites": 3},
    "filter": {
        "and": [
            {"or": [{"category": "profile", "key": "languages", "operator": "IN", "value": "EN"}]}
        ]
    },
    "mixer_config": {"real_tasks_count": 9, "golden_tasks_count": 1, "training_tasks_count": 0},
    "quality_control": {
        "configs": [
            {
                "collector_config": {"type": "SKIPPED_IN_ROW_ASSIGNMENTS"},
                "rules": [
                    {
                        "conditions": [
                            {"key": "skipped_in_row_count", "operator": "GTE", "value": 10}
                        ],
                        "action": {
                            "type": "RESTRICTION_V2",
                            "parameters": {
                                "scope": "PROJECT",
                                "duration": 1,
                                "duration_unit": "DAYS",
                                "private_comment": "Skips",
                            },
                        },
                    }
                ],
            }
        ]
    },
}


def create_pool(api, project_id) -> dict:
    response = api.post("/api/v1/pools", json={**NOTEBOOK_POOL, "project_id": f"{project_id}"})
    assert response.status_code == 201, response.text
    return response.json()


def test_pool_round_trip_in_toloka_shape(requester_api, session, requester):
    project = make_project(session, requester)
    pool = create_pool(requester_api, project.id)
    assert pool["status"] == "DRAFT" and pool["project_id"] == f"{project.id:010d}"
    assert pool["reward_per_assignment"] == 0.01
    assert pool["defaults"]["default_overlap_for_new_task_suites"] == 3
    assert pool["mixer_config"] == NOTEBOOK_POOL["mixer_config"]
    assert pool["filter"] == NOTEBOOK_POOL["filter"]
    assert pool["quality_control"]["configs"] == NOTEBOOK_POOL["quality_control"]["configs"]
    assert pool["will_expire"] == "2027-11-23T16:24:38.296"
    assert pool["assignment_max_duration_seconds"] == 600 and pool["type"] == "REGULAR"
    # A client PUTs back what it read, read-only fields included.
    pool["private_name"] = "Renamed"
    pool["assignment_max_duration_seconds"] = 300
    updated = requester_api.put(f"/api/v1/pools/{pool['id']}", json=pool).json()
    assert (
        updated["private_name"] == "Renamed" and updated["assignment_max_duration_seconds"] == 300
    )


def test_sub_cent_price_is_refused(requester_api, session, requester):
    project = make_project(session, requester)
    response = requester_api.post(
        "/api/v1/pools",
        json={**NOTEBOOK_POOL, "project_id": str(project.id), "reward_per_assignment": 0.005},
    )
    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_ERROR"


def test_tasks_async_operation_log_and_id_range_search(requester_api, session, requester):
    project = make_project(session, requester, options=("cat", "dog"))
    pool = create_pool(requester_api, project.id)
    body = [
        {
            "__item_idx": str(i),
            "pool_id": pool["id"],
            "input_values": {"image": f"https://x.example/{i}.png"},
        }
        for i in range(11)
    ]
    body[0]["known_solutions"] = [{"output_values": {"result": "cat"}}]
    body[0]["infinite_overlap"] = True
    response = requester_api.post(
        "/api/v1/tasks",
        params={"async_mode": "true", "allow_defaults": "true", "operation_id": "op-uuid-1"},
        json=body,
    )
    assert response.status_code == 202, response.text
    op = response.json()
    assert (op["id"], op["type"], op["status"]) == ("op-uuid-1", "TASK.BATCH_CREATE", "SUCCESS")
    assert requester_api.get("/api/v1/operations/op-uuid-1").json()["details"]["items_count"] == 11
    log = requester_api.get("/api/v1/operations/op-uuid-1/log").json()
    assert [entry["input"]["__item_idx"] for entry in log] == [str(i) for i in range(11)]
    ids = [entry["output"]["task_id"] for entry in log]
    # The client re-reads with string min/max: fixed-width ids keep string order = numeric order.
    found = requester_api.get(
        "/api/v1/tasks",
        params={"pool_id": pool["id"], "id_gte": min(ids), "id_lte": max(ids), "sort": "id"},
    ).json()
    assert len(found["items"]) == 11 and not found["has_more"]
    golden = found["items"][0]
    assert golden["known_solutions"] == [
        {"output_values": {"result": "cat"}, "correctness_weight": 1}
    ]
    assert (golden["overlap"], golden["infinite_overlap"]) == (None, True)
    assert (found["items"][1]["overlap"], found["items"][1]["infinite_overlap"]) == (3, False)
    retry = requester_api.post(
        "/api/v1/tasks", params={"async_mode": "true", "operation_id": "op-uuid-1"}, json=body
    )
    assert retry.status_code == 409 and retry.json()["code"] == "OPERATION_ALREADY_EXISTS"


def test_tasks_sync_mode_skip_invalid_and_all_or_nothing(requester_api, session, requester):
    pool = make_pool(session, requester)
    pid = f"{pool.id:010d}"
    items = [
        {"pool_id": pid, "input_values": {"image": "https://x.example/1.png"}},
        {
            "pool_id": pid,
            "input_values": {"image": "https://x.example/2.png"},
            "known_solutions": [{"output_values": {"result": "cow"}}],
        },
    ]
    refused = requester_api.post("/api/v1/tasks", json=items)
    assert refused.status_code == 422
    assert requester_api.get("/api/v1/tasks", params={"pool_id": pid}).json()["items"] == []
    partial = requester_api.post("/api/v1/tasks", params={"skip_invalid_items": "true"}, json=items)
    assert partial.status_code == 201
    assert list(partial.json()["items"]) == ["0"] and list(partial.json()["validation_errors"]) == [
        "1"
    ]
    single = requester_api.post(
        "/api/v1/tasks", json={**items[0], "input_values": {"image": "https://x.example/3.png"}}
    )
    assert single.status_code == 201 and single.json()["pool_id"] == pid


def test_task_paging_and_patch_marks_control(requester_api, session, requester):
    pool = make_pool(session, requester)
    add_tasks(session, pool, general=5)
    first = requester_api.get("/api/v1/tasks", params={"pool_id": pool.id, "limit": 3}).json()
    assert len(first["items"]) == 3 and first["has_more"]
    rest = requester_api.get(
        "/api/v1/tasks", params={"pool_id": pool.id, "limit": 3, "id_gt": first["items"][-1]["id"]}
    ).json()
    assert len(rest["items"]) == 2 and not rest["has_more"]
    task_id = first["items"][0]["id"]
    marked = requester_api.patch(
        f"/api/v1/tasks/{task_id}", json={"known_solutions": [{"output_values": {"result": "dog"}}]}
    ).json()
    assert marked["known_solutions"][0]["output_values"] == {"result": "dog"}
    unmarked = requester_api.patch(
        f"/api/v1/tasks/{task_id}", json={"known_solutions": None}
    ).json()
    assert "known_solutions" not in unmarked and unmarked["overlap"] == 3


def test_open_needs_funds_then_reserves_and_close_releases(requester_api, session, requester):
    pool = make_pool(session, requester, reward_cents=10, overlap=1, general_per_suite=1)
    add_tasks(session, pool, general=3)
    pid = f"{pool.id:010d}"
    assert requester_api.get(f"/api/v1/pools/{pid}/budget").json()["total"] == 0.3
    short = requester_api.post(f"/api/v1/pools/{pid}/open")
    assert short.status_code == 409 and short.json()["code"] == "INSUFFICIENT_FUNDS"
    assert short.json()["payload"]["shortfall"] == 0.3
    ledger.top_up(session, user=requester, amount_cents=100)
    opened = requester_api.post(f"/api/v1/pools/{pid}/open")
    assert opened.status_code == 202 and opened.json()["type"] == "POOL.OPEN"
    assert opened.json()["parameters"] == {"pool_id": pid}
    assert requester_api.get(f"/api/v1/pools/{pid}").json()["status"] == "OPEN"
    assert requester_api.post(f"/api/v1/pools/{pid}/open").status_code == 204
    assert requester_api.post(f"/api/v1/pools/{pid}/archive").status_code == 409
    closed = requester_api.post(f"/api/v1/pools/{pid}/close")
    assert closed.status_code == 202 and closed.json()["type"] == "POOL.CLOSE"
    got = requester_api.get(f"/api/v1/pools/{pid}").json()
    assert (got["status"], got["last_close_reason"]) == ("CLOSED", "MANUAL")
    assert ledger.get_balance(session, user=requester) == 100
    assert requester_api.post(f"/api/v1/pools/{pid}/close").status_code == 204
    assert requester_api.post(f"/api/v1/pools/{pid}/archive").status_code == 202
    assert requester_api.get(f"/api/v1/pools/{pid}").json()["status"] == "ARCHIVED"


def test_list_pools_by_project_and_status(requester_api, session, requester):
    project = make_project(session, requester)
    a = make_pool(session, requester, project)
    make_pool(session, requester)
    items = requester_api.get("/api/v1/pools", params={"project_id": project.id}).json()["items"]
    assert [p["id"] for p in items] == [f"{a.id:010d}"]
    assert requester_api.get("/api/v1/pools", params={"status": "OPEN"}).json()["items"] == []


def test_zip_upload_through_the_api(requester_api, session, requester):
    pool = make_pool(session, requester)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, label in enumerate(("cat", "dog", "bird")):
            image = io.BytesIO()
            Image.new("RGB", (5, 5), (i, i, i)).save(image, "PNG")
            archive.writestr(f"{label}/{i}.png", image.getvalue())
    response = requester_api.post(
        f"/api/v1/pools/{pool.id}/uploads",
        data={"kind": "zip"},
        files={"files": ("d.zip", buffer.getvalue(), "application/zip")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["created"]["control"] == 3
    bad = requester_api.post(
        f"/api/v1/pools/{pool.id}/uploads",
        data={"kind": "tsv"},
        files={"files": ("t.tsv", b"INPUT:image\tX:y\n", "text/plain")},
    )
    assert bad.status_code == 422 and bad.json()["code"] == "UPLOAD_REJECTED"


def test_another_requesters_ids_are_404(requester_api, session):
    other = make_requester(session)
    pool = make_pool(session, other)
    (task,) = add_tasks(session, pool, general=1)
    for method, path in (
        ("get", f"/api/v1/pools/{pool.id}"),
        ("put", f"/api/v1/pools/{pool.id}"),
        ("post", f"/api/v1/pools/{pool.id}/open"),
        ("post", f"/api/v1/pools/{pool.id}/close"),
        ("post", f"/api/v1/pools/{pool.id}/archive"),
        ("get", f"/api/v1/pools/{pool.id}/budget"),
        ("get", f"/api/v1/pools/{pool.id}/progress"),
        ("get", f"/api/v1/tasks/{task.id}"),
        ("patch", f"/api/v1/tasks/{task.id}"),
    ):
        kwargs = {"json": {}} if method in ("put", "patch") else {}
        response = getattr(requester_api, method)(path, **kwargs)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] == "DOES_NOT_EXIST"
    created = requester_api.post(
        "/api/v1/tasks",
        json={"pool_id": str(pool.id), "input_values": {"image": "https://a.b/c.png"}},
    )
    assert created.status_code == 404
    assert (
        requester_api.post(
            "/api/v1/pools", json={**NOTEBOOK_POOL, "project_id": str(pool.project_id)}
        ).status_code
        == 404
    )
    assert requester_api.get("/api/v1/tasks", params={"pool_id": pool.id}).json()["items"] == []
