"""The assignment engine: suite composition, overlap, expiry, skip, submit, pay, bans."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    AssignmentTask,
    Ban,
    BanScope,
    LedgerEntry,
    LedgerKind,
    PoolStatus,
    Skill,
    Task,
    TaskKind,
    UserSkill,
)
from app.db.types import utcnow
from app.errors import Forbidden, LabelerBanned, NotFound, ValidationFailed
from app.services.labeling.assignments import (
    NoSuiteAvailable,
    assign_next_suite,
    check_training_answer,
    expire_overdue,
    get_assignment,
    pick_tasks,
    skip_assignment,
    submit_assignment,
)
from app.services.labeling.available import (
    CONTROL_SKILL_NAME,
    PoolTerms,
    list_available_pools,
)
from app.services.labeling.locks import on_pg
from app.services.labeling.sql import POOL_TERMS, SEEN_WINDOW
from app.services.money import ledger
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler
from workers.jobs.assignments import expire_assignments


def _pool(session, requester, *, general=12, control=("cat", "dog", "bird"), **fields):
    fields.setdefault("general_per_suite", 4)
    fields.setdefault("control_per_suite", 1)
    pool = make_pool(session, requester, **fields)
    add_tasks(session, pool, general=general, control=control)
    return open_pool(session, requester, pool)


def _terms(session, pool_id) -> PoolTerms:
    columns = ", ".join(POOL_TERMS)
    row = session.connection().execute(
        text(f"SELECT {columns} FROM pool WHERE id = :id"), {"id": pool_id}
    )
    return PoolTerms(*row.one())


def _kinds(session, view):
    ids = [t.task_id for t in view.tasks]
    rows = session.exec(select(Task.id, Task.kind).where(Task.id.in_(ids))).all()
    return Counter(kind for _, kind in rows)


def _answer_all(session, labeler, view, value="cat"):
    answers = {t.position: value for t in view.tasks}
    return submit_assignment(
        session,
        labeler=labeler,
        assignment_id=view.assignment_id,
        answers=answers,
        by_position=True,
    )


def test_suite_composition_matches_pool_and_counts_general_slots(session, requester, labeler):
    pool = _pool(session, requester)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert _kinds(session, view) == {TaskKind.GENERAL: 4, TaskKind.CONTROL: 1}
    assert [t.position for t in view.tasks] == [0, 1, 2, 3, 4]
    assert [o.value for o in view.options] == ["cat", "dog", "bird"]
    session.expire_all()
    taken = dict(session.exec(select(Task.id, Task.taken_count)).all())
    ids = {t.task_id for t in view.tasks}
    for task in session.exec(select(Task)):
        expected = 1 if task.id in ids and task.kind == TaskKind.GENERAL else 0
        assert taken[task.id] == expected


def test_labeler_with_an_active_suite_gets_the_same_suite_back(session, requester, labeler):
    pool = _pool(session, requester)
    first = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    again = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert again.assignment_id == first.assignment_id
    assert session.exec(select(Assignment)).all().__len__() == 1


def test_overlap_never_exceeded_and_pool_closes_when_complete(session, requester):
    pool = _pool(session, requester, general=10, overlap=3, general_per_suite=3)
    labelers = [make_labeler(session) for _ in range(6)]
    for _ in range(20):
        for labeler in labelers:
            try:
                view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
            except (NoSuiteAvailable, NotFound):
                continue
            _answer_all(session, labeler, view)
    session.expire_all()
    general = session.exec(select(Task).where(Task.kind == TaskKind.GENERAL)).all()
    per_task = Counter(
        session.exec(
            select(Answer.task_id)
            .join(Task, Task.id == Answer.task_id)
            .where(Task.kind == TaskKind.GENERAL)
        ).all()
    )
    assert all(per_task[t.id] == 3 for t in general)
    assert all(t.taken_count == 3 and t.submitted_count == 3 for t in general)
    pairs = session.exec(select(Answer.labeler_id, Answer.task_id).join(Task)).all()
    general_ids = {t.id for t in general}
    general_pairs = [p for p in pairs if p[1] in general_ids]
    assert len(general_pairs) == len(set(general_pairs)), "a labeler saw a task twice"
    session.refresh(pool)
    assert pool.status == PoolStatus.CLOSED and pool.close_reason == "COMPLETED"


def test_partial_suite_at_the_tail_of_the_pool(session, requester, labeler):
    pool = _pool(session, requester, general=5, overlap=2, general_per_suite=4)
    _answer_all(session, labeler, assign_next_suite(session, labeler=labeler, pool_id=pool.id))
    tail = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert _kinds(session, tail) == {TaskKind.GENERAL: 1, TaskKind.CONTROL: 1}
    _answer_all(session, labeler, tail)
    with pytest.raises(NoSuiteAvailable):
        assign_next_suite(session, labeler=labeler, pool_id=pool.id)


def test_control_tasks_do_not_repeat_while_others_remain(session, requester, labeler):
    pool = _pool(session, requester, general=20, control=("cat", "dog", "bird", "cat"))
    seen = []
    for _ in range(4):
        view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        ids = [t.task_id for t in view.tasks]
        seen += session.exec(
            select(Task.id).where(Task.id.in_(ids), Task.kind == TaskKind.CONTROL)
        ).all()
        _answer_all(session, labeler, view)
    assert len(seen) == 4 and len(set(seen)) == 4
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)  # all seen: again
    ids = [t.task_id for t in view.tasks]
    again = session.exec(
        select(Task.id).where(Task.id.in_(ids), Task.kind == TaskKind.CONTROL)
    ).all()
    assert len(again) == 1 and again[0] in seen


def test_every_one_of_many_control_tasks_is_drawn_and_none_repeats_while_new_ones_remain(
    session, requester, labeler
):
    # more control tasks than a suite considers at once (a random window of them)
    assert SEEN_WINDOW < 100
    pool = _pool(session, requester, general=200, control=["cat"] * 100, general_per_suite=1)
    controls = session.exec(
        select(Task.id).where(Task.pool_id == pool.id, Task.kind == TaskKind.CONTROL)
    ).all()
    terms = _terms(session, pool.id)
    drawn = Counter()
    for _ in range(2000):  # the choice alone, as a new labeler, never kept
        conn = session.connection()
        picked = pick_tasks(conn, labeler_id=labeler.id, pool=terms, pg=on_pg(session))
        drawn.update(row[0] for row in picked if row[2] == TaskKind.CONTROL)
        session.rollback()
    assert set(drawn) == set(controls)  # the first and last ones too
    assert max(drawn.values()) < 3 * 2000 / 100

    seen = []
    for _ in range(40):
        view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        seen += [t for t in (t.task_id for t in view.tasks) if t in set(controls)]
        _answer_all(session, labeler, view)
    assert len(seen) == 40 and len(set(seen)) == 40


def test_expired_suite_returns_its_slots(session, requester, labeler):
    pool = _pool(session, requester, overlap=1)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    row = session.get(Assignment, view.assignment_id)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    assert expire_assignments() == 1  # the periodic step
    assert expire_overdue(session) == 0
    session.expire_all()
    assert session.get(Assignment, view.assignment_id).status == AssignmentStatus.EXPIRED
    assert all(t.taken_count == 0 for t in session.exec(select(Task)))
    with pytest.raises(Exception, match="time for this suite ran out"):
        _answer_all(session, labeler, view)


def test_overdue_suite_expires_when_the_labeler_opens_it(session, requester, labeler):
    pool = _pool(session, requester, overlap=1)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    row = session.get(Assignment, view.assignment_id)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    assert get_assignment(session, labeler=labeler, assignment_id=row.id).status == "expired"
    session.expire_all()
    assert all(t.taken_count == 0 for t in session.exec(select(Task)))
    fresh = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert fresh.assignment_id != row.id


def test_skip_releases_slots_and_next_suite_has_other_tasks(session, requester, labeler):
    pool = _pool(session, requester, overlap=1)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    skip_assignment(session, labeler=labeler, assignment_id=view.assignment_id)
    skip_assignment(session, labeler=labeler, assignment_id=view.assignment_id)  # idempotent
    session.expire_all()
    assert session.get(Assignment, view.assignment_id).status == AssignmentStatus.SKIPPED
    assert all(t.taken_count == 0 for t in session.exec(select(Task)))
    other = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    old_general = set(_general_ids(session, view))
    assert not old_general & set(_general_ids(session, other))


def _general_ids(session, view):
    ids = [t.task_id for t in view.tasks]
    return session.exec(select(Task.id).where(Task.id.in_(ids), Task.kind == "general")).all()


def test_double_submit_stores_one_set_of_answers_and_pays_once(session, requester, labeler):
    pool = _pool(session, requester, reward_cents=7)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    first = _answer_all(session, labeler, view)
    second = _answer_all(session, labeler, view, value="dog")
    assert first.status == second.status == AssignmentStatus.ACCEPTED
    assert first.paid and second.paid and second.repeated
    answers = session.exec(select(Answer).where(Answer.assignment_id == view.assignment_id)).all()
    assert len(answers) == 5 and {a.value for a in answers} == {"cat"}
    earnings = session.exec(select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.EARNING))
    assert len(earnings.all()) == 1
    assert ledger.get_balance(session, user=labeler) == 7


def test_submit_with_task_ids_and_duration_recorded(session, requester, labeler):
    pool = _pool(session, requester)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    answers = {t.task_id: "dog" for t in view.tasks}
    submit_assignment(session, labeler=labeler, assignment_id=view.assignment_id, answers=answers)
    session.expire_all()
    row = session.get(Assignment, view.assignment_id)
    assert row.submitted_at is not None and row.duration_seconds >= 0
    rows = session.exec(select(Answer).where(Answer.assignment_id == row.id)).all()
    assert {(a.pool_id, a.labeler_id) for a in rows} == {(pool.id, labeler.id)}


def test_answers_for_another_labelers_suite_are_refused(session, requester, labeler):
    pool = _pool(session, requester)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    intruder = make_labeler(session)
    with pytest.raises(NotFound):
        _answer_all(session, intruder, view)
    with pytest.raises(NotFound):
        get_assignment(session, labeler=intruder, assignment_id=view.assignment_id)
    assert session.exec(select(Answer)).all() == []


def test_submit_names_missing_and_unknown_answers(session, requester, labeler):
    pool = _pool(session, requester)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    answers = {0: "cat", 1: "zebra"}
    with pytest.raises(ValidationFailed) as err:
        submit_assignment(
            session,
            labeler=labeler,
            assignment_id=view.assignment_id,
            answers=answers,
            by_position=True,
        )
    errors = err.value.errors
    assert "zebra" in errors["answers.1"] and "Task 2" in errors["answers.1"]
    assert set(errors) == {"answers.1", "answers.2", "answers.3", "answers.4"}
    with pytest.raises(ValidationFailed, match="no task 9"):
        submit_assignment(
            session,
            labeler=labeler,
            assignment_id=view.assignment_id,
            answers={**{t.position: "cat" for t in view.tasks}, 9: "cat"},
            by_position=True,
        )
    assert session.exec(select(Answer)).all() == []


def test_manual_review_pool_keeps_suite_submitted_and_unpaid(session, requester, labeler):
    pool = _pool(session, requester, auto_accept=False)
    result = _answer_all(
        session, labeler, assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    )
    assert result.status == AssignmentStatus.SUBMITTED and not result.paid
    assert ledger.get_balance(session, user=labeler) == 0


def test_banned_labeler_gets_no_suite_and_sees_reason(session, requester, labeler):
    pool = _pool(session, requester)
    until = utcnow() + timedelta(days=1)
    session.add(
        Ban(
            requester_id=requester.id,
            labeler_id=labeler.id,
            scope=BanScope.PROJECT,
            project_id=pool.project_id,
            private_comment="fast",
            public_comment="Answers came too fast.",
            expires_at=until,
        )
    )
    session.commit()
    with pytest.raises(LabelerBanned) as err:
        assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert "Answers came too fast." in err.value.message and "Animals" in err.value.message
    assert err.value.payload["until"].startswith(until.date().isoformat())
    assert session.exec(select(Assignment)).all() == []
    assert list_available_pools(session, labeler=labeler) == []


def test_audience_filters_languages_adult_and_rating(session, requester):
    pool = _pool(session, requester, filter_languages=["DE"], adult_content=True, min_rating=70)
    english = make_labeler(session, languages=["EN"], adult_allowed=True)
    with pytest.raises(Forbidden, match="DE"):
        assign_next_suite(session, labeler=english, pool_id=pool.id)
    prude = make_labeler(session, languages=["DE"])
    with pytest.raises(Forbidden, match="adult"):
        assign_next_suite(session, labeler=prude, pool_id=pool.id)
    fresh = make_labeler(session, languages=["de"], adult_allowed=True)
    assert [c.pool_id for c in list_available_pools(session, labeler=fresh)] == [pool.id]
    skill = Skill(owner_id=requester.id, name=CONTROL_SKILL_NAME)
    session.add(skill)
    session.commit()
    session.add(UserSkill(skill_id=skill.id, user_id=fresh.id, value=50))
    session.commit()
    with pytest.raises(Forbidden, match="at least 70"):
        assign_next_suite(session, labeler=fresh, pool_id=pool.id)


def test_control_accuracy_counts_every_control_answer_across_the_requesters_pools(
    session, requester, labeler
):
    """Each submit adds its suite to running counts; they always equal a recount."""
    first = _pool(session, requester, control=("cat", "dog", "bird"))
    second = _pool(session, requester, control=("cat", "cat", "cat"))
    seen = []
    for pool in (first, first, first, second, second):
        _answer_all(session, labeler, assign_next_suite(session, labeler=labeler, pool_id=pool.id))
        right = session.exec(
            select(Answer.value == Task.known_answer)
            .join(Task, Task.id == Answer.task_id)
            .where(Answer.labeler_id == labeler.id, Task.kind == TaskKind.CONTROL)
        ).all()
        row = session.exec(
            select(UserSkill)
            .join(Skill, Skill.id == UserSkill.skill_id)
            .where(Skill.name == CONTROL_SKILL_NAME, UserSkill.user_id == labeler.id)
        ).one()
        session.refresh(row)
        assert (row.control_answers, row.control_correct) == (len(right), sum(right))
        assert row.value == pytest.approx(round(100 * sum(right) / len(right), 2))
        seen.append(row.value)
    # the first pool's three controls are cat, dog, bird (one right of three answered "cat"),
    # the second pool's are all cat
    assert seen[2] == pytest.approx(33.33) and seen[4] == pytest.approx(60.0)


def test_available_pool_card_counts_suites_for_this_labeler(session, requester, labeler):
    pool = _pool(session, requester, general=10, overlap=2, general_per_suite=4)
    [card] = list_available_pools(session, labeler=labeler)
    assert (card.suites_remaining, card.tasks_per_suite, card.reward_cents) == (3, 5, 5)
    _answer_all(session, labeler, assign_next_suite(session, labeler=labeler, pool_id=pool.id))
    [card] = list_available_pools(session, labeler=labeler)
    assert card.suites_remaining == 2


def test_training_check_gives_hint_only_for_training_tasks(session, requester, labeler):
    pool = make_pool(
        session, requester, general_per_suite=1, control_per_suite=1, training_per_suite=1
    )
    add_tasks(session, pool, general=3, control=["dog"], training=[("cat", "Look at the ears.")])
    pool = open_pool(session, requester, pool)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    kinds = dict(
        session.exec(
            select(AssignmentTask.position, Task.kind)
            .join(Task)
            .where(AssignmentTask.assignment_id == view.assignment_id)
        ).all()
    )
    for position, kind in kinds.items():
        wrong = check_training_answer(
            session,
            labeler=labeler,
            assignment_id=view.assignment_id,
            position=position,
            value="bird",
        )
        if kind == TaskKind.TRAINING:
            assert wrong.correct is False and wrong.hint == "Look at the ears."
            right = check_training_answer(
                session,
                labeler=labeler,
                assignment_id=view.assignment_id,
                position=position,
                value="cat",
            )
            assert right.correct is True and right.hint is None
        else:
            assert wrong.correct is None and wrong.hint is None
    assert [t.checkable for t in view.tasks].count(True) == 1
