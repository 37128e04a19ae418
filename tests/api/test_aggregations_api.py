"""Aggregation API: Toloka's aggregate-by-pool + paged aggregated solutions, and our runs."""

from __future__ import annotations

import pytest

from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_labeler, make_requester, make_token


@pytest.fixture
def pool(session, requester):
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=5, control=["dog"])
    people = [make_labeler(session) for _ in range(3)]
    answers = {t.id: [(p, "cat") for p in people] for t in tasks[:3]}
    answers[tasks[3].id] = [(people[0], "dog"), (people[1], "dog"), (people[2], "cat")]
    answers[tasks[5].id] = [(p, "dog") for p in people]
    add_answers(session, pool, answers)
    return pool.id, tasks


def _aggregate(client, pool_id, kind="DAWID_SKENE", **params):
    body = {"type": kind, "pool_id": str(pool_id), "fields": [{"name": "result"}]}
    return client.post("/api/v1/aggregated-solutions/aggregate-by-pool", json=body, params=params)


def test_aggregate_by_pool_answers_an_operation_and_results_page_by_task_id(requester_api, pool):
    pool_id, tasks = pool

    response = _aggregate(requester_api, pool_id)

    assert response.status_code == 202
    operation = response.json()
    assert operation["type"] == "SOLUTION.AGGREGATE"
    assert operation["status"] == "SUCCESS"
    assert operation["parameters"] == {"pool_id": f"{pool_id:010d}"}
    polled = requester_api.get(f"/api/v1/operations/{operation['id']}").json()
    assert polled["status"] == "SUCCESS"

    items, params = [], {"sort": "task_id", "limit": 2}
    while True:
        page = requester_api.get(f"/api/v1/aggregated-solutions/{operation['id']}", params=params)
        assert page.status_code == 200
        body = page.json()
        items += body["items"]
        if not body["has_more"]:
            break
        params["task_id_gt"] = body["items"][-1]["task_id"]
    assert [item["task_id"] for item in items] == [f"{t.id:010d}" for t in tasks[:4]]
    assert items[0] == {
        "pool_id": f"{pool_id:010d}",
        "task_id": f"{tasks[0].id:010d}",
        "confidence": pytest.approx(1.0),
        "output_values": {"result": "cat"},
    }
    assert items[3]["output_values"] == {"result": "dog"}
    assert all(0.0 <= item["confidence"] <= 1.0 for item in items)


def test_majority_vote_type_and_a_client_chosen_operation_id(requester_api, pool):
    pool_id, tasks = pool

    response = _aggregate(requester_api, pool_id, kind="MAJORITY_VOTE", operation_id="op-123")

    assert response.json()["id"] == "op-123"
    page = requester_api.get("/api/v1/aggregated-solutions/op-123", params={"limit": 10}).json()
    fourth = next(i for i in page["items"] if i["task_id"] == f"{tasks[3].id:010d}")
    assert fourth["confidence"] == pytest.approx(2 / 3)
    again = _aggregate(requester_api, pool_id, operation_id="op-123")
    assert (again.status_code, again.json()["code"]) == (409, "OPERATION_ALREADY_EXISTS")


def test_bad_requests_get_toloka_style_errors(requester_api, pool):
    pool_id, _ = pool

    unknown = _aggregate(requester_api, pool_id, kind="ORACLE")
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "VALIDATION_ERROR"
    assert "type" in unknown.json()["payload"]["errors"]
    op = _aggregate(requester_api, pool_id).json()["id"]
    bad_sort = requester_api.get(f"/api/v1/aggregated-solutions/{op}", params={"sort": "-conf"})
    assert bad_sort.status_code == 422
    missing = requester_api.get("/api/v1/aggregated-solutions/999999")
    assert (missing.status_code, missing.json()["code"]) == (404, "DOES_NOT_EXIST")


def test_another_requester_gets_404_for_the_pool_the_operation_and_the_run(
    requester_api, pool, session, make_client
):
    pool_id, _ = pool
    op = _aggregate(requester_api, pool_id).json()["id"]
    run_id = requester_api.get(f"/api/v1/pools/{pool_id}/aggregations").json()["items"][0]["id"]
    other = make_client()
    other.headers["Authorization"] = f"OAuth {make_token(session, make_requester(session))}"

    assert _aggregate(other, pool_id).status_code == 404
    assert other.get(f"/api/v1/aggregated-solutions/{op}").status_code == 404
    assert other.get(f"/api/v1/pools/{pool_id}/aggregations").status_code == 404
    assert other.get(f"/api/v1/aggregations/{run_id}").status_code == 404
    assert other.get(f"/api/v1/aggregations/{run_id}/results.tsv").status_code == 404


def test_labelers_cannot_aggregate(labeler_api, pool):
    pool_id, _ = pool
    assert _aggregate(labeler_api, pool_id).status_code == 403


def test_runs_are_listed_and_their_tsv_downloads(requester_api, pool):
    pool_id, tasks = pool
    started = requester_api.post(
        f"/api/v1/pools/{pool_id}/aggregations", json={"method": "wawa", "use_known": False}
    )
    assert started.status_code == 202
    run = started.json()

    listed = requester_api.get(f"/api/v1/pools/{pool_id}/aggregations").json()
    tsv = requester_api.get(f"/api/v1/aggregations/{run['id']}/results.tsv")
    unanswered = requester_api.get(f"/api/v1/aggregations/{run['id']}/unanswered.tsv")

    assert [r["id"] for r in listed["items"]] == [run["id"]]
    assert listed["items"][0]["method"] == "wawa" and listed["items"][0]["use_known"] is False
    assert listed["items"][0]["status"] == "succeeded"
    assert (listed["items"][0]["task_count"], listed["items"][0]["unanswered_count"]) == (5, 1)
    lines = tsv.text.splitlines()
    assert lines[0] == "INPUT:image\tOUTPUT:result\tCONFIDENCE:result"
    assert len(lines) == 5 and lines[1].startswith(tasks[0].image + "\tcat\t")
    assert unanswered.text.splitlines() == ["INPUT:image", tasks[4].image]


def test_a_run_says_which_method_produced_the_labels_and_if_confidence_is_calibrated(
    requester_api, pool
):
    pool_id, _ = pool
    started = requester_api.post(f"/api/v1/pools/{pool_id}/aggregations", json={})
    assert started.status_code == 202

    run = requester_api.get(f"/api/v1/pools/{pool_id}/aggregations").json()["items"][0]

    assert run["method"] == "auto" and run["status"] == "succeeded"
    assert run["method_used"] == "bds"  # too few control tasks to choose among methods
    assert run["confidence_calibrated"] is False and run["heldout_ece"] is None
