"""Retraining a pool's model from what its crowd has labelled (issue: the model in the loop).

A pool with ``model_retrain_every = N`` gets a new model every N newly confident tasks
(the pool's own notion: a general task whose aggregated confidence reached the pool's
minimum). The periodic maintenance queues the retraining job (``queue_due_retraining``);
the job gathers a collection (``build_retrain_collection``: the labels of the confident tasks
that the people's own top answer agrees with, the control tasks with their known answers
and, when the pool names one, the images of its base collection) and starts a training on
it, with the settings of the pool's
current model, else the defaults for the collection's size on this machine. When that
training completes (``adopt_retrained_model``, called by the training job) the pool's model
becomes the new one: its answers and confusion counts start again and the prediction job
answers the tasks anew. A failed training leaves the pool's model as it was.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import (
    Collection,
    CollectionItem,
    Job,
    JobStatus,
    ModelStatus,
    Pool,
    PoolStatus,
    Task,
    TaskKind,
    TrainedModel,
    User,
)
from app.errors import ValidationFailed
from app.services.jobs.records import submit_job
from app.services.ml.collections import DEFAULT_VAL_FRACTION, _add_items, _claim_name
from app.services.ml.train_defaults import cuda_available, suggest_settings
from app.services.ml.trained_models import start_training
from app.services.projects.pool_model import (
    RETRAIN_JOB_KIND,
    confident_labels,
    forget_model_answers,
    option_values,
    queue_model_predictions,
)


def confident_count(session: Session, *, pool: Pool) -> int:
    """How many general tasks the pool's answers (and preliminary answers) made confident."""
    if pool.min_confidence is None:
        return 0
    return session.exec(
        select(func.count())
        .select_from(Task)
        .where(
            Task.pool_id == pool.id,
            Task.kind == TaskKind.GENERAL,
            Task.votes.is_not(None),
            Task.confidence >= pool.min_confidence,
        )
    ).one()


def _retraining_in_flight(session: Session, pool: Pool) -> bool:
    if pool.model_retrain_model_id is not None:
        return True
    jobs = session.exec(
        select(Job).where(
            Job.kind == RETRAIN_JOB_KIND,
            Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
        )
    ).all()
    return any((job.payload or {}).get("pool_id") == pool.id for job in jobs)


def queue_due_retraining(session: Session) -> list[Job]:
    """Queue the retraining of every open pool that has N more confident tasks than at its
    last retraining, and none under way (commits)."""
    pools = session.exec(
        select(Pool).where(Pool.model_retrain_every.is_not(None), Pool.status == PoolStatus.OPEN)
    ).all()
    queued = []
    for pool in pools:
        count = confident_count(session, pool=pool)
        if count < pool.model_retrain_seen + pool.model_retrain_every:
            continue
        if _retraining_in_flight(session, pool):
            continue
        pool.model_retrain_seen = count
        session.add(pool)
        queued.append(
            submit_job(
                session,
                kind=RETRAIN_JOB_KIND,
                owner=session.get(User, pool.owner_id),
                payload={"pool_id": pool.id, "confident": count},
            )
        )
    return queued


def _collection_name(session: Session, *, owner_id: int, pool: Pool) -> str:
    taken = session.exec(
        select(func.count())
        .select_from(Collection)
        .where(Collection.owner_id == owner_id, Collection.name.startswith(f"Pool {pool.id} ·"))
    ).one()
    return f"Pool {pool.id} · retraining {taken + 1}"


def build_retrain_collection(session: Session, *, pool: Pool) -> Collection:
    """A collection of the pool's confident labels, its control tasks' known answers and its
    base collection's images of the project's classes (commits)."""
    owner = session.get(User, pool.owner_id)
    values = set(option_values(session, pool=pool))
    rows = [
        (media_id, label, task_id, conf)
        for task_id, media_id, label, conf in confident_labels(session, pool=pool)
        if media_id is not None
    ]
    confident = len(rows)
    controls = session.exec(
        select(Task.media_id, Task.known_answer, Task.id).where(
            Task.pool_id == pool.id,
            Task.kind == TaskKind.CONTROL,
            Task.known_answer.is_not(None),
            Task.media_id.is_not(None),
        )
    ).all()
    rows += [(media_id, known, task_id, 1.0) for media_id, known, task_id in controls]
    base = (
        session.get(Collection, pool.model_retrain_collection_id)
        if pool.model_retrain_collection_id is not None
        else None
    )
    if base is not None and base.owner_id == pool.owner_id:
        items = session.exec(
            select(CollectionItem.media_id, CollectionItem.label).where(
                CollectionItem.collection_id == base.id, CollectionItem.label.is_not(None)
            )
        ).all()
        rows += [(media_id, label, None, 1.0) for media_id, label in items if label in values]
    rows = [row for row in rows if row[1] in values]
    if len({label for _, label, _, _ in rows}) < 2:
        raise ValidationFailed(
            "Retraining needs labelled images of at least two classes: the pool has too few "
            "confident tasks or control tasks with stored images yet.",
            errors={"model_retrain_every": "Too few labelled images yet."},
        )
    name = _collection_name(session, owner_id=owner.id, pool=pool)
    _claim_name(session, requester=owner, name=name)
    collection = Collection(
        owner_id=owner.id,
        name=name,
        description=f"Labels of pool {pool.id} for retraining its model.",
        source="pool",
        status="ready",
        val_fraction=DEFAULT_VAL_FRACTION,
        seed=0,
        extra={
            "pool_id": pool.id,
            "confident": confident,
            "control": len(controls),
            "base_collection_id": base.id if base is not None else None,
        },
    )
    session.add(collection)
    session.flush()
    _add_items(session, collection, rows)
    session.commit()
    return collection


def _settings(session: Session, *, pool: Pool, images: int) -> dict:
    current = session.get(TrainedModel, pool.model_id) if pool.model_id is not None else None
    if current is not None and current.config:
        return {k: v for k, v in current.config.items() if k != "multilabel"}
    return suggest_settings(images=images, cuda=cuda_available())


def start_retraining(session: Session, *, pool_id: int) -> TrainedModel | None:
    """The retraining job's work: gather the collection and start its training (commits);
    None when the pool no longer retrains. A retried job (its worker died after starting
    the training) returns that training instead of starting another."""
    pool = session.get(Pool, pool_id)
    if pool is None or pool.model_retrain_every is None:
        return None
    if pool.model_retrain_model_id is not None:
        return session.get(TrainedModel, pool.model_retrain_model_id)
    collection = build_retrain_collection(session, pool=pool)
    owner = session.get(User, pool.owner_id)
    images = int((collection.extra or {}).get("image_count", 0))
    settings = _settings(session, pool=pool, images=images)
    model = start_training(
        session, requester=owner, collection_id=collection.id, settings=settings, dispatch=False
    )
    pool = session.get(Pool, pool_id)
    pool.model_retrain_model_id = model.id
    session.add(pool)
    session.commit()
    from workers.queue import dispatch

    dispatch(model.job_id)
    return model


def adopt_retrained_model(session: Session, *, model_id: int) -> list[int]:
    """A training finished: each pool that was retraining into it now uses it (commits);
    returns those pools' ids. A failed or cancelled one only ends the retraining."""
    model = session.get(TrainedModel, model_id)
    pools = session.exec(select(Pool).where(Pool.model_retrain_model_id == model_id)).all()
    adopted = []
    for pool in pools:
        pool.model_retrain_model_id = None
        if model is not None and model.status == ModelStatus.COMPLETED:
            pool.model_id = model.id
            forget_model_answers(session, pool=pool)
            adopted.append(pool.id)
        session.add(pool)
    session.commit()
    for pool in pools:
        if pool.id in adopted:
            queue_model_predictions(session, pool=pool)
    return adopted


def model_loop_state(session: Session, *, pool: Pool) -> dict | None:
    """What the pool page shows of its model: the confusion counts per class (rows: the
    truth, columns: the model's answer) with each class's accuracy, and the retraining
    (every N, confident tasks now, the next at, the model training now). None without a
    model or retraining."""
    if pool.model_id is None and pool.model_retrain_every is None:
        return None
    values = option_values(session, pool=pool)
    counts = pool.model_confusion or {}
    rows = []
    for truth in values:
        row = counts.get(truth) or {}
        total = sum(int(row.get(v, 0)) for v in values)
        rows.append(
            {
                "truth": truth,
                "cells": [int(row.get(v, 0)) for v in values],
                "total": total,
                "accuracy": int(row.get(truth, 0)) / total if total else None,
            }
        )
    training = (
        session.get(TrainedModel, pool.model_retrain_model_id)
        if pool.model_retrain_model_id is not None
        else None
    )
    confident = confident_count(session, pool=pool)
    return {
        "model": session.get(TrainedModel, pool.model_id) if pool.model_id else None,
        "values": values,
        "rows": rows,
        "largest": max((c for r in rows for c in r["cells"]), default=0),
        "counted": sum(r["total"] for r in rows),
        "every": pool.model_retrain_every,
        "confident": confident,
        "next_at": (
            pool.model_retrain_seen + pool.model_retrain_every
            if pool.model_retrain_every is not None
            else None
        ),
        "training": training,
        "base": (
            session.get(Collection, pool.model_retrain_collection_id)
            if pool.model_retrain_collection_id is not None
            else None
        ),
    }
