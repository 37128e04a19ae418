"""A pool's reservation is its spending limit.

The budget review's estimate counts each answer once. The pool's rules can make it cost
more: a ban excludes the labeler's answers and re-issues their tasks, a rule can raise
the overlap, and the last suites of a pool can hold fewer tasks. None of these has a fixed
limit, so launch reserves the estimate plus a margin the requester chooses (suggested from
the rules), and Crowdlab never spends past what is reserved: a suite is handed out only
when the reservation covers it. When it is used up the pool hands out no new suites and
its page says so, with the amount that finishes the work; adding it to the reservation
(``add_to_reservation``) is the requester's consent to spend more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import (
    Assignment,
    AssignmentStatus,
    Pool,
    PoolStatus,
    Task,
    TaskKind,
    TaskSuite,
    User,
)
from app.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from app.services.money import ledger
from app.services.quality.rules import ActionType, load_configs

# Suggested extra when the rules can re-issue tasks (the demo's banned labelers cost 26 %).
REISSUE_MARGIN_PERCENT = 30
MAX_MARGIN_PERCENT = 300
RULE_NAMES = {
    "ASSIGNMENT_SUBMIT_TIME": "Fast responses",
    "MAJORITY_VOTE": "Majority vote",
    "GOLDEN_SET": "Control tasks",
    "SKIPPED_IN_ROW_ASSIGNMENTS": "Skipped suites",
    "ANSWER_COUNT": "Answer count",
    "INCOME": "Earnings",
    "ACCEPTANCE_RATE": "Acceptance rate",
    "USERS_ASSESSMENT": "Review results",
}


def reissue_risks(pool: Pool) -> list[str]:
    """Why the pool may pay for more suites than the estimate, one sentence each."""
    banning: list[str] = []
    raising: list[str] = []
    for config in load_configs(pool.quality_rules):
        name = RULE_NAMES.get(config.collector_config.type.value, "A rule")
        for rule in config.rules:
            if rule.action.type == ActionType.RESTRICTION_V2 and name not in banning:
                banning.append(name)
            elif rule.action.type == ActionType.CHANGE_OVERLAP and name not in raising:
                raising.append(name)
    risks = []
    if banning and pool.exclude_banned_answers:
        risks.append(
            f"The rules {', '.join(banning)} ban labelers, and a banned labeler's answers are "
            "excluded and their tasks re-issued to others: each re-issued suite is paid again."
        )
    if raising:
        risks.append(
            f"The rules {', '.join(raising)} raise the overlap of a labeler's tasks: "
            "more answers are collected and paid."
        )
    if pool.overlap > 1 and pool.general_per_suite > 1 and not pool.fixed_suites:
        risks.append(
            "The last suites of the pool can hold fewer than "
            f"{pool.general_per_suite} tasks (a labeler never gets a task twice), so a few "
            "more suites than estimated may be needed."
        )
    return risks


def suggested_margin(pool: Pool) -> int:
    """The margin (percent of the estimate) the launch page proposes."""
    risks = reissue_risks(pool)
    if any("re-issued" in r or "raise the overlap" in r for r in risks):
        return REISSUE_MARGIN_PERCENT
    return 10 if risks else 0


def check_margin(margin_percent) -> int:
    """A whole percent from 0 to ``MAX_MARGIN_PERCENT`` (``ValidationFailed`` otherwise)."""
    try:
        value = int(str(margin_percent).strip())
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value <= MAX_MARGIN_PERCENT:
        raise ValidationFailed(
            "Check the margin.",
            errors={"margin_percent": f"Enter a whole percent from 0 to {MAX_MARGIN_PERCENT}."},
        )
    return value


def margin_suites(suites: int, margin_percent: int) -> int:
    """Extra suites a margin reserves for (rounded up: 30 % of 50 suites is 15)."""
    return math.ceil(suites * margin_percent / 100)


@dataclass
class ReservationState:
    """What an open pool's reservation still covers."""

    reserved_cents: int  # left in the reservation
    outstanding_cents: int  # what suites out or awaiting review may still cost
    suite_cents: int  # one more suite, fee included
    suites_left: int  # suites still needed to collect every answer
    balance_cents: int = 0  # the owner's balance, where more can come from

    @property
    def free_cents(self) -> int:
        """Reserved money no suite has claimed yet."""
        return self.reserved_cents - self.outstanding_cents

    @property
    def needed_cents(self) -> int:
        """What must be added so that every remaining suite is covered (0 when it is)."""
        return max(0, self.suites_left * self.suite_cents - self.free_cents)

    @property
    def used_up(self) -> bool:
        """Suites are still needed but the reservation cannot cover the next one."""
        return self.suites_left > 0 and self.suite_cents > 0 and self.free_cents < self.suite_cents


def suites_left(session: Session, *, pool: Pool) -> int:
    """Suites still to hand out before every task has its answers."""
    if pool.fixed_suites:
        planned = session.exec(
            select(func.coalesce(func.sum(TaskSuite.overlap), 0)).where(
                TaskSuite.pool_id == pool.id
            )
        ).one()
        live = session.exec(
            select(func.count(Assignment.id)).where(
                Assignment.pool_id == pool.id,
                Assignment.status.in_(
                    [AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED]
                ),
            )
        ).one()
        return max(0, int(planned) - int(live))
    free = func.coalesce(Task.overlap, pool.overlap) - Task.taken_count
    slots = session.exec(
        select(func.coalesce(func.sum(free), 0)).where(
            Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL, free > 0
        )
    ).one()
    return math.ceil(int(slots) / max(pool.general_per_suite, 1))


def reservation_state(session: Session, *, pool: Pool) -> ReservationState:
    """The reservation against the suites still out and still needed."""
    return ReservationState(
        reserved_cents=ledger.get_pool_reserved(session, pool=pool),
        outstanding_cents=ledger.outstanding_cents(
            session, pool_id=pool.id, fee_percent=pool.fee_percent
        ),
        suite_cents=pool.reward_cents + ledger.fee_cents(pool.reward_cents, pool.fee_percent),
        suites_left=suites_left(session, pool=pool) if pool.status == PoolStatus.OPEN else 0,
        balance_cents=ledger.get_balance(session, user=pool.owner_id),
    )


def add_to_reservation(
    session: Session, *, requester: User, pool_id: int, amount_cents: int
) -> ReservationState:
    """Move ``amount_cents`` of the requester's balance into an open pool's reservation:
    their consent to spend that much more on it. Commits."""
    pool = session.get(Pool, pool_id)
    if pool is None or pool.owner_id != requester.id:
        raise NotFound("No such pool.")
    if pool.status != PoolStatus.OPEN:
        raise Conflict(f"Only an open pool's reservation can grow; this one is {pool.status}.")
    if amount_cents <= 0 or amount_cents > ledger.MAX_TOPUP_CENTS:
        raise ValidationFailed(
            "Check the amount.", errors={"amount": "Enter an amount above 0.00."}
        )
    balance = ledger.get_balance(session, user=requester)
    if amount_cents > balance:
        raise InsufficientFunds(
            f"Adding {ledger.dollars(amount_cents)} needs that much on your balance, which is "
            f"{ledger.dollars(balance)}. Top up at least {ledger.dollars(amount_cents - balance)}"
            " first.",
            payload={
                "required": amount_cents / 100,
                "balance": balance / 100,
                "shortfall": (amount_cents - balance) / 100,
            },
        )
    ledger.reserve_for_pool(
        session,
        pool=pool,
        amount_cents=amount_cents,
        memo=f"Added to the reservation of {pool.name}",
    )
    session.commit()
    session.refresh(pool)
    return reservation_state(session, pool=pool)
