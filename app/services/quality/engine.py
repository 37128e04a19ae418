"""The rules engine: which rules run when, for whom, and with what history.

Triggers: a submitted suite (fast responses, majority vote, control tasks, submitted
count, earnings), a skipped suite (skipped in a row), a review (acceptance rate) and a
ban (re-issue the banned labeler's tasks). Pool rules and the project's rules both run.
Everything here flushes only: it runs inside the caller's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session, select

from app.db.models import (
    Answer,
    Assignment,
    AssignmentTask,
    Pool,
    Project,
    RuleHistoryReset,
    Task,
    TaskKind,
)
from app.services.quality import actions, collectors, events, skills
from app.services.quality.bans import ALL_RULES
from app.services.quality.inputs import SubmittedSuite, SubmitTerms
from app.services.quality.rules import QualityConfig, Rule, conditions_hold, load_configs, rule_key

log = logging.getLogger("crowdlab.quality")

SUBMIT_COLLECTORS = {
    "ASSIGNMENT_SUBMIT_TIME",
    "MAJORITY_VOTE",
    "GOLDEN_SET",
    "ANSWER_COUNT",
    "INCOME",
}


@dataclass(frozen=True)
class BoundRule:
    key: str
    config: QualityConfig
    rule: Rule

    @property
    def collector(self) -> str:
        return self.config.collector_config.type.value


def pool_rules(session: Session, pool: Pool, types: set[str] | None = None) -> list[BoundRule]:
    """The pool's rules, then its project's, optionally only of some collector types."""
    project = session.get(Project, pool.project_id)
    sources = [
        ("pool:", pool.quality_rules),
        ("project:", project.quality_rules if project else []),
    ]
    bound = []
    for prefix, raw in sources:
        for config in load_configs(raw):
            if types is not None and config.collector_config.type.value not in types:
                continue
            for rule in config.rules:
                bound.append(BoundRule(rule_key(config, rule, prefix=prefix), config, rule))
    return bound


def _resets(session: Session, *, pool_id: int, labeler_id: int) -> dict[str, object]:
    rows = session.exec(
        select(RuleHistoryReset.rule_key, RuleHistoryReset.reset_at).where(
            RuleHistoryReset.pool_id == pool_id, RuleHistoryReset.labeler_id == labeler_id
        )
    ).all()
    return dict(rows)


def _since(resets: dict, key: str):
    times = [t for t in (resets.get(key), resets.get(ALL_RULES)) if t is not None]
    return max(times) if times else None


def run_rules(
    session: Session,
    *,
    pool: Pool,
    labeler_id: int,
    rules: list[BoundRule],
    context: dict | None = None,
) -> list[str]:
    """Evaluate rules for one labeler and act where the conditions hold."""
    if not rules:
        return []
    resets = _resets(session, pool_id=pool.id, labeler_id=labeler_id)
    cache: dict[tuple, dict] = {}
    fired = []
    for bound in rules:
        since = _since(resets, bound.key)
        cache_key = (bound.config.model_dump_json(), since)
        if cache_key not in cache:
            cache[cache_key] = collectors.collect(
                session,
                bound.config.collector_config,
                pool=pool,
                labeler_id=labeler_id,
                since=since,
                context=context,
            )
        figures = cache[cache_key]
        if not conditions_hold(bound.rule, figures):
            continue
        outcome = actions.apply_action(
            session,
            pool=pool,
            labeler_id=labeler_id,
            action=bound.rule.action,
            figures=figures,
            rule_key=bound.key,
            collector=bound.collector,
        )
        log.info(
            "rule %s fired for labeler %s in pool %s: %s", bound.key, labeler_id, pool.id, outcome
        )
        fired.append(outcome)
    return fired


def _suite_tasks(session: Session, *, assignment: Assignment) -> list[tuple]:
    """(task id, kind, overlap, submitted_count) of the suite's tasks, read fresh."""
    return list(
        session.exec(
            select(Task.id, Task.kind, Task.overlap, Task.submitted_count)
            .join(AssignmentTask, AssignmentTask.task_id == Task.id)
            .where(AssignmentTask.assignment_id == assignment.id)
        ).all()
    )


def _completed_task_labelers(session: Session, *, pool: Pool, suite: list[tuple]) -> set[int]:
    """Labelers who answered a general task of this suite whose overlap is now complete."""
    complete = [
        task_id
        for task_id, kind, overlap, submitted in suite
        if kind == TaskKind.GENERAL and submitted >= (overlap or pool.overlap)
    ]
    if not complete:
        return set()
    return set(
        session.exec(
            select(Answer.labeler_id)
            .where(Answer.task_id.in_(complete), Answer.excluded.is_(False))
            .distinct()
        ).all()
    )


def run_after_submit(
    session: Session,
    *,
    assignment: Assignment | SubmittedSuite,
    suite: list[tuple] | None = None,
    control_tally: tuple[int, int] | None = None,
    pool: SubmitTerms | None = None,
) -> list[str]:
    """Update control accuracy and run submit rules (majority vote for every co-labeler).

    ``suite``: the caller's fresh (task id, kind, overlap, submitted_count) of every task
    of the suite, and ``control_tally`` its (control answers, right ones), if it has them
    (saves reading them again); ``pool``: what the caller read of the pool, which says
    whether the pool or its project has rules at all."""
    known = pool
    if pool is None:
        pool = session.get(Pool, assignment.pool_id)
        if pool is None:
            return []
    if suite is None:
        suite = _suite_tasks(session, assignment=assignment)
    if any(kind == TaskKind.CONTROL for _, kind, _, _ in suite):
        skills.update_control_accuracy(
            session,
            requester_id=pool.owner_id,
            labeler_id=assignment.labeler_id,
            assignment_id=assignment.id,
            tally=control_tally,
        )
    if known is not None:
        if not known.has_rules:
            return []
        pool = session.get(Pool, assignment.pool_id)
    rules = pool_rules(session, pool, SUBMIT_COLLECTORS)
    if not rules:
        return []
    fired = run_rules(session, pool=pool, labeler_id=assignment.labeler_id, rules=rules)
    majority = [r for r in rules if r.collector == "MAJORITY_VOTE"]
    if majority:
        others = _completed_task_labelers(session, pool=pool, suite=suite)
        for labeler_id in sorted(others - {assignment.labeler_id}):
            fired += run_rules(session, pool=pool, labeler_id=labeler_id, rules=majority)
    return fired


def run_after_skip(session: Session, *, assignment: Assignment) -> list[str]:
    """Run the skipped-in-a-row rules after a labeler skipped a suite."""
    pool = session.get(Pool, assignment.pool_id)
    if pool is None:
        return []
    rules = pool_rules(session, pool, {"SKIPPED_IN_ROW_ASSIGNMENTS"})
    return run_rules(session, pool=pool, labeler_id=assignment.labeler_id, rules=rules)


def run_review_rules(session: Session, *, pool: Pool, labeler_id: int) -> list[str]:
    """Run the acceptance-rate rules after a review of the labeler's suites."""
    rules = pool_rules(session, pool, {"ACCEPTANCE_RATE"})
    return run_rules(session, pool=pool, labeler_id=labeler_id, rules=rules)


def run_captcha_rules(session: Session, *, pool: Pool, labeler_id: int) -> list[str]:
    """Run the captcha rules after the labeler answered a captcha."""
    rules = pool_rules(session, pool, {"CAPTCHA"})
    return run_rules(session, pool=pool, labeler_id=labeler_id, rules=rules)


def run_ban_rules(session: Session, *, pool: Pool, labeler_id: int) -> list[str]:
    """Run the "banned labeler's tasks" rules (USERS_ASSESSMENT) after a ban."""
    rules = pool_rules(session, pool, {"USERS_ASSESSMENT"})
    return run_rules(
        session,
        pool=pool,
        labeler_id=labeler_id,
        rules=rules,
        context={"revoked_reason": "RESTRICTION"},
    )


events.subscribe("banned", run_ban_rules)
events.subscribe("reviewed", run_review_rules)
