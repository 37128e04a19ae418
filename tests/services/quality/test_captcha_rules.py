"""Captchas in the labeling flow: due every N tasks, checked server-side, and the
CAPTCHA collector's rules ban a labeler who fails them."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db.models import Ban, CaptchaChallenge
from app.errors import Conflict, LabelerBanned, NotFound, ValidationFailed
from app.services.labeling import captchas
from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.projects.pools import update_pool
from app.services.quality import dry_run
from app.services.quality.rules import parse_configs
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler

CAPTCHA_BAN = [
    {
        "collector_config": {"type": "CAPTCHA", "parameters": {"history_size": 5}},
        "rules": [
            {
                "conditions": [
                    {"key": "stored_results_count", "operator": "GTE", "value": 2},
                    {"key": "success_rate", "operator": "LT", "value": 60},
                ],
                "action": {
                    "type": "RESTRICTION_V2",
                    "parameters": {
                        "scope": "PROJECT",
                        "duration": 10,
                        "duration_unit": "DAYS",
                        "private_comment": "captchas failed",
                        "public_comment": "Too many captchas answered wrong.",
                    },
                },
            }
        ],
    }
]


@pytest.fixture
def known_text(monkeypatch):
    """Each drawn captcha reads CAPTCHA1, CAPTCHA2, ... (the test knows what is drawn)."""
    drawn: list[str] = []

    def draw() -> str:
        drawn.append(f"K{len(drawn) + 1}XYZ")
        return drawn[-1]

    monkeypatch.setattr(captchas, "new_text", draw)
    return drawn


def _pool(session, requester, **fields):
    pool = make_pool(
        session,
        requester,
        overlap=1,
        general_per_suite=1,
        control_per_suite=0,
        captcha_frequency="HIGH",  # one captcha per 5 tasks
        quality_rules=CAPTCHA_BAN,
        **fields,
    )
    add_tasks(session, pool, general=30)
    open_pool(session, requester, pool)
    return pool


def _work(session, labeler, pool, suites: int) -> None:
    for _ in range(suites):
        view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        submit_assignment(
            session,
            labeler=labeler,
            assignment_id=view.assignment_id,
            answers={0: "cat"},
            by_position=True,
        )


def test_a_captcha_comes_after_five_tasks_and_blocks_the_next_suite_until_answered(
    session, requester, labeler, known_text
):
    pool = _pool(session, requester)
    _work(session, labeler, pool, 5)
    with pytest.raises(captchas.CaptchaRequired) as required:
        assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert required.value.code == "CAPTCHA_REQUIRED"

    shown = captchas.open_captcha(session, labeler=labeler, pool_id=pool.id)
    again = captchas.open_captcha(session, labeler=labeler, pool_id=pool.id)
    assert again.id == shown.id and known_text == ["K1XYZ"]  # a reload draws nothing new
    png = captchas.captcha_image(session, labeler=labeler, captcha_id=shown.id)
    assert png.startswith(b"\x89PNG")
    stored = session.get(CaptchaChallenge, shown.id)
    assert "K1XYZ" not in stored.answer_hash and stored.answer_hash != "K1XYZ"
    with pytest.raises(NotFound):  # another labeler cannot see it
        captchas.captcha_image(session, labeler=make_labeler(session), captcha_id=shown.id)

    result = captchas.answer_captcha(
        session, labeler=labeler, captcha_id=shown.id, answer=" k1x yz "
    )
    assert result.solved is True
    with pytest.raises(Conflict):  # an answer is final
        captchas.answer_captcha(session, labeler=labeler, captcha_id=shown.id, answer="K1XYZ")
    with pytest.raises(NotFound):  # the image is gone once answered
        captchas.captcha_image(session, labeler=labeler, captcha_id=shown.id)
    _work(session, labeler, pool, 4)  # 4 more tasks: no captcha yet
    assign_next_suite(session, labeler=labeler, pool_id=pool.id)  # the 5th suite is handed out


def test_a_labeler_who_fails_captchas_is_banned(session, requester, labeler, known_text):
    pool = _pool(session, requester)
    honest = make_labeler(session)
    for who, answers in ((labeler, ("WRONG", "NOPE0")), (honest, None)):
        for round_ in range(2):
            _work(session, who, pool, 5)
            shown = captchas.open_captcha(session, labeler=who, pool_id=pool.id)
            answer = answers[round_] if answers else known_text[-1]
            captchas.answer_captcha(session, labeler=who, captcha_id=shown.id, answer=answer)

    bans = session.exec(select(Ban)).all()
    assert [(b.labeler_id, b.public_comment) for b in bans] == [
        (labeler.id, "Too many captchas answered wrong.")
    ]
    with pytest.raises(LabelerBanned, match="captchas answered wrong"):
        assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assign_next_suite(session, labeler=honest, pool_id=pool.id)
    # the dry run replays the same captchas and finds the same labeler
    (result,) = dry_run.dry_run(
        session, requester=requester, pool_id=pool.id, configs=parse_configs(CAPTCHA_BAN)
    )
    assert result.simulated and [who for who, _ in result.hits] == [labeler.id]


def test_captcha_settings_are_validated(session, requester):
    with pytest.raises(ValidationFailed) as no_frequency:
        make_pool(session, requester, quality_rules=CAPTCHA_BAN)
    assert "captcha frequency" in no_frequency.value.errors["captcha_frequency"]
    with pytest.raises(ValidationFailed) as bad:
        make_pool(session, requester, captcha_frequency="SOMETIMES")
    assert "LOW, MEDIUM or HIGH" in bad.value.errors["captcha_frequency"]
    pool = make_pool(session, requester, captcha_frequency="low")
    assert pool.captcha_frequency == "LOW"
    with pytest.raises(ValidationFailed) as rate_alone:
        update_pool(
            session,
            requester=requester,
            pool_id=pool.id,
            quality_rules=[
                {
                    "collector_config": {"type": "CAPTCHA"},
                    "rules": [
                        {
                            "conditions": [{"key": "fail_rate", "operator": "GT", "value": 40}],
                            "action": {"type": "APPROVE_ALL_ASSIGNMENTS"},
                        }
                    ],
                }
            ],
        )
    assert "stored_results_count" in " ".join(rate_alone.value.errors.values())


def test_empty_answers_are_refused_and_no_captcha_is_drawn_before_it_is_due(
    session, requester, labeler, known_text
):
    pool = _pool(session, requester)
    with pytest.raises(Conflict, match="No captcha is waiting"):
        captchas.open_captcha(session, labeler=labeler, pool_id=pool.id)
    _work(session, labeler, pool, 5)
    shown = captchas.open_captcha(session, labeler=labeler, pool_id=pool.id)
    with pytest.raises(ValidationFailed, match="Type the characters"):
        captchas.answer_captcha(session, labeler=labeler, captcha_id=shown.id, answer="  ")
    assert session.get(CaptchaChallenge, shown.id).solved is None
