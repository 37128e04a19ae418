"""toloka-kit 1.2.3 runs the image-classification flow, unchanged, against Crowdlab.

A live server on a free port (jobs run inside the request); labelers are simulated through
Crowdlab's own assignment services between "open pool" and "aggregate".
"""

from __future__ import annotations

import datetime
import warnings

import httpx
import pytest

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client import exceptions
    from toloka.client.actions import RestrictionV2
    from toloka.client.aggregation import PoolAggregatedSolutionRequest
    from toloka.client.analytics_request import CompletionPercentagePoolAnalytics
    from toloka.client.collectors import AssignmentSubmitTime, GoldenSet, MajorityVote
    from toloka.client.conditions import (
        CorrectAnswersRate,
        FastSubmittedCount,
        GoldenSetAnswersCount,
        GoldenSetCorrectAnswersRate,
        TotalAnswersCount,
        TotalSubmittedCount,
    )
    from toloka.client.project import template_builder as tb
    from toloka.client.user_restriction import DurationUnit

from sqlmodel import select

from app.db.engine import new_session
from app.db.models import Ban, Pool, PoolStatus, Project, Task, TaskKind, User
from app.errors import Forbidden, LabelerBanned
from app.services.labeling import assignments, submissions
from app.services.money import ledger
from app.services.quality import active_ban_for
from tests.builders.pools import make_pool
from tests.builders.users import login, make_labeler

LABELS = ("cat", "dog", "other")


def _project() -> toloka.Project:
    """The notebook's project: ``image`` in, ``result`` out, a Template Builder view."""
    radio = tb.ButtonRadioGroupFieldV1(
        tb.OutputData("result"),
        [tb.fields.GroupFieldOption(v, v.title()) for v in LABELS],
        validation=tb.RequiredConditionV1(),
    )
    view = tb.TemplateBuilder(
        view=tb.ListViewV1([tb.ImageViewV1(tb.InputData("image"), ratio=[1, 1]), radio]),
        plugins=[
            tb.TolokaPluginV1(tb.TolokaPluginV1.TolokaPluginLayout("scroll", task_width=500)),
            tb.HotkeysPluginV1(
                key_1=tb.SetActionV1(tb.OutputData("result"), "cat"),
                key_2=tb.SetActionV1(tb.OutputData("result"), "dog"),
                key_3=tb.SetActionV1(tb.OutputData("result"), "other"),
            ),
        ],
    )
    return toloka.Project(
        public_name="Cat or dog?",
        public_description="Look at the picture and pick what it shows.",
        public_instructions="<p>Pick <b>cat</b>, <b>dog</b> or <b>other</b>.</p>",
        task_spec=toloka.project.task_spec.TaskSpec(
            input_spec={"image": toloka.project.field_spec.UrlSpec()},
            output_spec={"result": toloka.project.field_spec.StringSpec(allowed_values=LABELS)},
            view_spec=toloka.project.TemplateBuilderViewSpec(config=view),
        ),
    )


def _pool(project_id: str, training_id: str) -> toloka.Pool:
    """Filter, training requirement, mixer and three quality-control rules."""
    pool = toloka.Pool(
        project_id=project_id,
        private_name="Cats and dogs",
        may_contain_adult_content=False,
        will_expire=datetime.datetime.utcnow() + datetime.timedelta(days=1),
        reward_per_assignment=0.05,
        auto_accept_solutions=False,
        assignment_max_duration_seconds=600,
        defaults=toloka.Pool.Defaults(default_overlap_for_new_task_suites=3),
        filter=toloka.filter.Languages.in_("EN"),
    )
    pool.set_mixer_config(real_tasks_count=4, golden_tasks_count=1)
    pool.quality_control.training_requirement = toloka.pool.QualityControl.TrainingRequirement(
        training_pool_id=training_id, training_passing_skill_value=70
    )

    def ban(comment: str) -> RestrictionV2:
        return RestrictionV2(
            scope="PROJECT", duration=1, duration_unit=DurationUnit.DAYS, private_comment=comment
        )

    pool.quality_control.add_action(
        collector=AssignmentSubmitTime(history_size=5, fast_submit_threshold_seconds=1),
        conditions=[TotalSubmittedCount >= 5, FastSubmittedCount >= 5],
        action=ban("Too fast"),
    )
    pool.quality_control.add_action(
        collector=MajorityVote(answer_threshold=2, history_size=10),
        conditions=[TotalAnswersCount >= 10, CorrectAnswersRate < 5],
        action=ban("Disagrees with the majority"),
    )
    pool.quality_control.add_action(
        collector=GoldenSet(history_size=10),
        conditions=[GoldenSetAnswersCount >= 2, GoldenSetCorrectAnswersRate < 50],
        action=ban("Failed control tasks"),
    )
    return pool


def _v(value):
    """An enum member's wire value (toloka-kit's enums do not compare equal to strings)."""
    return getattr(value, "value", value)


def _label(labeler: User, pool_id: int, truth: dict[int, str], wrong: bool) -> bool:
    """One labeler takes one suite and submits it; False when there is nothing left."""
    with new_session(write=True) as s:
        pool = s.get(Pool, pool_id)
        if pool.status != PoolStatus.OPEN:  # closed itself once complete
            return False
        try:
            view = assignments.assign_next_suite(s, labeler=labeler, pool_id=pool_id)
        except (assignments.NoSuiteAvailable, LabelerBanned):
            return False
        answers = {t.task_id: ("other" if wrong else truth[t.task_id]) for t in view.tasks}
        submissions.submit_assignment(
            s, labeler=labeler, assignment_id=view.assignment_id, answers=answers
        )
    return True


def _pass_training(labeler: User, training_id: int) -> None:
    """The labeler takes the training's suites and answers them right on the first try."""
    while True:
        with new_session(write=True) as s:
            try:
                view = assignments.assign_next_suite(s, labeler=labeler, pool_id=training_id)
            except assignments.NoSuiteAvailable:
                return
            known = {t.task_id: s.get(Task, t.task_id).known_answer for t in view.tasks}
            submissions.submit_assignment(
                s, labeler=labeler, assignment_id=view.assignment_id, answers=known
            )


def test_image_classification_flow(toloka_server, session, funded, make_client):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=1)

    me = client.get_requester()
    assert me.id == f"{requester.id:010d}" and float(me.balance) == 50.0

    project = client.create_project(_project())
    assert project.id and _v(project.status) == "ACTIVE"
    # The Template Builder view is kept as given: config a JSON string, lock echoed.
    raw = httpx.get(
        f"{toloka_server.url}/api/v1/projects/{project.id}",
        headers={"Authorization": f"OAuth {token}"},
    ).json()["task_spec"]["view_spec"]
    assert isinstance(raw["config"], str) and raw["lock"]["field.button-radio-group"] == "1.0.0"
    assert client.get_project(project.id).task_spec.view_spec.config == (
        project.task_spec.view_spec.config
    )

    training = client.create_training(
        toloka.Training(
            project_id=project.id,
            private_name="Training",
            may_contain_adult_content=False,
            assignment_max_duration_seconds=300,
            mix_tasks_in_creation_order=False,
            shuffle_tasks_in_task_suite=True,
            training_tasks_in_task_suite_count=2,
            task_suites_required_to_pass=1,
            retry_training_after_days=1,
            inherited_instructions=True,
        )
    )
    training_tasks = client.create_tasks(
        [
            toloka.Task(
                pool_id=training.id,
                input_values={"image": f"https://img.example/train/{label}.jpg"},
                known_solutions=[
                    toloka.task.BaseTask.KnownSolution(output_values={"result": label})
                ],
                message_on_unknown_solution=f"It is a {label}.",
                infinite_overlap=True,
            )
            for label in ("cat", "dog")
        ],
        allow_defaults=True,
    )
    assert len(training_tasks.items) == 2

    pool = client.create_pool(_pool(project.id, training.id))
    assert pool.mixer_config.real_tasks_count == 4 and pool.mixer_config.golden_tasks_count == 1
    assert [_v(c.collector_config.type) for c in pool.quality_control.configs] == [
        "ASSIGNMENT_SUBMIT_TIME",
        "MAJORITY_VOTE",
        "GOLDEN_SET",
    ]
    assert pool.quality_control.training_requirement.training_pool_id == training.id

    # 12 real tasks (a mix of cats, dogs, other) and 2 golden tasks, in one async batch.
    real_labels = [LABELS[i % 3] for i in range(12)]
    golden = [
        toloka.Task(
            pool_id=pool.id,
            input_values={"image": f"https://img.example/golden/{label}.jpg"},
            known_solutions=[toloka.task.BaseTask.KnownSolution(output_values={"result": label})],
            infinite_overlap=True,
        )
        for label in ("cat", "dog")
    ]
    real = [
        toloka.Task(pool_id=pool.id, input_values={"image": f"https://img.example/{i}.jpg"})
        for i in range(12)
    ]
    created = client.create_tasks(golden + real, allow_defaults=True)
    assert len(created.items) == 14 and not created.validation_errors
    real_ids = [created.items[str(i)].id for i in range(2, 14)]
    assert all(created.items[str(i)].overlap == 3 for i in range(2, 14))
    truth = {int(task_id): label for task_id, label in zip(real_ids, real_labels, strict=True)}
    truth |= {int(created.items["0"].id): "cat", int(created.items["1"].id): "dog"}
    assert len(list(client.get_tasks(pool_id=pool.id, batch_size=5))) == 14

    training = client.open_pool(training.id)  # cinic10 opens the training via the pool API
    assert _v(training.status) == "OPEN" and _v(training.type) == "TRAINING"
    pool = client.open_pool(pool.id)
    assert _v(pool.status) == "OPEN"
    assert _v(client.open_pool(pool.id).status) == "OPEN"  # already open: 204, no operation

    operation = client.wait_operation(
        client.get_analytics([CompletionPercentagePoolAnalytics(subject_id=pool.id)])
    )
    assert _v(operation.status) == "SUCCESS"
    assert operation.details["value"][0]["result"]["value"] == 0

    # Labelers work through the pool in Crowdlab's own labeling path. The sloppy one goes
    # first and answers "other" everywhere: the GoldenSet rule bans them after two suites.
    labelers = [make_labeler(session) for _ in range(4)]
    sloppy = make_labeler(session)
    with new_session(write=True) as s, pytest.raises(Forbidden, match="training first"):
        assignments.assign_next_suite(s, labeler=sloppy, pool_id=int(pool.id))
    for labeler in [*labelers, sloppy]:  # the training requirement: 70 % on the training
        _pass_training(labeler, int(training.id))
    assert _label(sloppy, int(pool.id), truth, wrong=True)
    assert _label(sloppy, int(pool.id), truth, wrong=True)
    assert not _label(sloppy, int(pool.id), truth, wrong=True)  # banned
    active = list(labelers)
    while active:
        active = [lab for lab in active if _label(lab, int(pool.id), truth, wrong=False)]

    pool = client.get_pool(pool.id)  # auto-closed once every real task has its overlap
    assert _v(pool.status) == "CLOSED" and _v(pool.last_close_reason) == "COMPLETED"
    operation = client.wait_operation(
        client.get_analytics([CompletionPercentagePoolAnalytics(subject_id=pool.id)])
    )
    assert operation.details["value"][0]["result"]["value"] == 100

    submitted = list(client.get_assignments(pool_id=pool.id, status="SUBMITTED", batch_size=2))
    assert len(submitted) == len({a.id for a in submitted}) >= 9  # 36 answers / 4 per suite
    assert sum(len(a.tasks) for a in submitted) == len(submitted) * 5
    for assignment in submitted:
        golden_answers = [
            (task, solution)
            for task, solution in zip(assignment.tasks, assignment.solutions, strict=True)
            if task.known_solutions
        ]
        assert len(golden_answers) == 1
        if assignment.user_id == f"{sloppy.id:010d}":
            done = client.reject_assignment(assignment.id, "Everything is 'other'.")
            assert _v(done.status) == "REJECTED" and done.rejected is not None
        else:
            done = client.accept_assignment(assignment.id, "Well done")
            assert _v(done.status) == "ACCEPTED" and done.accepted is not None
    accepted = [a for a in submitted if a.user_id != f"{sloppy.id:010d}"]
    assert len(accepted) < len(submitted)
    with pytest.raises(exceptions.IncorrectActionsApiError):  # ACCEPTED → ACCEPTED
        client.accept_assignment(accepted[0].id, "twice")

    frame = client.get_assignments_df(pool.id, status=["APPROVED"])
    assert len(frame) == len(accepted) * 5
    assert set(frame["ASSIGNMENT:status"]) == {"APPROVED"}
    assert {"INPUT:image", "OUTPUT:result", "GOLDEN:result", "ASSIGNMENT:worker_id"} <= set(
        frame.columns
    )
    assert set(frame["OUTPUT:result"]) <= set(LABELS)

    aggregation = client.wait_operation(
        client.aggregate_solutions_by_pool(
            PoolAggregatedSolutionRequest(
                type="DAWID_SKENE", pool_id=pool.id, fields=[{"name": "result"}]
            )
        )
    )
    assert _v(aggregation.status) == "SUCCESS"
    solutions = list(client.get_aggregated_solutions(aggregation.id, batch_size=5))
    assert sorted(s.task_id for s in solutions) == sorted(real_ids)
    assert all(0 <= float(s.confidence) <= 1 for s in solutions)
    assert {s.task_id: s.output_values["result"] for s in solutions} == dict(
        zip(real_ids, real_labels, strict=True)
    )

    # The rule's ban is a user restriction; a manual one comes and goes through the client.
    sloppy_id = f"{sloppy.id:010d}"
    (auto,) = client.get_user_restrictions(user_id=sloppy_id, project_id=project.id)
    assert _v(auto.scope) == "PROJECT" and auto.private_comment == "Failed control tasks"
    assert auto.will_expire is not None
    careful = f"{labelers[0].id:010d}"
    restriction = client.set_user_restriction(
        toloka.user_restriction.PoolUserRestriction(
            user_id=careful, pool_id=pool.id, private_comment="Checking"
        )
    )
    found = list(client.get_user_restrictions(user_id=careful))
    assert [r.id for r in found] == [restriction.id] and _v(found[0].scope) == "POOL"
    session.expire_all()
    crowdlab_pool = session.get(Pool, int(pool.id))
    assert active_ban_for(session, labeler_id=labelers[0].id, pool=crowdlab_pool) is not None
    client.delete_user_restriction(restriction.id)
    client.delete_user_restriction(auto.id)
    session.expire_all()
    for labeler in (labelers[0], sloppy):
        assert active_ban_for(session, labeler_id=labeler.id, pool=crowdlab_pool) is None

    assert _v(client.close_pool(pool.id).status) == "CLOSED"  # already closed: 204
    assert _v(client.close_pool(training.id).status) == "CLOSED"  # open: 202 + operation
    assert _v(client.get_training(training.id).status) == "CLOSED"

    # The same objects are Crowdlab's own: in the web console, and the console's in the API.
    console = login(make_client(), requester)
    page = console.get(f"/requester/pools/{int(pool.id)}")
    assert page.status_code == 200 and "Cats and dogs" in page.text
    console_pool = make_pool(session, requester, session.get(Project, int(project.id)))
    listed = [p.id for p in client.get_pools(project_id=project.id)]
    assert listed == sorted([pool.id, f"{console_pool.id:010d}"])  # trainings: get_trainings
    assert _v(client.get_assignment(accepted[0].id).status) == "ACCEPTED"
    session.expire_all()
    crowdlab_project = session.get(Project, int(project.id))
    assert crowdlab_project.owner_id == requester.id and crowdlab_project.name == "Cat or dog?"
    assert [c["collector_config"]["type"] for c in crowdlab_pool.quality_rules] == [
        "ASSIGNMENT_SUBMIT_TIME",
        "MAJORITY_VOTE",
        "GOLDEN_SET",
    ]
    assert crowdlab_pool.filter_languages == ["EN"]
    assert crowdlab_pool.training_pool_id == int(training.id)
    kinds = session.exec(select(Task.kind).where(Task.pool_id == crowdlab_pool.id)).all()
    assert sorted(kinds).count(TaskKind.CONTROL) == 2 and len(kinds) == 14
    assert session.get(Pool, int(training.id)).status == PoolStatus.CLOSED
    bans = session.exec(select(Ban).where(Ban.labeler_id == sloppy.id)).all()
    assert len(bans) == 1 and bans[0].lifted_at is not None and bans[0].source != "manual"
    assert ledger.get_pool_spent(session, pool=crowdlab_pool) == 5 * len(accepted)
    assert float(client.get_requester().balance) * 100 == ledger.get_balance(
        session, user=requester
    )


def test_errors_have_tolokas_shape(toloka_server, session, funded):
    _, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    with pytest.raises(exceptions.DoesNotExistApiError):
        client.get_pool("0000009999")
    project = client.create_project(_project())
    draft = toloka.Pool(
        project_id=project.id,
        private_name="Too cheap",
        reward_per_assignment=0.001,
        assignment_max_duration_seconds=600,
        will_expire=datetime.datetime.utcnow() + datetime.timedelta(days=1),
    )
    with pytest.raises(exceptions.ValidationApiError) as bad:
        client.create_pool(draft)
    assert bad.value.invalid_fields == ["reward_per_assignment"]
    assert set(bad.value.payload["reward_per_assignment"]) == {"code", "message"}
    draft.reward_per_assignment = 0.02
    draft.set_mixer_config(real_tasks_count=0, golden_tasks_count=0)
    with pytest.raises(exceptions.ValidationApiError) as empty:
        client.create_pool(draft)
    assert empty.value.invalid_fields == ["mixer_config.real_tasks_count"]

    draft.set_mixer_config(real_tasks_count=2, golden_tasks_count=0)
    pool = client.create_pool(draft)
    pool.private_name = "Renamed"  # PUT sends back read-only and unknown keys too
    assert client.update_pool(pool.id, pool).private_name == "Renamed"
    project.public_description = "Changed"
    assert client.update_project(project.id, project).public_description == "Changed"
    one = client.create_task(
        toloka.Task(pool_id=pool.id, input_values={"image": "https://img.example/a.jpg"}),
        allow_defaults=True,
    )
    assert one.id and one.pool_id == pool.id and one.overlap == 1
    # One bad item with skip_invalid_items: the others are created, the bad one reported.
    batch = client.create_tasks(
        [
            toloka.Task(pool_id=pool.id, input_values={"image": "https://img.example/b.jpg"}),
            toloka.Task(pool_id=pool.id, input_values={"image": "not a url"}),
        ],
        allow_defaults=True,
        skip_invalid_items=True,
    )
    assert list(batch.items) == ["0"] and list(batch.validation_errors) == ["1"]
    assert batch.validation_errors["1"]["input_values.image"].code == "VALUE_REQUIRED"
    assert batch.items["0"].id > one.id  # ids compare as strings in creation order

    with pytest.raises(exceptions.ApiError) as unsupported:
        client.get_attachment("123")
    assert unsupported.value.code == "NOT_SUPPORTED"
    with pytest.raises(exceptions.AuthenticationApiError):
        toloka.TolokaClient("not-a-token", url=toloka_server.url, retries=0).get_requester()
