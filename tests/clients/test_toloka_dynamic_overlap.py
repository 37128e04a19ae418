"""toloka-kit and dynamic overlap: the config round-trips (create, read, update, off),
fields Crowdlab does not honour are refused in Toloka's error shape, and a task's
``baseline_solutions`` are accepted, stored and returned."""

from __future__ import annotations

import warnings

import httpx
import pytest
from sqlmodel import select

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client import exceptions
    from toloka.client.pool.dynamic_overlap_config import DynamicOverlapConfig
    from toloka.client.task import TaskPatch

from app.db.models import Pool, Task
from app.errors import CrowdlabError
from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.quality.skills import create_skill
from tests.builders.pools import make_project
from tests.builders.users import make_labeler


def _v(value):
    return getattr(value, "value", value)


def _pid(number: int) -> str:
    return f"{number:010d}"


def _draft(project_id: int, **fields) -> toloka.Pool:
    return toloka.Pool(
        project_id=_pid(project_id),
        private_name="Dynamic",
        may_contain_adult_content=False,
        reward_per_assignment=0.05,
        assignment_max_duration_seconds=600,
        defaults=toloka.Pool.Defaults(default_overlap_for_new_task_suites=1),
        **fields,
    )


def _answer_cat(session, labeler, view) -> None:
    """The labeler answers "cat" on every task of the suite."""
    submit_assignment(
        session, labeler=labeler, assignment_id=view.assignment_id,
        answers={t.position: "cat" for t in view.tasks}, by_position=True,
    )  # fmt: skip


def test_toloka_kit_creates_reads_and_updates_dynamic_overlap(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    project = make_project(session, requester)
    skill = create_skill(session, requester=requester, name="Digits accuracy")
    session.commit()
    draft = _draft(
        project.id,
        dynamic_overlap_config=DynamicOverlapConfig(
            type="BASIC",
            max_overlap=5,
            min_confidence=0.85,
            answer_weight_skill_id=_pid(skill.id),
            fields=[DynamicOverlapConfig.Field(name="result")],
        ),
    )
    draft.set_mixer_config(real_tasks_count=5, golden_tasks_count=1)
    created = client.create_pool(draft)
    config = created.dynamic_overlap_config
    assert config is not None
    assert (config.max_overlap, config.min_confidence) == (5, 0.85)
    assert config.answer_weight_skill_id == _pid(skill.id)
    assert [f.name for f in config.fields] == ["result"]

    read = client.get_pool(created.id)
    assert read.dynamic_overlap_config.max_overlap == 5
    stored = session.get(Pool, int(created.id))
    session.refresh(stored)
    assert (stored.overlap, stored.max_overlap, stored.min_confidence) == (1, 5, 0.85)

    read.dynamic_overlap_config.max_overlap = 4
    read.dynamic_overlap_config.min_confidence = 0.9
    updated = client.update_pool(read.id, read)
    config = updated.dynamic_overlap_config
    assert (config.max_overlap, config.min_confidence) == (4, 0.9)
    assert client.get_pool(created.id).dynamic_overlap_config.min_confidence == 0.9

    read = client.get_pool(created.id)
    read.dynamic_overlap_config = None  # toloka-kit then leaves the key out: kept as is
    assert client.update_pool(read.id, read).dynamic_overlap_config.max_overlap == 4


def test_a_max_overlap_below_the_overlap_is_refused_with_words(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    project = make_project(session, requester)
    draft = _draft(
        project.id,
        dynamic_overlap_config=DynamicOverlapConfig(
            type="BASIC", max_overlap=1, min_confidence=0.8
        ),
    )
    draft.defaults.default_overlap_for_new_task_suites = 3
    draft.set_mixer_config(real_tasks_count=5)
    with pytest.raises(exceptions.ValidationApiError) as exc:
        client.create_pool(draft)
    assert "dynamic_overlap_config.max_overlap" in exc.value.payload
    assert "at least the overlap" in str(exc.value.payload)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("auto_close_after_complete_delay_seconds", 600),
        ("public_instructions", "<p>Pool instructions</p>"),
        (
            "dynamic_pricing_config",
            {"type": "SKILL", "skill_id": "1", "intervals": [{"from": 50, "to": 100}]},
        ),
    ],
)
def test_pool_settings_crowdlab_does_not_honour_are_refused(
    toloka_server, session, funded, field, value
):
    requester, token = funded
    project = make_project(session, requester)
    draft = _draft(project.id)
    draft.set_mixer_config(real_tasks_count=5)
    payload = toloka.unstructure(draft)
    payload[field] = value
    response = httpx.post(
        f"{toloka_server.url}/api/v1/pools",
        json=payload,
        headers={"Authorization": f"OAuth {token}", "X-Caller-Context": "client"},
    )
    assert response.status_code == 422, response.text
    details = response.json()
    assert details["code"] == "VALIDATION_ERROR"
    assert field in str(details["payload"])
    assert "NOT_SUPPORTED" in str(details["payload"])
    assert session.exec(select(Pool).where(Pool.project_id == project.id)).all() == []


CAT_90 = toloka.Task.BaselineSolution(output_values={"result": "cat"}, confidence_weight=0.9)


def _one_task_suites_pool(
    toloka_server, session, funded
) -> tuple[toloka.TolokaClient, toloka.Pool]:
    """A client of the funded requester and its draft pool: one task per suite, dynamic
    overlap up to 3 until 80 %."""
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    draft = _draft(
        make_project(session, requester).id,
        dynamic_overlap_config=DynamicOverlapConfig(
            type="BASIC", max_overlap=3, min_confidence=0.8
        ),
    )
    draft.set_mixer_config(real_tasks_count=1)
    return client, client.create_pool(draft)


def test_baseline_solutions_are_stored_returned_and_weigh_in(toloka_server, session, funded):
    """A requester's own model answers first through ``baseline_solutions``: a confident
    baseline plus one agreeing labeler closes the task; a task without one gets a slot."""
    client, pool = _one_task_suites_pool(toloka_server, session, funded)
    baseline = [CAT_90]
    with_model = client.create_task(
        toloka.Task(pool_id=pool.id, input_values={"image": "https://img.example/a.png"},
                    baseline_solutions=baseline),
        allow_defaults=True,
    )  # fmt: skip
    plain = client.create_task(
        toloka.Task(pool_id=pool.id, input_values={"image": "https://img.example/b.png"}),
        allow_defaults=True,
    )
    read = client.get_task(with_model.id)
    assert [(b.output_values, b.confidence_weight) for b in read.baseline_solutions] == [
        ({"result": "cat"}, 0.9)
    ]
    assert client.get_task(plain.id).baseline_solutions is None

    bad = toloka.Task(
        pool_id=pool.id,
        input_values={"image": "https://img.example/c.png"},
        baseline_solutions=[
            toloka.Task.BaselineSolution(output_values={"result": "zebra"}, confidence_weight=1)
        ],
    )
    with pytest.raises(exceptions.ValidationApiError) as exc:
        client.create_task(bad, allow_defaults=True)
    assert "baseline_solutions.0.output_values.result" in exc.value.payload

    client.open_pool(pool.id)
    # labelers with no control history, all answering "cat"; the least certain task first
    for _ in range(10):
        labeler = make_labeler(session)
        try:
            view = assign_next_suite(session, labeler=labeler, pool_id=int(pool.id))
        except CrowdlabError:
            break
        _answer_cat(session, labeler, view)
    session.expire_all()
    assert session.get(Task, int(with_model.id)).submitted_count == 1  # baseline + 1: 0.95
    assert session.get(Task, int(plain.id)).submitted_count == 3  # 0.5, 0.67, then 0.8
    assert _v(client.get_pool(pool.id).status) == "CLOSED"


def test_baseline_solutions_can_be_patched_after_the_task_is_created(
    toloka_server, session, funded
):
    """A requester's model answers later: ``patch_task`` sets a task's preliminary answer
    (its confidence follows at once), and an empty list (or ``null``) removes it."""
    client, pool = _one_task_suites_pool(toloka_server, session, funded)
    task = client.create_task(
        toloka.Task(pool_id=pool.id, input_values={"image": "https://img.example/a.png"}),
        allow_defaults=True,
    )
    patch = TaskPatch(baseline_solutions=[CAT_90])
    patched = client.patch_task(task.id, patch)
    assert [(b.output_values, b.confidence_weight) for b in patched.baseline_solutions] == [
        ({"result": "cat"}, 0.9)
    ]
    assert session.get(Task, int(task.id)).confidence == pytest.approx(0.9)
    bad = TaskPatch(
        baseline_solutions=[
            toloka.Task.BaselineSolution(output_values={"result": "zebra"}, confidence_weight=1)
        ]
    )
    with pytest.raises(exceptions.ValidationApiError) as exc:
        client.patch_task(task.id, bad)
    assert "baseline_solutions.0.output_values.result" in exc.value.payload
    client.open_pool(pool.id)
    labeler = make_labeler(session)
    view = assign_next_suite(session, labeler=labeler, pool_id=int(pool.id))
    _answer_cat(session, labeler, view)
    session.expire_all()
    assert session.get(Task, int(task.id)).submitted_count == 1  # the patched baseline counted
    assert _v(client.get_pool(pool.id).status) == "CLOSED"


def test_removing_a_baseline_gives_the_task_the_answers_it_now_needs(
    toloka_server, session, funded
):
    client, pool = _one_task_suites_pool(toloka_server, session, funded)
    baseline = [CAT_90]
    task = client.create_task(
        toloka.Task(pool_id=pool.id, input_values={"image": "https://img.example/a.png"},
                    baseline_solutions=baseline),
        allow_defaults=True,
    )  # fmt: skip
    client.create_task(  # a second task keeps the pool open after the first closes
        toloka.Task(pool_id=pool.id, input_values={"image": "https://img.example/b.png"}),
        allow_defaults=True,
    )
    client.open_pool(pool.id)
    labeler = make_labeler(session)
    view = assign_next_suite(session, labeler=labeler, pool_id=int(pool.id))
    while view.tasks[0].task_id != int(task.id):  # the baseline task is the more certain one
        _answer_cat(session, labeler, view)
        labeler = make_labeler(session)
        view = assign_next_suite(session, labeler=labeler, pool_id=int(pool.id))
    _answer_cat(session, labeler, view)
    session.expire_all()
    assert session.get(Task, int(task.id)).submitted_count == 1  # closed: baseline + one
    reopened = client.patch_task(task.id, TaskPatch(baseline_solutions=[]))  # kit drops None
    assert not reopened.baseline_solutions
    session.expire_all()
    stored = session.get(Task, int(task.id))
    assert stored.confidence == pytest.approx(0.5)  # one unweighted labeler of two options
    assert stored.overlap == 2  # below 0.8 with every slot answered: one more slot
