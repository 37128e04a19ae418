"""Prebuilt statements of money: suite payments, a pool's running reservation, guarded
balances. Run through ``app.db.raw.rows`` on the hot path (PostgreSQL: the driver)."""

from __future__ import annotations

from sqlalchemy import bindparam, text

from app.db.types import UTCDateTime

# --- paying a suite ---------------------------------------------------------------------------

POOL_RESERVED = text("SELECT reserved_cents FROM pool WHERE id = :pool_id")
ADD_RESERVED = text("UPDATE pool SET reserved_cents = reserved_cents + :delta WHERE id = :pool_id")
# takes a payment out of the running total only when it covers it (else: no row)
SPEND_RESERVED = text(
    "UPDATE pool SET reserved_cents = reserved_cents - :amount "
    "WHERE id = :pool_id AND reserved_cents >= :amount RETURNING reserved_cents"
)


def _payment(count: int):
    values = ", ".join(
        f"(:user_{i}, :account_{i}, :kind_{i}, :amount_{i}, :pool_id, :assignment_id, "
        f":counterparty_{i}, :memo_{i}, :created_at)"
        for i in range(count)
    )
    return text(
        "INSERT INTO ledger_entry (user_id, account, kind, amount_cents, pool_id, "
        f"assignment_id, counterparty_id, memo, created_at) VALUES {values} "
        "ON CONFLICT DO NOTHING RETURNING id"
    ).bindparams(bindparam("created_at", type_=UTCDateTime))


# payment + earning, and with a platform fee a third entry
PAYMENT = {2: _payment(2), 3: _payment(3)}


def _pay_pg(count: int):
    """PostgreSQL: the entries, the labeler's balance and the pool's running total in one
    statement; the balance and the total move only when every entry was new (the total
    only when the reservation covers them). Returns (entries written, 1 if the total
    moved else 0). Entry 1 is always the labeler's earning."""
    entries = PAYMENT[count].text
    return text(
        f"WITH paid AS ({entries}), spent AS (UPDATE pool "
        "SET reserved_cents = reserved_cents - :amount WHERE id = :pool_id "
        f"AND reserved_cents >= :amount AND (SELECT count(*) FROM paid) = {count} "
        "RETURNING 1), earned AS (INSERT INTO account_balance (user_id, cents) "
        f"SELECT :user_1, :amount_1 WHERE (SELECT count(*) FROM paid) = {count} "
        "ON CONFLICT (user_id) DO UPDATE SET cents = account_balance.cents + EXCLUDED.cents "
        "RETURNING 1) SELECT (SELECT count(*) FROM paid), (SELECT count(*) FROM spent)"
    )


PAY_PG = {2: _pay_pg(2), 3: _pay_pg(3)}

# --- balances: moved in the statement that checks them -----------------------------------

CREDIT_BALANCE = text(
    "INSERT INTO account_balance (user_id, cents) VALUES (:user_id, :cents) "
    "ON CONFLICT (user_id) DO UPDATE SET cents = account_balance.cents + EXCLUDED.cents"
)
# takes money only when the balance covers it (else: no row)
DEBIT_BALANCE = text(
    "UPDATE account_balance SET cents = cents - :cents "
    "WHERE user_id = :user_id AND cents >= :cents RETURNING cents"
)
BALANCE = text("SELECT cents FROM account_balance WHERE user_id = :user_id")

# a pool's reservation and fee; (SQLite, PostgreSQL): there the row is locked while a new
# suite is checked against it, in a statement of its own, so that the outstanding suites
# below are read after the lock
_POOL_BUDGET = "SELECT reserved_cents, fee_percent FROM pool WHERE id = :pool_id"
POOL_BUDGET = (text(_POOL_BUDGET), text(_POOL_BUDGET + " FOR NO KEY UPDATE"))
# suites handed out or awaiting review and not paid yet: (reward, how many) per reward
OUTSTANDING_SUITES = text(
    "SELECT reward_cents, COUNT(*) FROM assignment WHERE pool_id = :pool_id "
    "AND status IN ('active', 'submitted') AND reward_cents > 0 GROUP BY reward_cents"
)
