"""Money: every movement is a pair of ledger entries; balances are sums of entries.

Accounts per user: ``balance`` (spendable / earned) and ``reserved`` (a requester's money
set aside for launched pools). Amounts are integer cents.

Atomic against the balance it checks: a user's ``balance`` is also kept as one running row
(``account_balance``), moved in the same transaction as its entry. Money leaves it only by
a conditional ``UPDATE ... WHERE cents >= amount`` (and a ``CHECK (cents >= 0)`` backs it),
so concurrent withdrawals, launches and bonuses cannot both pass a check and overdraw it:
on PostgreSQL the second waits for the first's row lock and re-reads the row; on SQLite
writers are serialised anyway. A refused movement raises ``InsufficientFunds``.

A pool's reservation covers every suite that can still be paid, and is the most the pool
spends without the requester's consent: a suite is handed out only when the reservation
covers it and every other outstanding suite of the pool (``ensure_suite_covered``; the
balance is never dipped into silently, the requester adds to the reservation from the
pool's page); closing a pool releases only what no outstanding suite may still need.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import (
    Assignment,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    Pool,
    PoolStatus,
    User,
)
from app.db.raw import pick, rows
from app.db.types import utcnow
from app.errors import InsufficientFunds, ValidationFailed
from app.services.listing import ListParams, ListSpec, Page, paginate
from app.services.money import sql

MAX_TOPUP_CENTS = 100_000_00


def dollars(cents: int) -> str:
    """``$1,234.56``."""
    return f"${cents / 100:,.2f}"


def _sum(session: Session, *conditions) -> int:
    """The sum of the amounts of the entries matching every condition, in cents."""
    total = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(*conditions)
    ).one()
    return int(total)


def _user_id(user: User | int) -> int:
    return user if isinstance(user, int) else user.id


def get_balance(session: Session, *, user: User | int, account: str = LedgerAccount.BALANCE) -> int:
    """The user's money on one account, in cents (``balance``: the guarded running row)."""
    if account == LedgerAccount.BALANCE:
        found = rows(session.connection(), sql.BALANCE, {"user_id": _user_id(user)})
        return int(found[0][0]) if found else 0
    return _sum(session, LedgerEntry.user_id == _user_id(user), LedgerEntry.account == account)


def sum_balance(session: Session, *, user: User | int) -> int:
    """The user's ``balance`` entries added up (what the running row must always equal)."""
    return _sum(
        session,
        LedgerEntry.user_id == _user_id(user),
        LedgerEntry.account == LedgerAccount.BALANCE,
    )


def get_pool_reserved(session: Session, *, pool: Pool) -> int:
    """Money still reserved for a pool, in cents (the pool's running total)."""
    return int(session.connection().execute(sql.POOL_RESERVED, {"pool_id": pool.id}).scalar_one())


def sum_pool_reserved(session: Session, *, pool: Pool) -> int:
    """The same, added up from the ledger (what the running total must always equal)."""
    return _sum(
        session,
        LedgerEntry.pool_id == pool.id,
        LedgerEntry.user_id == pool.owner_id,
        LedgerEntry.account == LedgerAccount.RESERVED,
    )


def get_pool_spent(session: Session, *, pool: Pool) -> int:
    """Money paid out of a pool's reservation (payments, fees, bonuses), in cents."""
    return -_sum(
        session,
        LedgerEntry.pool_id == pool.id,
        LedgerEntry.user_id == pool.owner_id,
        LedgerEntry.kind.in_([LedgerKind.PAYMENT, LedgerKind.FEE, LedgerKind.BONUS]),
    )


def fee_cents(amount_cents: int, fee_percent: float | None) -> int:
    """The platform fee on one payment (the same rounding everywhere money is counted)."""
    return round(amount_cents * (fee_percent or 0.0) / 100)


ENTRY_LIST = ListSpec(
    sorts={
        "when": LedgerEntry.id,
        "kind": LedgerEntry.kind,
        "account": LedgerEntry.account,
        "amount": LedgerEntry.amount_cents,
    },
    default_sort="when",
    default_dir="desc",
    first_dirs={"amount": "desc"},
    search=(LedgerEntry.kind, LedgerEntry.memo, LedgerEntry.account),
    tiebreak=(LedgerEntry.id,),
    per_page=25,
)
"""The balance history: newest first; searched in kind, memo and account."""


def page_entries(session: Session, *, user: User, params: ListParams) -> Page:
    """One page of the user's ledger history (searched, sorted and cut in SQL)."""
    query = select(LedgerEntry).where(LedgerEntry.user_id == user.id)
    return paginate(session, query, spec=ENTRY_LIST, params=params)


Refusal = Callable[[int], InsufficientFunds]


def _refuse_generic(balance: int) -> InsufficientFunds:
    return InsufficientFunds(
        f"The balance is {dollars(balance)}, which does not cover this.",
        payload={"balance": balance / 100},
    )


def _move_balance(session: Session, *, user_id: int, cents: int, refuse: Refusal) -> None:
    """Move the user's running balance by ``cents``; a debit only when the balance covers it."""
    conn = session.connection()
    if cents >= 0:
        conn.execute(sql.CREDIT_BALANCE, {"user_id": user_id, "cents": cents})
    elif not rows(conn, sql.DEBIT_BALANCE, {"user_id": user_id, "cents": -cents}):
        raise refuse(get_balance(session, user=user_id))


def add_entry(
    session: Session, *, refuse: Refusal = _refuse_generic, moved: bool = False, **fields
) -> LedgerEntry:
    """Add one entry (flush only): a ``balance`` entry moves the user's guarded balance
    (``refuse(balance)`` is raised when a debit is not covered; ``moved``: the caller moved
    it already), a pool's ``reserved`` entry the pool's running total."""
    entry = LedgerEntry(**fields)
    if entry.account == LedgerAccount.BALANCE and not moved:
        _move_balance(session, user_id=entry.user_id, cents=entry.amount_cents, refuse=refuse)
    session.add(entry)
    if entry.account == LedgerAccount.RESERVED and entry.pool_id is not None:
        _move_reserved(session, pool_id=entry.pool_id, delta=entry.amount_cents)
    session.flush()
    return entry


def _move_reserved(session: Session, *, pool_id: int, delta: int) -> None:
    session.connection().execute(sql.ADD_RESERVED, {"pool_id": pool_id, "delta": delta})


def top_up(session: Session, *, user: User, amount_cents: int, memo: str = "Top-up") -> int:
    """Add funds (a simulated payment); returns the new balance."""
    if amount_cents <= 0 or amount_cents > MAX_TOPUP_CENTS:
        raise ValidationFailed(
            "Top up between 0.01 and 100,000.00.", errors={"amount": "Out of range."}
        )
    add_entry(
        session,
        user_id=user.id,
        account=LedgerAccount.BALANCE,
        kind=LedgerKind.TOPUP,
        amount_cents=amount_cents,
        memo=memo,
    )
    session.commit()
    return get_balance(session, user=user)


def reserve_for_pool(session: Session, *, pool: Pool, amount_cents: int, memo: str) -> None:
    """Move money from the owner's balance into the pool's reservation (flush only);
    ``InsufficientFunds`` when the balance does not cover it."""

    def refuse(balance: int) -> InsufficientFunds:
        return InsufficientFunds(
            f"This needs {dollars(amount_cents)} but the balance is {dollars(balance)}. "
            "Top up first.",
            payload={"required": amount_cents / 100, "balance": balance / 100},
        )

    common = {"user_id": pool.owner_id, "pool_id": pool.id, "memo": memo}
    add_entry(
        session,
        refuse=refuse,
        account=LedgerAccount.BALANCE,
        kind=LedgerKind.RESERVE,
        amount_cents=-amount_cents,
        **common,
    )
    add_entry(
        session,
        account=LedgerAccount.RESERVED,
        kind=LedgerKind.RESERVE,
        amount_cents=amount_cents,
        **common,
    )


def outstanding_cents(session: Session, *, pool_id: int, fee_percent: float | None) -> int:
    """What the pool's suites that are out or awaiting review may still cost, fee included."""
    found = rows(session.connection(), sql.OUTSTANDING_SUITES, {"pool_id": pool_id})
    return sum(n * (reward + fee_cents(reward, fee_percent)) for reward, n in found)


class ReservationUsedUp(InsufficientFunds):
    """The pool's reservation does not cover one more suite (the requester may add to it)."""

    code = "RESERVATION_USED_UP"


def ensure_suite_covered(
    session: Session, *, pool_id: int, reward_cents: int, counted: bool = False
) -> None:
    """Before a new suite is handed out: make sure the pool's reservation covers it and every
    outstanding suite. It is never topped up from the owner's balance here: spending more
    than was reserved needs the requester's consent (they add to the reservation).

    ``ReservationUsedUp`` when it does not cover them. On PostgreSQL the pool's row stays
    locked to the commit, so concurrent takes are counted one after the other; SQLite
    serialises writers anyway.
    """
    if reward_cents <= 0:
        return
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    [(reserved, fee_percent)] = rows(conn, pick(sql.POOL_BUDGET, pg), {"pool_id": pool_id})
    need = outstanding_cents(session, pool_id=pool_id, fee_percent=fee_percent)
    if not counted:  # (``counted``: the new suite is already written, so counted above)
        need += reward_cents + fee_cents(reward_cents, fee_percent)
    if need > int(reserved):
        raise ReservationUsedUp(
            f"The pool's reservation ({dollars(int(reserved))}) does not cover another suite.",
            payload={"reserved": int(reserved) / 100, "needed": need / 100},
        )


def release_pool_reservation(
    session: Session, *, pool: Pool, memo: str = "Released on close"
) -> int:
    """Return the part of a pool's reservation that no outstanding suite may still need to
    the owner's balance (flush only); returns the amount released."""
    left = get_pool_reserved(session, pool=pool)
    left -= outstanding_cents(session, pool_id=pool.id, fee_percent=pool.fee_percent)
    if left <= 0:
        return 0
    common = {"user_id": pool.owner_id, "pool_id": pool.id, "memo": memo}
    add_entry(
        session,
        account=LedgerAccount.RESERVED,
        kind=LedgerKind.RELEASE,
        amount_cents=-left,
        **common,
    )
    add_entry(
        session, account=LedgerAccount.BALANCE, kind=LedgerKind.RELEASE, amount_cents=left, **common
    )
    return left


def pay_suite(session: Session, *, pool: Pool, assignment: Assignment) -> bool:
    """Pay a suite's reward (and the platform fee) from the pool's reservation, once.

    Returns False when it was already paid. Runs in the caller's transaction; the unique
    constraint on (kind, assignment, user, account) makes a second payment impossible even
    when two transactions race (the entries are inserted ``ON CONFLICT DO NOTHING``), and
    the labeler's balance moves only with new entries. A suite handed out was covered by
    the reservation; one accepted after a rejection may not be, and then the rest is
    reserved from the requester's balance (``InsufficientFunds`` when it cannot be).
    """
    amount = assignment.reward_cents
    if amount <= 0:
        return False
    fee = fee_cents(amount, pool.fee_percent)
    memo = f"Suite {assignment.id}"
    entries = [
        (pool.owner_id, LedgerAccount.RESERVED, LedgerKind.PAYMENT, -amount, assignment.labeler_id),
        (assignment.labeler_id, LedgerAccount.BALANCE, LedgerKind.EARNING, amount, pool.owner_id),
    ]
    if fee:
        entries.append((pool.owner_id, LedgerAccount.RESERVED, LedgerKind.FEE, -fee, None))
    params = {"pool_id": pool.id, "assignment_id": assignment.id, "created_at": utcnow()}
    for i, (user_id, account, kind, cents, counterparty) in enumerate(entries):
        params.update(
            {
                f"user_{i}": user_id,
                f"account_{i}": str(account),
                f"kind_{i}": str(kind),
                f"amount_{i}": cents,
                f"counterparty_{i}": counterparty,
                f"memo_{i}": "Platform fee" if kind == LedgerKind.FEE else memo,
            }
        )
    conn = session.connection()
    spend = {"pool_id": pool.id, "amount": amount + fee}
    if conn.dialect.name == "postgresql":
        [(paid, spent)] = rows(conn, sql.PAY_PG[len(entries)], {**params, **spend})
    else:
        paid = len(rows(conn, sql.PAYMENT[len(entries)], params))
        if paid == len(entries):
            conn.execute(sql.CREDIT_BALANCE, {"user_id": assignment.labeler_id, "cents": amount})
        spent = paid == len(entries) and bool(rows(conn, sql.SPEND_RESERVED, spend))
    if paid < len(entries):
        return False  # paid already
    # the pool's running total moves with its reservation entries, as in add_entry
    if not spent:  # the reservation is short: top it up from the balance first
        reserved = get_pool_reserved(session, pool=pool)
        reserve_for_pool(
            session,
            pool=pool,
            amount_cents=amount + fee - max(reserved, 0),
            memo="Top-up of reservation",
        )
        _move_reserved(session, pool_id=pool.id, delta=-(amount + fee))
    return True


def pay_bonus(
    session: Session,
    *,
    pool: Pool,
    requester_id: int,
    labeler_id: int,
    amount_cents: int,
    message: str,
) -> LedgerEntry:
    """Move a bonus and its platform fee from the requester's balance to the labeler (flush
    only); returns the labeler's entry. ``InsufficientFunds`` when the balance is short."""
    fee = fee_cents(amount_cents, pool.fee_percent)

    def refuse(balance: int) -> InsufficientFunds:
        return InsufficientFunds(
            f"The bonus needs {dollars(amount_cents + fee)} but the balance is "
            f"{dollars(balance)}. Top up first.",
            payload={"required": (amount_cents + fee) / 100, "balance": balance / 100},
        )

    # one debit for bonus and fee together: both are covered, or neither is taken
    _move_balance(session, user_id=requester_id, cents=-(amount_cents + fee), refuse=refuse)
    common = {"pool_id": pool.id, "account": LedgerAccount.BALANCE, "moved": True}
    add_entry(
        session,
        user_id=requester_id,
        kind=LedgerKind.BONUS,
        amount_cents=-amount_cents,
        counterparty_id=labeler_id,
        memo=message,
        **common,
    )
    if fee:
        add_entry(
            session,
            user_id=requester_id,
            kind=LedgerKind.FEE,
            amount_cents=-fee,
            memo="Platform fee on bonus",
            **common,
        )
    return add_entry(
        session,
        user_id=labeler_id,
        kind=LedgerKind.BONUS,
        amount_cents=amount_cents,
        counterparty_id=requester_id,
        memo=message,
        pool_id=pool.id,
        account=LedgerAccount.BALANCE,
    )


def is_paid(session: Session, *, assignment: Assignment) -> bool:
    """Whether the suite's payment entry exists."""
    return (
        session.exec(
            select(LedgerEntry.id).where(
                LedgerEntry.assignment_id == assignment.id, LedgerEntry.kind == LedgerKind.EARNING
            )
        ).first()
        is not None
    )


def withdraw(session: Session, *, user: User, amount_cents: int) -> int:
    """Move a labeler's earnings out (a simulated payout); returns the new balance."""
    if amount_cents <= 0:
        raise ValidationFailed("Enter a positive amount.", errors={"amount": "Must be positive."})

    def refuse(balance: int) -> InsufficientFunds:
        return InsufficientFunds(
            f"You can withdraw at most {dollars(balance)}.", payload={"balance": balance / 100}
        )

    add_entry(
        session,
        refuse=refuse,
        user_id=user.id,
        account=LedgerAccount.BALANCE,
        kind=LedgerKind.WITHDRAWAL,
        amount_cents=-amount_cents,
        memo="Withdrawal",
    )
    session.commit()
    return get_balance(session, user=user)


def release_closed_pools(session: Session) -> int:
    """Return to their owners what closed pools no longer need (a suite that was out when
    the pool closed has since been paid, rejected or expired); commits, returns cents."""
    closed = session.exec(
        select(Pool).where(
            Pool.status.in_([PoolStatus.CLOSED, PoolStatus.ARCHIVED]), Pool.reserved_cents > 0
        )
    ).all()
    total = 0
    for pool in closed:
        total += release_pool_reservation(session, pool=pool, memo="Released after close")
        session.commit()
    return total
