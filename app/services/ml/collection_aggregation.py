"""Collections from an aggregation run: confident labels (and control tasks) as a collection."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session, select

from app.db.models import AggregatedLabel, AggregationRun, Collection, Task, TaskKind, User
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.ml.collections import (
    DEFAULT_VAL_FRACTION,
    _add_items,
    _check_settings,
    _claim_name,
)


def list_aggregation_runs(session: Session, *, requester: User) -> list[AggregationRun]:
    """The requester's finished aggregation runs, newest first."""
    query = (
        select(AggregationRun)
        .where(
            AggregationRun.owner_id == requester.id,
            AggregationRun.status == "succeeded",
        )
        .order_by(AggregationRun.id.desc())
    )
    return list(session.exec(query))


def _get_run(session: Session, *, requester: User, run_id: int) -> AggregationRun:
    run = session.get(AggregationRun, run_id)
    if run is None or run.owner_id != requester.id:
        raise NotFound("No such aggregation run.")
    return run


def _aggregation_rows(
    session: Session, run: AggregationRun, *, min_confidence: float, include_control: bool
) -> tuple[list[tuple[int, str, int | None, float | None]], dict]:
    rows: list[tuple[int, str, int | None, float | None]] = []
    stats = {"below_threshold": 0, "without_image": 0, "unanswered": 0, "control": 0}
    labels = session.exec(
        select(AggregatedLabel, Task)
        .join(Task, Task.id == AggregatedLabel.task_id)
        .where(AggregatedLabel.run_id == run.id)
        .order_by(AggregatedLabel.task_id)
    ).all()
    for label, task in labels:
        if label.value is None:
            stats["unanswered"] += 1
        elif (label.confidence or 0.0) < min_confidence:
            stats["below_threshold"] += 1
        elif task.media_id is None:
            stats["without_image"] += 1
        else:
            rows.append((task.media_id, label.value, task.id, label.confidence))
    if include_control:
        controls = session.exec(
            select(Task)
            .where(
                Task.pool_id == run.pool_id,
                Task.kind == TaskKind.CONTROL,
                Task.known_answer.is_not(None),
            )
            .order_by(Task.id)
        ).all()
        for task in controls:
            if task.media_id is None:
                stats["without_image"] += 1
            else:
                rows.append((task.media_id, task.known_answer, task.id, 1.0))
                stats["control"] += 1
    return rows, stats


def _check_confidence(min_confidence: float) -> float:
    if not 0.0 <= min_confidence <= 1.0:
        raise ValidationFailed(
            "The minimum confidence must be between 0 and 1.",
            errors={"min_confidence": "Between 0 and 1."},
        )
    return float(min_confidence)


def preview_aggregation_collection(
    session: Session,
    *,
    requester: User,
    run_id: int,
    min_confidence: float,
    include_control: bool = False,
) -> dict:
    """How many images per class would pass the threshold, and what was left out."""
    min_confidence = _check_confidence(min_confidence)
    run = _get_run(session, requester=requester, run_id=run_id)
    rows, stats = _aggregation_rows(
        session, run, min_confidence=min_confidence, include_control=include_control
    )
    per_class: dict[str, int] = defaultdict(int)
    for _, label, _, _ in rows:
        per_class[label] += 1
    return {"run": run, "classes": dict(sorted(per_class.items())), "total": len(rows), **stats}


def create_collection_from_aggregation(
    session: Session,
    *,
    requester: User,
    run_id: int,
    name: str,
    min_confidence: float,
    include_control: bool = False,
    description: str = "",
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
) -> Collection:
    """Create a collection of the run's labels at or above ``min_confidence``.

    Control tasks of the pool can be added with their known answers. Tasks whose image is
    not stored (a URL only) are left out and counted in ``extra["without_image"]``.
    """
    name, val_fraction, seed = _check_settings(name, val_fraction, seed)
    min_confidence = _check_confidence(min_confidence)
    run = _get_run(session, requester=requester, run_id=run_id)
    if run.status != "succeeded":
        raise Conflict("This aggregation run has not finished successfully.")
    rows, stats = _aggregation_rows(
        session, run, min_confidence=min_confidence, include_control=include_control
    )
    if len({label for _, label, _, _ in rows}) < 2:
        raise ValidationFailed(
            "Fewer than two classes pass this confidence threshold; lower it or add control tasks.",
            errors={"min_confidence": "Fewer than two classes pass."},
        )
    _claim_name(session, requester=requester, name=name)
    collection = Collection(
        owner_id=requester.id,
        name=name,
        description=description.strip()[:2000],
        source="aggregation",
        status="ready",
        aggregation_run_id=run.id,
        min_confidence=min_confidence,
        val_fraction=val_fraction,
        seed=seed,
        extra={**stats, "include_control": include_control},
    )
    session.add(collection)
    session.flush()
    _add_items(session, collection, rows)
    session.commit()
    return collection
