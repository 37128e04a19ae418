"""A labeler made with ``crowdlab create-user`` passes toloka-kit's ``Languages.in_('EN')``.

The requester side is toloka-kit 1.2.3 (a pool with the notebooks' language filter); the
labeler side is the labeler JSON API with a token from ``crowdlab token create``.
"""

from __future__ import annotations

import datetime
import warnings

import httpx

from app.cli import main
from app.services.money import ledger
from tests.builders.users import make_requester, make_token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import toloka.client as toloka

PASSWORD = "correct horse battery staple"


def _labeler_token(capsys, email: str, *languages: str) -> str:
    extra = ["--languages", ",".join(languages)] if languages else []
    args = ["create-user", "--role", "labeler", "--email", email, "--password", PASSWORD]
    assert main([*args, *extra]) == 0
    assert main(["token", "create", "--email", email, "--name", "labeling"]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_cli_labelers_speak_the_default_language_and_pass_the_filter(
    jobs_live_server, session, capsys
):
    requester = make_requester(session)
    ledger.top_up(session, user=requester, amount_cents=1000)
    client = toloka.TolokaClient(make_token(session, requester), url=jobs_live_server.url)
    project = client.create_project(
        toloka.Project(
            public_name="Cat or dog?",
            public_description="Pick what the picture shows.",
            task_spec=toloka.project.task_spec.TaskSpec(
                input_spec={"image": toloka.project.field_spec.UrlSpec()},
                output_spec={
                    "result": toloka.project.field_spec.StringSpec(allowed_values=["cat", "dog"])
                },
            ),
        )
    )
    pool = client.create_pool(
        toloka.Pool(
            project_id=project.id,
            private_name="English speakers",
            may_contain_adult_content=False,
            will_expire=datetime.datetime.utcnow() + datetime.timedelta(days=1),
            reward_per_assignment=0.05,
            assignment_max_duration_seconds=600,
            defaults=toloka.Pool.Defaults(default_overlap_for_new_task_suites=1),
            filter=toloka.filter.Languages.in_("EN"),
        )
    )
    pool.set_mixer_config(real_tasks_count=2)
    client.update_pool(pool.id, pool)
    client.create_tasks(
        [
            toloka.Task(pool_id=pool.id, input_values={"image": f"https://img.example/{n}.jpg"})
            for n in range(4)
        ],
        allow_defaults=True,
    )
    client.open_pool(pool.id)

    english = {"Authorization": f"OAuth {_labeler_token(capsys, 'en@example.com')}"}
    french = {"Authorization": f"OAuth {_labeler_token(capsys, 'fr@example.com', 'FR')}"}
    api = f"{jobs_live_server.url}/api/v1/labeler"
    crowdlab_pool = int(pool.id)
    seen = [p["id"] for p in httpx.get(f"{api}/pools", headers=english).json()["items"]]
    assert crowdlab_pool in seen
    taken = httpx.post(f"{api}/pools/{crowdlab_pool}/suites", headers=english)
    assert taken.status_code == 200, taken.text
    assert httpx.get(f"{api}/pools", headers=french).json()["items"] == []
    refused = httpx.post(f"{api}/pools/{crowdlab_pool}/suites", headers=french)
    assert refused.status_code == 403
