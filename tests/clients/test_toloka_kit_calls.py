"""toloka-kit calls beyond the notebook flow: clone, priority, a task's overlap, one task
aggregated by skill, and Toloka's error shape for calls Crowdlab does not offer."""

from __future__ import annotations

import warnings

import httpx
import pytest

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client import exceptions
    from toloka.client.aggregation import PoolAggregatedSolutionRequest
    from toloka.client.task import TaskOverlapPatch

from sqlmodel import select

from app.db.models import Pool
from app.services.quality import skills
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler
from tests.services.quality.helpers import submit_suite


def _v(value):
    return getattr(value, "value", value)


def _pid(number: int) -> str:
    return f"{number:010d}"


def test_clone_pool_and_training_copy_settings_without_tasks(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    project = make_project(session, requester)
    rules = [
        {
            "collector_config": {"type": "GOLDEN_SET", "parameters": {"history_size": 10}},
            "rules": [
                {
                    "conditions": [
                        {"key": "golden_set_answers_count", "operator": "GTE", "value": 3},
                        {"key": "golden_set_correct_answers_rate", "operator": "LT", "value": 60},
                    ],
                    "action": {
                        "type": "RESTRICTION_V2",
                        "parameters": {
                            "scope": "PROJECT",
                            "duration": 1,
                            "duration_unit": "DAYS",
                            "private_comment": "controls",
                        },
                    },
                }
            ],
        }
    ]
    pool = make_pool(
        session,
        requester,
        project,
        name="Original",
        overlap=5,
        reward_cents=7,
        quality_rules=rules,
        filter_languages=["EN"],
        priority=10,
    )
    add_tasks(session, pool, general=3, control=["cat"])
    clone = client.clone_pool(_pid(pool.id))
    assert clone.id != _pid(pool.id) and clone.project_id == _pid(project.id)
    assert clone.private_name == "Original" and _v(clone.status) == "DRAFT"
    assert clone.defaults.default_overlap_for_new_task_suites == 5
    assert float(clone.reward_per_assignment) == 0.07 and clone.priority == 10
    assert [_v(c.collector_config.type) for c in clone.quality_control.configs] == ["GOLDEN_SET"]
    assert list(client.get_tasks(pool_id=clone.id)) == []
    operation = client.get_operation(client.clone_pool_async(_pid(pool.id)).id)
    assert _v(operation.type) == "POOL.CLONE" and operation.parameters.pool_id == _pid(pool.id)

    training = client.create_training(
        toloka.Training(
            project_id=_pid(project.id),
            private_name="Warm-up",
            assignment_max_duration_seconds=300,
            training_tasks_in_task_suite_count=2,
        )
    )
    copied = client.clone_training(training.id)
    assert copied.id != training.id and copied.private_name == "Warm-up"
    assert copied.training_tasks_in_task_suite_count == 2


def test_patch_pool_priority_and_refusals(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    pool = make_pool(session, requester)
    patched = client.patch_pool(_pid(pool.id), priority=42)
    assert patched.priority == 42
    session.expire_all()
    assert session.get(Pool, pool.id).priority == 42
    with pytest.raises(exceptions.ValidationApiError):
        client.patch_pool(_pid(pool.id), priority=101)
    refused = httpx.patch(
        f"{toloka_server.url}/api/v1/pools/{_pid(pool.id)}",
        json={"priority": 1, "private_name": "sneaky"},
        headers={"Authorization": f"OAuth {token}", "X-Caller-Context": "client"},
    )
    assert refused.status_code == 422 and "private_name" in refused.json()["payload"]


def test_patch_task_overlap_or_min(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    pool = make_pool(session, requester, overlap=3, general_per_suite=1, control_per_suite=0)
    first, second, control = add_tasks(session, pool, general=2, control=["cat"])
    open_pool(session, requester, pool)
    for _ in range(2):
        submit_suite(pool, make_labeler(session), [(first, "cat")])
    raised = client.patch_task_overlap_or_min(_pid(second.id), TaskOverlapPatch(overlap=5))
    assert raised.overlap == 5
    # fewer than already have it: the overlap stops at the slots taken
    stopped = client.patch_task_overlap_or_min(_pid(first.id), TaskOverlapPatch(overlap=0))
    assert stopped.overlap == 2 and stopped.remaining_overlap == 0
    with pytest.raises(exceptions.ValidationApiError) as untaken:
        client.patch_task_overlap_or_min(_pid(second.id), TaskOverlapPatch(overlap=0))
    assert "overlap" in untaken.value.payload
    with pytest.raises(exceptions.ValidationApiError):
        client.patch_task_overlap_or_min(_pid(control.id), TaskOverlapPatch(overlap=2))
    with pytest.raises(exceptions.ValidationApiError):
        client.patch_task_overlap_or_min(
            _pid(second.id), TaskOverlapPatch(overlap=2, infinite_overlap=True)
        )


def test_aggregate_solutions_by_task_weights_answers_by_skill(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    project = make_project(session, requester, options=["OK", "BAD", "NA"])
    pool = make_pool(session, requester, project)
    (task,) = add_tasks(session, pool, general=1)
    good, better, loner = make_labeler(session), make_labeler(session), make_labeler(session)
    add_answers(session, pool, {task.id: [(good, "OK"), (better, "OK"), (loner, "BAD")]})
    skill = skills.create_skill(session, requester=requester, name="Accuracy")
    for labeler, value in ((good, 70), (better, 90), (loner, 40)):
        skills.set_user_skill(
            session, requester=requester, skill_id=skill.id, labeler_id=labeler.id, value=value
        )
    result = client.aggregate_solutions_by_task(
        pool_id=_pid(pool.id),
        task_id=_pid(task.id),
        answer_weight_skill_id=_pid(skill.id),
        fields=[PoolAggregatedSolutionRequest.Field(name="result")],
    )
    assert result.task_id == _pid(task.id) and result.output_values == {"result": "OK"}
    assert 0.97 < float(result.confidence) < 1.0


def test_calls_crowdlab_lacks_answer_in_tolokas_shape(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    pool = make_pool(session, requester)
    with pytest.raises(exceptions.ApiError) as closing:
        client.close_pool_for_update(_pid(pool.id))
    assert closing.value.code == "NOT_SUPPORTED"
    with pytest.raises(exceptions.ApiError) as message:
        list(client.get_message_threads(folder="INBOX"))
    assert message.value.code == "NOT_SUPPORTED"
    headers = {"Authorization": f"OAuth {token}"}
    for method, path in (
        ("get", "/api/v1/no-such-thing"),
        ("delete", f"/api/v1/pools/{_pid(pool.id)}"),
        ("get", "/api/v1/projects/1/nothing-here"),
    ):
        response = httpx.request(method, f"{toloka_server.url}{path}", headers=headers)
        assert response.status_code == 501, (path, response.text)
        assert response.json()["code"] == "NOT_SUPPORTED"
        assert "Crowdlab does not support" in response.json()["message"]
    assert session.exec(select(Pool)).first() is not None


def test_task_suites_go_out_whole_and_overlap_times(toloka_server, session, funded):
    from app.services.labeling import assignments
    from app.services.projects import pools as pool_service

    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    project = make_project(session, requester)
    pool = make_pool(session, requester, project, general_per_suite=2, control_per_suite=0)

    def suite(*names, overlap=2, golden=None):
        tasks = [toloka.Task(input_values={"image": f"https://img.example/{n}.jpg"}) for n in names]
        if golden:
            tasks.append(
                toloka.Task(
                    input_values={"image": "https://img.example/golden.jpg"},
                    known_solutions=[
                        toloka.task.BaseTask.KnownSolution(output_values={"result": golden})
                    ],
                )
            )
        return toloka.TaskSuite(pool_id=_pid(pool.id), overlap=overlap, tasks=tasks)

    created = client.create_task_suites([suite("a", "b", golden="cat"), suite("c", overlap=1)])
    assert len(created.items) == 2 and not created.validation_errors
    first, second = created.items["0"], created.items["1"]
    assert [len(first.tasks), len(second.tasks)] == [3, 1]
    assert first.tasks[2].known_solutions[0].output_values == {"result": "cat"}
    assert first.overlap == 2 and first.remaining_overlap == 2
    listed = list(client.get_task_suites(pool_id=_pid(pool.id), batch_size=1))
    assert [s.id for s in listed] == [first.id, second.id]
    one = client.create_task_suite(suite("d", overlap=1))
    assert one.pool_id == _pid(pool.id) and len(one.tasks) == 1

    # settings Crowdlab does not act on are refused, not dropped
    with pytest.raises(exceptions.ValidationApiError) as refused:
        client.create_task_suite(
            toloka.TaskSuite(
                pool_id=_pid(pool.id),
                overlap=1,
                reserved_for=["someone"],
                tasks=[toloka.Task(input_values={"image": "https://img.example/e.jpg"})],
            ),
            async_mode=False,
        )
    assert "reserved_for" in refused.value.payload
    # the pool now holds composed suites only
    with pytest.raises(exceptions.ApiError):
        client.create_task(
            toloka.Task(pool_id=_pid(pool.id), input_values={"image": "https://img.example/x.jpg"}),
            allow_defaults=True,
        )
    session.expire_all()
    review = pool_service.review_budget(session, requester=requester, pool_id=pool.id)
    assert review.suites == 2 + 1 + 1

    open_pool(session, requester, pool)
    labelers = [make_labeler(session) for _ in range(4)]
    from app.db.engine import new_session

    handed: list[list[int]] = []
    for labeler in labelers:
        with new_session(write=True) as s:
            try:
                view = assignments.assign_next_suite(s, labeler=labeler, pool_id=pool.id)
            except assignments.NoSuiteAvailable:
                handed.append([])
                continue
            handed.append([t.task_id for t in view.tasks])
    ids = {s_.id: [int(t.id) for t in s_.tasks] for s_ in (first, second, one)}
    assert handed == [ids[first.id], ids[first.id], ids[second.id], ids[one.id]]
    fifth = make_labeler(session)
    with new_session(write=True) as s, pytest.raises(assignments.NoSuiteAvailable):
        assignments.assign_next_suite(s, labeler=fifth, pool_id=pool.id)
    assert client.get_task_suite(first.id).remaining_overlap == 0


def test_task_suites_are_refused_in_a_pool_of_loose_tasks(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    pool = make_pool(session, requester)
    add_tasks(session, pool, general=1)
    with pytest.raises(exceptions.ApiError) as mixed:
        client.create_task_suite(
            toloka.TaskSuite(
                pool_id=_pid(pool.id),
                overlap=1,
                tasks=[toloka.Task(input_values={"image": "https://img.example/z.jpg"})],
            )
        )
    assert mixed.value.code == "CONFLICT_STATE" or "own" in str(mixed.value)
