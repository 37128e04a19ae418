"""toloka-kit's ``clone_project`` (its own sequence of get/create calls) against Crowdlab:
the project, its training and its pools are recreated with their settings, no tasks."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client.actions import RestrictionV2
    from toloka.client.collectors import Captcha
    from toloka.client.conditions import StoredResultsCount, SuccessRate

from sqlmodel import select

from app.db.models import AnswerOption, Pool, Project, Task
from tests.builders.pools import add_tasks


def _v(value):
    return getattr(value, "value", value)


def test_clone_project_recreates_project_training_and_pools(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    project = client.create_project(
        toloka.Project(
            public_name="Cat or not",
            public_description="Is there a cat?",
            public_instructions="Answer <b>yes</b> when you see a cat.",
            task_spec=toloka.project.task_spec.TaskSpec(
                input_spec={"image": toloka.project.field_spec.UrlSpec()},
                output_spec={
                    "result": toloka.project.field_spec.StringSpec(allowed_values=["yes", "no"])
                },
            ),
        )
    )
    training = client.create_training(
        toloka.Training(
            project_id=project.id, private_name="Practice", may_contain_adult_content=False,
            assignment_max_duration_seconds=300, mix_tasks_in_creation_order=False,
            shuffle_tasks_in_task_suite=True, training_tasks_in_task_suite_count=1,
            task_suites_required_to_pass=1, retry_training_after_days=1,
            inherited_instructions=True,
        )
    )  # fmt: skip
    pool = toloka.Pool(
        project_id=project.id,
        private_name="Batch",
        may_contain_adult_content=False,
        reward_per_assignment=0.03,
        assignment_max_duration_seconds=600,
        defaults=toloka.Pool.Defaults(default_overlap_for_new_task_suites=2),
    )
    pool.set_mixer_config(real_tasks_count=3)
    pool.set_captcha_frequency("LOW")
    pool.quality_control.add_action(
        collector=Captcha(history_size=5),
        conditions=[SuccessRate < 50, StoredResultsCount >= 3],
        action=RestrictionV2(
            scope="PROJECT", duration=1, duration_unit="DAYS", private_comment="captchas"
        ),
    )
    pool.quality_control.training_requirement = toloka.pool.QualityControl.TrainingRequirement(
        training_pool_id=training.id, training_passing_skill_value=70
    )
    pool = client.create_pool(pool)
    add_tasks(session, session.get(Pool, int(pool.id)), general=3)

    cloned, pools, trainings = client.clone_project(project.id, reuse_controllers=False)

    assert cloned.id != project.id and cloned.public_name == "Cat or not"
    assert cloned.public_instructions == project.public_instructions
    stored = session.get(Project, int(cloned.id))
    values = session.exec(
        select(AnswerOption.value).where(AnswerOption.project_id == stored.id)
    ).all()
    assert sorted(values) == ["no", "yes"]
    (new_training,) = trainings
    assert new_training.project_id == cloned.id and new_training.private_name == "Practice"
    (new_pool,) = pools
    assert new_pool.project_id == cloned.id and _v(new_pool.status) == _v(pool.status)
    assert float(new_pool.reward_per_assignment) == 0.03
    assert new_pool.mixer_config.real_tasks_count == 3
    assert _v(new_pool.quality_control.captcha_frequency) == "LOW"
    assert [_v(c.collector_config.type) for c in new_pool.quality_control.configs] == ["CAPTCHA"]
    assert new_pool.quality_control.training_requirement.training_pool_id == new_training.id
    assert session.exec(select(Task).where(Task.pool_id == int(new_pool.id))).all() == []
    assert len(list(client.get_tasks(pool_id=pool.id))) == 3  # the source keeps its tasks
