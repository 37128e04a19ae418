"""Dry run: replay a pool's past work through rules and report whom they would have hit.

Each labeler's suites are replayed in time order; a rule "fires" at the first point where
its conditions hold over the history up to then. Nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, select

from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    CaptchaChallenge,
    Task,
    TaskKind,
    User,
)
from app.services.quality import overlap
from app.services.quality.collectors import (
    COUNTED_STATUSES,
    DONE_STATUSES,
    fast_figures,
    is_correct,
    majority_value,
    rate_figures,
)
from app.services.quality.rules import QualityConfig, Rule, conditions_hold, describe_rule

NOT_SIMULATED = {"USERS_ASSESSMENT"}


@dataclass
class DryRunResult:
    """What one rule would have done on the pool's past answers."""

    description: str
    collector: str
    action: str
    simulated: bool = True
    hits: list[tuple[int, datetime]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.hits)


@dataclass
class _PoolData:
    assignments: list[Assignment]
    answers: list[Answer]
    tasks: dict[int, Task]
    default_overlap: int
    captchas: list[tuple[int, datetime, bool]] = field(default_factory=list)


def _load(session: Session, pool_id: int, default_overlap: int) -> _PoolData:
    assignments = list(
        session.exec(
            select(Assignment).where(Assignment.pool_id == pool_id).order_by(Assignment.id)
        )
    )
    answers = list(
        session.exec(select(Answer).where(Answer.pool_id == pool_id).order_by(Answer.id))
    )
    tasks = {t.id: t for t in session.exec(select(Task).where(Task.pool_id == pool_id))}
    captchas = session.exec(
        select(CaptchaChallenge.labeler_id, CaptchaChallenge.answered_at, CaptchaChallenge.solved)
        .where(CaptchaChallenge.pool_id == pool_id, CaptchaChallenge.solved.is_not(None))
        .order_by(CaptchaChallenge.id)
    ).all()
    return _PoolData(assignments, answers, tasks, default_overlap, list(captchas))


def _window(items: list, history: int | None) -> list:
    return items[-history:] if history else items


def _submit_events(data: _PoolData, labeler_id: int, statuses=DONE_STATUSES) -> list[Assignment]:
    done = [
        a
        for a in data.assignments
        if a.labeler_id == labeler_id and a.status in statuses and a.submitted_at
    ]
    return sorted(done, key=lambda a: (a.submitted_at, a.id))


def _majority_items(data: _PoolData, threshold: int) -> dict[int, list[tuple]]:
    """Labeler → [(completed_at, answered_at, correct)] over general tasks with a majority."""
    status = {a.id: a.status for a in data.assignments}
    by_task: dict[int, list[Answer]] = defaultdict(list)
    for answer in data.answers:
        task = data.tasks.get(answer.task_id)
        if (
            task
            and task.kind == TaskKind.GENERAL
            and status.get(answer.assignment_id) in COUNTED_STATUSES
        ):
            by_task[answer.task_id].append(answer)
    out: dict[int, list[tuple]] = defaultdict(list)
    for task_id, answers in by_task.items():
        need = data.tasks[task_id].overlap or data.default_overlap
        answers.sort(key=lambda a: (a.created_at, a.id))
        if len(answers) < need:
            continue
        first = answers[:need]
        majority = majority_value([a.value for a in first], threshold)
        if majority is None:
            continue
        completed_at = first[-1].created_at
        for answer in first:
            out[answer.labeler_id].append(
                (completed_at, answer.created_at, answer.value == majority)
            )
    return out


def _first_hit(config: QualityConfig, rule: Rule, data: _PoolData, labeler_id: int, cache: dict):
    params = config.collector_config.parameters
    history = config.collector_config.history_size
    kind = config.collector_config.type.value
    if kind == "MAJORITY_VOTE":
        key = ("mv", int(params["answer_threshold"]))
        if key not in cache:
            cache[key] = _majority_items(data, int(params["answer_threshold"]))
        items = sorted(cache[key].get(labeler_id, []))
        for completed_at, _, _ in items:
            known = sorted((i for i in items if i[0] <= completed_at), key=lambda i: i[1])
            figures = rate_figures([c for _, _, c in _window(known, history)])
            if conditions_hold(rule, figures):
                return completed_at
        return None
    if kind == "ACCEPTANCE_RATE":
        reviewed = sorted(
            (
                a
                for a in data.assignments
                if a.labeler_id == labeler_id
                and a.reviewed_at
                and a.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED)
            ),
            key=lambda a: (a.reviewed_at, a.id),
        )
        for i, assignment in enumerate(reviewed):
            window = _window(reviewed[: i + 1], history)
            accepted = sum(1 for a in window if a.status == AssignmentStatus.ACCEPTED)
            rate = 100.0 * accepted / len(window)
            figures = {
                "total_assignments_count": len(window),
                "accepted_assignments_rate": rate,
                "rejected_assignments_rate": 100.0 - rate,
            }
            if conditions_hold(rule, figures):
                return assignment.reviewed_at
        return None
    if kind == "CAPTCHA":
        mine = [(at, solved) for who, at, solved in data.captchas if who == labeler_id]
        for i, (at, _) in enumerate(mine):
            window = _window(mine[: i + 1], history)
            rate = 100.0 * sum(1 for _, solved in window if solved) / len(window)
            figures = {
                "stored_results_count": len(window),
                "success_rate": rate,
                "fail_rate": 100.0 - rate,
            }
            if conditions_hold(rule, figures):
                return at
        return None
    if kind == "SKIPPED_IN_ROW_ASSIGNMENTS":
        mine = [a for a in data.assignments if a.labeler_id == labeler_id]
        run = 0
        for assignment in mine:
            if assignment.status == AssignmentStatus.SKIPPED:
                run += 1
                if conditions_hold(rule, {"skipped_in_row_count": run}):
                    return assignment.created_at
            elif assignment.status in DONE_STATUSES:
                run = 0
        return None
    events = _submit_events(data, labeler_id)
    own_answers = sorted(
        (a for a in data.answers if a.labeler_id == labeler_id), key=lambda a: (a.created_at, a.id)
    )
    for i, event in enumerate(events):
        t = event.submitted_at
        if kind == "ASSIGNMENT_SUBMIT_TIME":
            window = _window(events[: i + 1], history)
            figures = fast_figures(
                [a.duration_seconds for a in window], float(params["fast_submit_threshold_seconds"])
            )
        elif kind == "GOLDEN_SET":
            scored = []
            for answer in own_answers:
                task = data.tasks.get(answer.task_id)
                if answer.created_at <= t and task and task.kind != TaskKind.GENERAL:
                    scored.append(
                        (
                            task.kind,
                            is_correct(
                                task.kind, task.known_answer, answer.value, answer.first_value
                            ),
                        )
                    )
            window = _window(scored, history)
            figures = {
                **rate_figures([c for _, c in window]),
                **rate_figures(
                    [c for k, c in window if k == TaskKind.CONTROL], prefix="golden_set_"
                ),
            }
        elif kind == "ANSWER_COUNT":
            figures = {
                "assignments_accepted_count": sum(
                    1 for a in events[: i + 1] if a.status in COUNTED_STATUSES
                )
            }
        elif kind == "INCOME":
            start = t - timedelta(hours=24)
            figures = {
                "income_sum_for_last_24_hours": sum(
                    a.reward_cents
                    for a in events[: i + 1]
                    if a.status in COUNTED_STATUSES and a.submitted_at > start
                )
                / 100
            }
        else:
            return None
        if conditions_hold(rule, figures):
            return t
    return None


def dry_run(
    session: Session, *, requester: User, pool_id: int, configs: list[QualityConfig]
) -> list[DryRunResult]:
    """For each rule, the labelers it would have acted on (first time) in this pool."""
    pool = overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    data = _load(session, pool.id, pool.overlap)
    labelers = sorted({a.labeler_id for a in data.assignments})
    results = []
    cache: dict = {}
    for config in configs:
        for rule in config.rules:
            result = DryRunResult(
                description=describe_rule(config, rule),
                collector=config.collector_config.type.value,
                action=rule.action.type.value,
                simulated=config.collector_config.type.value not in NOT_SIMULATED,
            )
            if result.simulated:
                for labeler_id in labelers:
                    at = _first_hit(config, rule, data, labeler_id, cache)
                    if at is not None:
                        result.hits.append((labeler_id, at))
            results.append(result)
    return results
