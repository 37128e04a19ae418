"""toloka-kit 1.2.3 runs the "learn the basics" call sequence against Crowdlab: a project,
a pool with captchas (``set_captcha_frequency`` and a ``Captcha`` collector rule) among its
rules, tasks, open, labelers at work over the labeler API, review, results.

The labelers use Crowdlab's labeler JSON API over HTTP, as a labeling app would: one reads
the captchas right, a bot does not and the Captcha rule bans it.
"""

from __future__ import annotations

import datetime
import warnings

import httpx
import pytest

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client.actions import RestrictionV2
    from toloka.client.collectors import AssignmentSubmitTime, Captcha, SkippedInRowAssignments
    from toloka.client.conditions import (
        FastSubmittedCount,
        SkippedInRowCount,
        StoredResultsCount,
        SuccessRate,
        TotalSubmittedCount,
    )
    from toloka.client.project import template_builder as tb

from app.services.labeling import captchas
from tests.builders.users import make_labeler, make_token

LABELS = ("cat", "not_cat")
TASKS = 20


def _v(value):
    return getattr(value, "value", value)


def _project() -> toloka.Project:
    view = tb.TemplateBuilder(
        view=tb.ListViewV1(
            [
                tb.ImageViewV1(tb.InputData("image"), ratio=[1, 1]),
                tb.RadioGroupFieldV1(
                    tb.OutputData("result"),
                    [tb.fields.GroupFieldOption("cat", "Cat"),
                     tb.fields.GroupFieldOption("not_cat", "Not a cat")],
                    validation=tb.RequiredConditionV1(),
                ),
            ]
        ),
    )  # fmt: skip
    return toloka.Project(
        public_name="Is it a cat?",
        public_description="Say whether the picture shows a cat.",
        public_instructions="Pick <b>Cat</b> when you see a cat, else <b>Not a cat</b>.",
        task_spec=toloka.project.task_spec.TaskSpec(
            input_spec={"image": toloka.project.field_spec.UrlSpec()},
            output_spec={"result": toloka.project.field_spec.StringSpec(allowed_values=LABELS)},
            view_spec=toloka.project.TemplateBuilderViewSpec(config=view),
        ),
    )


def _pool(project_id: str) -> toloka.Pool:
    pool = toloka.Pool(
        project_id=project_id,
        private_name="Cats, first batch",
        may_contain_adult_content=False,
        will_expire=datetime.datetime.utcnow() + datetime.timedelta(days=365),
        reward_per_assignment=0.05,
        assignment_max_duration_seconds=60 * 20,
        auto_accept_solutions=False,
        defaults=toloka.Pool.Defaults(default_overlap_for_new_task_suites=1),
        filter=toloka.filter.Languages.in_("EN"),
    )
    pool.set_mixer_config(real_tasks_count=5)
    pool.set_captcha_frequency("HIGH")  # Crowdlab: one captcha per 5 tasks
    pool.quality_control.add_action(
        collector=Captcha(history_size=5),
        conditions=[SuccessRate < 60, StoredResultsCount >= 2],
        action=RestrictionV2(
            scope="PROJECT", duration=10, duration_unit="DAYS", private_comment="Fails captchas"
        ),
    )
    pool.quality_control.add_action(
        collector=AssignmentSubmitTime(history_size=5, fast_submit_threshold_seconds=1),
        conditions=[TotalSubmittedCount >= 5, FastSubmittedCount >= 5],
        action=RestrictionV2(
            scope="PROJECT", duration=1, duration_unit="DAYS", private_comment="Too fast"
        ),
    )
    pool.quality_control.add_action(
        collector=SkippedInRowAssignments(),
        conditions=[SkippedInRowCount >= 3],
        action=RestrictionV2(
            scope="PROJECT", duration=1, duration_unit="DAYS", private_comment="Skips"
        ),
    )
    return pool


class LabelerApp:
    """A labeler working over Crowdlab's labeler API: take, captcha when asked, submit."""

    def __init__(self, url: str, token: str, *, reads_captchas: bool) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"OAuth {token}"})
        self.reads_captchas = reads_captchas
        self.captchas: list[bool] = []

    def work(self, pool_id: str, drawn: list[str]) -> str:
        """One step: a suite done, a captcha answered, or why it stopped."""
        taken = self.http.post(f"/api/v1/labeler/pools/{int(pool_id)}/suites")
        body = taken.json()
        if taken.status_code == 409 and body["code"] == "CAPTCHA_REQUIRED":
            shown = self.http.post(f"/api/v1/labeler/pools/{int(pool_id)}/captcha").json()
            picture = self.http.get(shown["image_url"])
            assert picture.headers["content-type"] == "image/png"
            answer = drawn[-1] if self.reads_captchas else "XXXXX"
            solved = self.http.post(
                f"/api/v1/labeler/captchas/{shown['id']}/answer", json={"answer": answer}
            ).json()["solved"]
            self.captchas.append(solved)
            return "captcha"
        if taken.status_code != 200:
            return body["code"]
        answers = {str(t["position"]): "cat" for t in body["tasks"]}
        done = self.http.post(
            f"/api/v1/labeler/assignments/{body['id']}/submit", json={"answers": answers}
        )
        assert done.status_code == 200, done.text
        return "suite"


@pytest.fixture
def drawn(monkeypatch) -> list[str]:
    """The captcha texts drawn so far (the test stands in for a labeler who can read)."""
    texts: list[str] = []

    def draw() -> str:
        texts.append(f"C{len(texts):02d}KP")
        return texts[-1]

    monkeypatch.setattr(captchas, "new_text", draw)
    return texts


def test_learn_the_basics_with_captchas(toloka_server, session, funded, drawn):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=1)
    assert float(client.get_requester().balance) == 50.0

    project = client.create_project(_project())
    pool = client.create_pool(_pool(project.id))
    assert _v(pool.quality_control.captcha_frequency) == "HIGH"
    assert [_v(c.collector_config.type) for c in pool.quality_control.configs] == [
        "CAPTCHA",
        "ASSIGNMENT_SUBMIT_TIME",
        "SKIPPED_IN_ROW_ASSIGNMENTS",
    ]
    captcha_rule = pool.quality_control.configs[0]
    assert captcha_rule.collector_config.parameters.history_size == 5
    assert {(_v(c.key), c.value) for c in captcha_rule.rules[0].conditions} == {
        ("success_rate", 60),
        ("stored_results_count", 2),
    }
    assert _v(client.get_pool(pool.id).quality_control.captcha_frequency) == "HIGH"

    tasks = [
        toloka.Task(input_values={"image": f"https://img.example/cats/{i}.jpg"}, pool_id=pool.id)
        for i in range(TASKS)
    ]
    created = client.create_tasks(tasks, allow_defaults=True)
    assert len(created.items) == TASKS and not created.validation_errors
    assert _v(client.open_pool(pool.id).status) == "OPEN"

    bot_user, reader_user = make_labeler(session), make_labeler(session)
    bot = LabelerApp(toloka_server.url, make_token(session, bot_user), reads_captchas=False)
    reader = LabelerApp(toloka_server.url, make_token(session, reader_user), reads_captchas=True)
    # The bot: a suite, a captcha read wrong, a suite, another captcha wrong: banned.
    steps = [bot.work(pool.id, drawn) for _ in range(5)]
    assert steps == ["suite", "captcha", "suite", "captcha", "USER_RESTRICTED"]
    assert bot.captchas == [False, False]
    # The reader works until the pool has nothing left, reading every captcha right.
    while reader.work(pool.id, drawn) in ("suite", "captcha"):
        pass
    assert reader.captchas and all(reader.captchas)

    restrictions = list(client.get_user_restrictions(project_id=project.id))
    assert [(r.user_id, r.private_comment) for r in restrictions] == [
        (f"{bot_user.id:010d}", "Fails captchas")
    ]
    assert _v(client.get_pool(pool.id).status) == "CLOSED"

    submitted = list(client.get_assignments(pool_id=pool.id, status="SUBMITTED"))
    assert sum(len(a.tasks) for a in submitted) >= TASKS
    for assignment in submitted:
        if assignment.user_id == f"{bot_user.id:010d}":
            assert _v(client.reject_assignment(assignment.id, "Bot").status) == "REJECTED"
        else:
            assert _v(client.accept_assignment(assignment.id, "Thanks").status) == "ACCEPTED"
    frame = client.get_assignments_df(pool.id, status=["APPROVED"])
    assert len(frame) >= 10 and set(frame["OUTPUT:result"]) == {"cat"}
    assert {int(worker) for worker in frame["ASSIGNMENT:worker_id"]} == {reader_user.id}
