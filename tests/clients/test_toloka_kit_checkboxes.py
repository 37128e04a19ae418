"""toloka-kit 1.2.3 round-trips a checkbox project: a ``field.checkbox-group`` view with an
``array_string`` output, known solutions that are lists, answers read back as lists (API)
and as JSON lists in ``OUTPUT:result`` (TSV)."""

from __future__ import annotations

import datetime
import json
import warnings

import pytest

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client import exceptions
    from toloka.client.project import template_builder as tb

from app.db.engine import new_session
from app.db.models import Pool, PoolStatus
from app.services.labeling import assignments, submissions
from tests.builders.users import make_labeler

TAGS = ("cat", "dog", "bird")


def _project() -> toloka.Project:
    checkboxes = tb.CheckboxGroupFieldV1(
        tb.OutputData("result"), [tb.fields.GroupFieldOption(v, v.title()) for v in TAGS]
    )
    view = tb.TemplateBuilder(
        view=tb.ListViewV1([tb.ImageViewV1(tb.InputData("image")), checkboxes]),
        plugins=[tb.TolokaPluginV1(tb.TolokaPluginV1.TolokaPluginLayout("scroll"))],
    )
    return toloka.Project(
        public_name="What is in the picture?",
        public_description="Tick every animal you see.",
        public_instructions="Tick all that apply.",
        task_spec=toloka.project.task_spec.TaskSpec(
            input_spec={"image": toloka.project.field_spec.UrlSpec()},
            output_spec={
                "result": toloka.project.field_spec.ArrayStringSpec(allowed_values=list(TAGS))
            },
            view_spec=toloka.project.TemplateBuilderViewSpec(config=view),
        ),
    )


def test_checkbox_project_round_trip(toloka_server, session, funded):
    _requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    project = client.create_project(_project())
    again = client.get_project(project.id)
    output = again.task_spec.output_spec["result"]
    assert isinstance(output, toloka.project.field_spec.ArrayStringSpec)
    assert list(output.allowed_values) == list(TAGS)
    assert again.task_spec.view_spec.config == project.task_spec.view_spec.config

    pool = client.create_pool(
        toloka.Pool(
            project_id=project.id,
            private_name="Tags",
            may_contain_adult_content=False,
            will_expire=datetime.datetime.utcnow() + datetime.timedelta(days=1),
            reward_per_assignment=0.05,
            assignment_max_duration_seconds=600,
            auto_accept_solutions=True,
            defaults=toloka.Pool.Defaults(default_overlap_for_new_task_suites=1),
        )
    )
    pool.set_mixer_config(real_tasks_count=2, golden_tasks_count=1)
    pool = client.update_pool(pool.id, pool)
    golden = toloka.Task(
        pool_id=pool.id,
        input_values={"image": "https://img.example/golden.jpg"},
        known_solutions=[
            toloka.task.BaseTask.KnownSolution(output_values={"result": ["dog", "cat"]})
        ],
        infinite_overlap=True,
    )
    bad = toloka.Task(
        pool_id=pool.id,
        input_values={"image": "https://img.example/bad.jpg"},
        known_solutions=[toloka.task.BaseTask.KnownSolution(output_values={"result": ["cow"]})],
    )
    with pytest.raises(exceptions.ValidationApiError) as refused:
        client.create_tasks([bad], allow_defaults=True, skip_invalid_items=True)
    assert "“cow” is not among the options" in str(refused.value)
    real = [
        toloka.Task(pool_id=pool.id, input_values={"image": f"https://img.example/{i}.jpg"})
        for i in range(2)
    ]
    created = client.create_tasks([golden, *real], allow_defaults=True)
    assert created.items["0"].known_solutions[0].output_values["result"] == ["cat", "dog"]
    client.open_pool(pool.id)

    labeler = make_labeler(session, name="tagger")
    with new_session(write=True) as s:
        view = assignments.assign_next_suite(s, labeler=labeler, pool_id=int(pool.id))
        answers = {t.task_id: ["bird", "cat"] for t in view.tasks}
        submissions.submit_assignment(
            s, labeler=labeler, assignment_id=view.assignment_id, answers=answers
        )
    with new_session() as s:
        assert s.get(Pool, int(pool.id)).status in (PoolStatus.OPEN, PoolStatus.CLOSED)

    (assignment,) = client.get_assignments(pool_id=pool.id)
    results = [solution.output_values["result"] for solution in assignment.solutions]
    assert results == [["cat", "bird"]] * 3  # lists, in option order
    frame = client.get_assignments_df(pool.id, status=["APPROVED"])
    assert [json.loads(v) for v in frame["OUTPUT:result"]] == [["cat", "bird"]] * 3
    golden_column = [v for v in frame["GOLDEN:result"] if isinstance(v, str) and v]
    assert [json.loads(v) for v in golden_column] == [["cat", "dog"]]
