"""Money: every movement is a pair of ledger entries; balances are sums of entries.

Accounts per user: ``balance`` (spendable / earned) and ``reserved`` (a requester's money
set aside for launched pools). Amounts are integer cents.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import Assignment, LedgerAccount, LedgerEntry, LedgerKind, Pool, User
from app.db.types import utcnow
from app.errors import InsufficientFunds, ValidationFailed
from app.services import suite_sql as sql

MAX_TOPUP_CENTS = 100_000_00


def _sum(session: Session, *conditions) -> int:
    """The sum of the amounts of the entries matching every condition, in cents."""
    total = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(*conditions)
    ).one()
    return int(total)


def get_balance(session: Session, *, user: User | int, account: str = LedgerAccount.BALANCE) -> int:
    """The sum of the user's entries on one account, in cents."""
    user_id = user if isinstance(user, int) else user.id
    return _sum(session, LedgerEntry.user_id == user_id, LedgerEntry.account == account)


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


def list_entries(session: Session, *, user: User, limit: int = 100) -> list[LedgerEntry]:
    """The user's latest ledger entries."""
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user.id)
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
    )
    return list(session.exec(query))


def _entry(session: Session, **fields) -> LedgerEntry:
    """Add one entry; a pool's reservation entry also moves the pool's running total."""
    entry = LedgerEntry(**fields)
    session.add(entry)
    if entry.account == LedgerAccount.RESERVED and entry.pool_id is not None:
        _move_reserved(session, pool_id=entry.pool_id, delta=entry.amount_cents)
    return entry


def _move_reserved(session: Session, *, pool_id: int, delta: int) -> None:
    session.connection().execute(sql.ADD_RESERVED, {"pool_id": pool_id, "delta": delta})


def top_up(session: Session, *, user: User, amount_cents: int, memo: str = "Top-up") -> int:
    """Add funds (a simulated payment); returns the new balance."""
    if amount_cents <= 0 or amount_cents > MAX_TOPUP_CENTS:
        raise ValidationFailed(
            "Top up between 0.01 and 100,000.00.", errors={"amount": "Out of range."}
        )
    _entry(
        session,
        user_id=user.id,
        account=LedgerAccount.BALANCE,
        kind=LedgerKind.TOPUP,
        amount_cents=amount_cents,
        memo=memo,
    )
    session.commit()
    return get_balance(session, user=user)


def _reserve(session: Session, *, pool: Pool, amount_cents: int, memo: str) -> None:
    """Move money from the owner's balance into the pool's reservation (flush only)."""
    balance = get_balance(session, user=pool.owner_id)
    if amount_cents > balance:
        raise InsufficientFunds(
            f"This needs ${amount_cents / 100:,.2f} but the balance is ${balance / 100:,.2f}. "
            "Top up first.",
            payload={"required": amount_cents / 100, "balance": balance / 100},
        )
    common = {"user_id": pool.owner_id, "pool_id": pool.id, "memo": memo}
    _entry(
        session,
        account=LedgerAccount.BALANCE,
        kind=LedgerKind.RESERVE,
        amount_cents=-amount_cents,
        **common,
    )
    _entry(
        session,
        account=LedgerAccount.RESERVED,
        kind=LedgerKind.RESERVE,
        amount_cents=amount_cents,
        **common,
    )
    session.flush()


def _release(session: Session, *, pool: Pool, memo: str = "Released on close") -> int:
    """Return what is left of a pool's reservation to the owner's balance (flush only)."""
    left = get_pool_reserved(session, pool=pool)
    if left <= 0:
        return 0
    common = {"user_id": pool.owner_id, "pool_id": pool.id, "memo": memo}
    _entry(
        session,
        account=LedgerAccount.RESERVED,
        kind=LedgerKind.RELEASE,
        amount_cents=-left,
        **common,
    )
    _entry(
        session, account=LedgerAccount.BALANCE, kind=LedgerKind.RELEASE, amount_cents=left, **common
    )
    session.flush()
    return left


def _pay_assignment(session: Session, *, pool: Pool, assignment: Assignment) -> bool:
    """Pay a suite's reward (and the platform fee) from the pool's reservation, once.

    Returns False when it was already paid. Runs in the caller's transaction; the unique
    constraint on (kind, assignment, user, account) makes a second payment impossible even
    when two transactions race (the entries are inserted ``ON CONFLICT DO NOTHING``). If
    the reservation is short, the rest is taken from the requester's balance (a pool's
    overlap can grow after launch).
    """
    amount = assignment.reward_cents
    if amount <= 0:
        return False
    fee = round(amount * (pool.fee_percent or 0.0) / 100)
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
        [(paid, spent)] = sql.rows(conn, sql.PAY_PG[len(entries)], {**params, **spend})
    else:
        paid = len(sql.rows(conn, sql.PAYMENT[len(entries)], params))
        spent = paid == len(entries) and bool(sql.rows(conn, sql.SPEND_RESERVED, spend))
    if paid < len(entries):
        return False  # paid already
    # the pool's running total moves with its reservation entries, as in _entry
    if not spent:  # the reservation is short: top it up from the balance first
        reserved = get_pool_reserved(session, pool=pool)
        _reserve(
            session,
            pool=pool,
            amount_cents=amount + fee - max(reserved, 0),
            memo="Top-up of reservation",
        )
        _move_reserved(session, pool_id=pool.id, delta=-(amount + fee))
    return True


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
    balance = get_balance(session, user=user)
    if amount_cents <= 0:
        raise ValidationFailed("Enter a positive amount.", errors={"amount": "Must be positive."})
    if amount_cents > balance:
        raise InsufficientFunds(
            f"You can withdraw at most ${balance / 100:,.2f}.", payload={"balance": balance / 100}
        )
    _entry(
        session,
        user_id=user.id,
        account=LedgerAccount.BALANCE,
        kind=LedgerKind.WITHDRAWAL,
        amount_cents=-amount_cents,
        memo="Withdrawal",
    )
    session.commit()
    return get_balance(session, user=user)
