"""A pool with a training requirement admits only labelers whose training score is high enough."""

from __future__ import annotations

import pytest

from app.errors import Forbidden
from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.labeling.available import list_available_pools
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler


def _train(session, labeler, training, first_answers):
    """Answer every training suite; ``first_answers`` are the labeler's first tries in order."""
    tries = iter(first_answers)
    while True:
        try:
            view = assign_next_suite(session, labeler=labeler, pool_id=training.id)
        except Exception:  # noqa: BLE001 - no suite left
            return
        firsts = {str(t.position): next(tries) for t in view.tasks}
        submit_assignment(
            session,
            labeler=labeler,
            assignment_id=view.assignment_id,
            answers={str(t.position): "cat" for t in view.tasks},
            first_values=firsts,
            by_position=True,
        )


def test_training_score_gates_the_main_pool(session, requester):
    project = make_project(session, requester)
    training = make_pool(
        session,
        requester,
        project,
        name="Training",
        pool_type="training",
        general_per_suite=0,
        control_per_suite=0,
        training_per_suite=2,
    )
    add_tasks(session, training, training=[("cat", "Ears!"), ("cat", "Whiskers!")])
    training = open_pool(session, requester, training)
    main = make_pool(
        session,
        requester,
        project,
        name="Main",
        general_per_suite=2,
        control_per_suite=0,
        training_pool_id=training.id,
        training_level_required=75,
    )
    add_tasks(session, main, general=4)
    main = open_pool(session, requester, main)

    newcomer = make_labeler(session)
    with pytest.raises(Forbidden, match="training first"):
        assign_next_suite(session, labeler=newcomer, pool_id=main.id)
    assert [card.pool_id for card in list_available_pools(session, labeler=newcomer)] == [
        training.id
    ]

    sloppy = make_labeler(session)
    _train(session, sloppy, training, ["cat", "dog"])
    with pytest.raises(Forbidden, match="at least 75%; yours is 50%"):
        assign_next_suite(session, labeler=sloppy, pool_id=main.id)

    careful = make_labeler(session)
    _train(session, careful, training, ["cat", "cat"])
    view = assign_next_suite(session, labeler=careful, pool_id=main.id)
    assert len(view.tasks) == 2
