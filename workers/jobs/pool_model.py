"""A pool's model answers its tasks: control tasks first (its weight), then general tasks."""

from __future__ import annotations

from app.db.engine import session_scope
from app.db.models import Pool, TaskKind, TrainedModel
from app.services.media import store as media
from app.services.ml.inference import predictor_for
from app.services.projects.pool_model import (
    MODEL_JOB_KIND,
    option_values,
    record_control_tally,
    record_predictions,
    tasks_to_predict,
)
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
    right = 0
    for start in range(0, len(controls), CHUNK):
        chunk = controls[start : start + CHUNK]
        right += sum(
            label == known for (_, _, known, *_), (label, _) in zip(
                chunk, _predict(predictor, chunk), strict=True
            )
        )  # fmt: skip
        progress(min(start + CHUNK, len(controls)) / total, "Checking the model on control tasks")
    with session_scope() as session:
        weight = record_control_tally(session, pool_id=pool.id, answered=len(controls), right=right)
        session.commit()
    for start in range(0, len(general), CHUNK):
        chunk = general[start : start + CHUNK]
        predicted = _predict(predictor, chunk)
        with session_scope() as session:
            record_predictions(
                session,
                values=values,
                weight=weight,
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
    return {"controls": len(controls), "controls_right": right, "predicted": len(general)}
