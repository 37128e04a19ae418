"""A pool's model answers its tasks (control tasks first: what they measure is its weight),
and retrains from the pool's confident labels every N newly confident tasks."""

from __future__ import annotations

from sqlmodel import select

from app.db.engine import session_scope
from app.db.models import Pool, PoolStatus, TaskKind, TrainedModel
from app.services.media import store as media
from app.services.ml.inference import predictor_for
from app.services.ml.pool_retraining import (
    confident_count,
    queue_due_retraining,
    start_retraining,
)
from app.services.projects.pool_model import (
    MODEL_JOB_KIND,
    RETRAIN_JOB_KIND,
    option_values,
    record_control_answers,
    record_predictions,
    refresh_model_confusion,
    tasks_to_predict,
)
from workers.periodic import periodic_step
from workers.registry import job

CHUNK = 64


def _predict(predictor, rows) -> list[tuple[str, float]]:
    images = [media.local_path(m) or media.read_media(m) for *_, m in rows]
    return [prediction[0] for prediction in predictor.predict_batch(images, top_k=1)]


@job(MODEL_JOB_KIND)
def predict_pool_tasks(job_id: int, payload: dict, progress) -> dict:
    """Idempotent: controls are predicted again (the tally is recomputed), general tasks
    only once per model; each chunk is written in a short transaction of its own."""
    with session_scope(write=False) as session:
        pool = session.get(Pool, int(payload["pool_id"]))
        model = session.get(TrainedModel, int(payload["model_id"]))
        if pool is None or model is None or pool.model_id != model.id:
            return {"skipped": "the pool's model changed"}
        predictor = predictor_for(model)
        values = option_values(session, pool=pool)
        rows = tasks_to_predict(session, pool=pool)
    controls = [row for row in rows if row[1] == TaskKind.CONTROL]
    general = [row for row in rows if row[1] == TaskKind.GENERAL]
    total = max(len(rows), 1)
    answered = []
    for start in range(0, len(controls), CHUNK):
        chunk = controls[start : start + CHUNK]
        answered += [
            (task_id, known, label, probability)
            for (task_id, _, known, *_), (label, probability) in zip(
                chunk, _predict(predictor, chunk), strict=True
            )
        ]  # fmt: skip
        progress(min(start + CHUNK, len(controls)) / total, "Checking the model on control tasks")
    with session_scope() as session:
        voter = record_control_answers(session, pool_id=pool.id, answers=answered)
        session.commit()
    for start in range(0, len(general), CHUNK):
        chunk = general[start : start + CHUNK]
        predicted = _predict(predictor, chunk)
        with session_scope() as session:
            record_predictions(
                session,
                values=values,
                model=voter,
                predictions=[
                    (task_id, baseline, label, probability)
                    for (task_id, _, _, baseline, _), (label, probability) in zip(
                        chunk, predicted, strict=True
                    )
                ],
            )
            session.commit()
        done = len(controls) + min(start + CHUNK, len(general))
        progress(done / total, f"The model answered {done} of {len(rows)} tasks")
    with session_scope() as session:  # what the people made confident meanwhile counts too
        refresh_model_confusion(session, pool=session.get(Pool, pool.id))
        session.commit()
    right = sum(label == known for _, known, label, _ in answered)
    return {"controls": len(controls), "controls_right": right, "predicted": len(general)}


@job(RETRAIN_JOB_KIND)
def retrain_pool_model(job_id: int, payload: dict, progress) -> dict:
    """Gather the pool's confident labels into a collection and start training on it."""
    progress(0.1, "Gathering the pool's confident labels", force=True)
    with session_scope() as session:
        model = start_retraining(session, pool_id=int(payload["pool_id"]))
        if model is None:
            return {"skipped": "the pool no longer retrains its model"}
        return {"model_id": model.id, "collection_id": model.collection_id}


_CONFIDENT_SEEN: dict[int, int] = {}  # pool id -> confident tasks at its last confusion count


@periodic_step("pool_model_learning")
def learn_pool_models() -> int:
    """Recount the confusion of each open pool's model whose confident tasks changed, and
    queue the retraining of pools with enough newly confident tasks."""
    with session_scope() as session:
        for pool in session.exec(
            select(Pool).where(Pool.model_id.is_not(None), Pool.status == PoolStatus.OPEN)
        ).all():
            count = confident_count(session, pool=pool)
            if _CONFIDENT_SEEN.get(pool.id) != count:
                refresh_model_confusion(session, pool=pool)
                session.commit()
                _CONFIDENT_SEEN[pool.id] = count
        return len(queue_due_retraining(session))
