"""toloka-kit's user bonuses against Crowdlab: async by default, paid once per operation id."""

from __future__ import annotations

import uuid
import warnings
from decimal import Decimal

import pytest

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client import exceptions

from sqlmodel import func, select

from app.db.models import LedgerEntry, LedgerKind, UserBonus
from app.services.money import ledger
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_labeler


def _v(value):
    return getattr(value, "value", value)


@pytest.fixture
def accepted_work(session, funded):
    """Two labelers with one accepted assignment each in the funded requester's pool."""
    requester, token = funded
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=2)
    first, second = make_labeler(session), make_labeler(session)
    done = add_answers(session, pool, {tasks[0].id: [(first, "cat"), (second, "dog")]})
    by_labeler = {a.labeler_id: a for a in done}
    return requester, token, pool, (first, by_labeler[first.id]), (second, by_labeler[second.id])


def _bonus(user_id: int, amount: str, assignment_id: int | None = None) -> toloka.UserBonus:
    return toloka.UserBonus(
        user_id=f"{user_id:010d}",
        amount=Decimal(amount),
        public_title={"EN": "Great work"},
        public_message={"EN": "Thanks for the careful answers."},
        assignment_id=f"{assignment_id:010d}" if assignment_id else None,
    )


def _paid(session) -> int:
    session.expire_all()
    return int(
        session.exec(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == LedgerKind.BONUS, LedgerEntry.amount_cents > 0)
        ).one()
    )


def test_create_user_bonus_async_is_one_operation_paid_once(toloka_server, session, accepted_work):
    requester, token, _pool, (labeler, assignment), _ = accepted_work
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    before = ledger.get_balance(session, user=requester)

    operation_id = uuid.uuid4()
    bonus = client.create_user_bonus(
        _bonus(labeler.id, "1.25", assignment.id), operation_id=operation_id
    )
    assert bonus.id and bonus.user_id == f"{labeler.id:010d}"
    assert bonus.amount == Decimal("1.25")
    assert bonus.assignment_id == f"{assignment.id:010d}"
    assert bonus.public_title == {"EN": "Great work"}
    operation = client.get_operation(str(operation_id))
    assert _v(operation.type) == "USER_BONUS.BATCH_CREATE" and _v(operation.status) == "SUCCESS"
    assert operation.details.success_count == 1

    # A retry with the same operation id (a lost response, a second run) pays nothing more
    # and still hands back the same bonus.
    again = client.create_user_bonus(
        _bonus(labeler.id, "1.25", assignment.id), operation_id=operation_id
    )
    assert again.id == bonus.id
    assert _paid(session) == 1
    spent = before - ledger.get_balance(session, user=requester)
    assert spent >= 125  # the bonus and its platform fee, once
    assert ledger.get_balance(session, user=labeler) == 125
    assert client.get_user_bonus(bonus.id).assignment_id == f"{assignment.id:010d}"


def test_create_user_bonuses_async_with_a_list(toloka_server, session, accepted_work):
    _requester, token, _pool, (first, a1), (second, a2) = accepted_work
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    operation = client.wait_operation(
        client.create_user_bonuses_async(
            [_bonus(first.id, "0.50", a1.id), _bonus(second.id, "0.75", a2.id)]
        )
    )
    assert _v(operation.status) == "SUCCESS"
    assert operation.details.total_count == 2 and operation.details.success_count == 2
    log = client.get_operation_log(operation.id)
    ids = [item.output["user_bonus_id"] for item in log if item.success]
    assert len(ids) == 2
    found = {b.user_id: b.amount for b in client.get_user_bonuses()}
    assert found == {f"{first.id:010d}": Decimal("0.5"), f"{second.id:010d}": Decimal("0.75")}
    assert _paid(session) == 2

    # the synchronous list form: items and validation errors by index
    result = client.create_user_bonuses(
        [_bonus(first.id, "0.10"), _bonus(second.id, "0.001")],
        skip_invalid_items=True,
        async_mode=False,
    )
    assert list(result.items) == ["0"] and list(result.validation_errors) == ["1"]
    assert _paid(session) == 3


def test_a_refused_bonus_batch_pays_nothing_and_frees_its_operation_id(
    toloka_server, session, accepted_work
):
    _requester, token, _pool, (first, a1), (second, _a2) = accepted_work
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    operation_id = uuid.uuid4()
    with pytest.raises(exceptions.ValidationApiError):
        client.create_user_bonuses(  # the second labeler's bonus names another's assignment
            [_bonus(first.id, "0.50", a1.id), _bonus(second.id, "0.50", a1.id)],
            operation_id=operation_id,
        )
    assert _paid(session) == 0
    assert session.exec(select(func.count()).select_from(UserBonus)).one() == 0
    done = client.create_user_bonuses([_bonus(first.id, "0.50", a1.id)], operation_id=operation_id)
    assert len(done.items) == 1 and _paid(session) == 1
    with pytest.raises(exceptions.ApiError) as unsupported:
        client.create_user_bonus(
            toloka.UserBonus(user_id=f"{first.id:010d}", amount=Decimal("1"), without_message=True)
        )
    assert unsupported.value.code == "VALIDATION_ERROR"
    assert _paid(session) == 1
