"""Pool progress figures, the per-labeler table, and the raw answers TSV."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db.models import Assignment, Ban, BanScope, Task
from app.errors import NotFound
from app.services.projects import progress
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler, make_requester


def test_figures_and_per_labeler_table(session, requester):
    pool = make_pool(session, requester, overlap=3)
    t1, t2, control = add_tasks(session, pool, general=2, control=["cat"])
    open_pool(session, requester, pool)
    ann, bob, cid = (make_labeler(session, name=n) for n in ("Ann", "Bob", "Cid"))
    assignments = add_answers(
        session,
        pool,
        {
            t1.id: [(ann, "cat"), (bob, "cat"), (cid, "dog")],
            t2.id: [(ann, "dog"), (bob, "cat")],  # a tie: no majority
            control.id: [(ann, "cat"), (bob, "cat"), (cid, "dog")],
        },
        status="submitted",
    )
    for assignment, seconds in zip(assignments, (30, 60, 90), strict=True):
        assignment.duration_seconds = seconds
        session.add(assignment)
    t1.submitted_count = 3
    session.add(t1)
    session.add(
        Ban(
            requester_id=requester.id,
            labeler_id=cid.id,
            scope=BanScope.PROJECT,
            project_id=pool.project_id,
            private_comment="bad",
        )
    )
    session.commit()

    figures = progress.get_pool_progress(session, requester=requester, pool_id=pool.id)
    assert (figures.tasks_total, figures.tasks_done, figures.fraction) == (2, 1, 0.5)
    assert (figures.answers, figures.suites_submitted, figures.banned_labelers) == (8, 3, 1)
    assert figures.average_seconds == pytest.approx(60)
    assert figures.reserved_cents == 100_000
    rows = {row.name: row for row in figures.labelers}
    assert rows["Ann"].control_accuracy == 1.0 and rows["Cid"].control_accuracy == 0.0
    assert (rows["Ann"].majority_answers, rows["Ann"].majority_agree) == (1, 1)
    assert rows["Cid"].majority_agreement == 0.0
    assert rows["Cid"].status == "banned" and rows["Ann"].status == "idle"


def test_active_suite_counts_as_a_working_labeler(session, requester):
    pool = make_pool(session, requester)
    (task,) = add_tasks(session, pool, general=1)
    ann = make_labeler(session)
    (assignment,) = add_answers(session, pool, {task.id: [(ann, "cat")]}, status="active")
    assignment.expires_at = assignment.created_at + timedelta(hours=1)
    session.add(assignment)
    session.commit()
    figures = progress.get_pool_progress(session, requester=requester, pool_id=pool.id)
    assert figures.active_labelers == 1 and figures.suites_submitted == 0


def test_raw_tsv_has_toloka_columns_and_only_submitted_work(session, requester, settings):
    pool = make_pool(session, requester)
    general, control = add_tasks(session, pool, general=1, control=["dog"])
    ann, bob = make_labeler(session), make_labeler(session)
    add_answers(session, pool, {general.id: [(ann, "cat")], control.id: [(ann, "dog")]})
    add_answers(session, pool, {general.id: [(bob, "bird")]}, status="active")
    lines = progress.export_raw_answers(session, requester=requester, pool_id=pool.id).splitlines()
    assert lines[0].split("\t") == list(progress.RAW_COLUMNS)
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 2
    assignment = session.query(Assignment).filter_by(labeler_id=ann.id).one()
    by_image = {row[0]: row for row in rows}
    control_row = by_image[session.get(Task, control.id).image]
    assert control_row[1:5] == ["dog", "dog", f"{ann.id:010d}", f"{assignment.id:010d}"]
    assert control_row[5] and control_row[6]
    assert by_image[general.image][2] == ""


def test_another_requesters_progress_is_not_found(session, requester):
    pool = make_pool(session, requester)
    with pytest.raises(NotFound):
        progress.get_pool_progress(session, requester=make_requester(session), pool_id=pool.id)
