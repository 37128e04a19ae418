"""Batch prediction: every image of a pool or collection → a TSV in Toloka's columns."""

from __future__ import annotations

from app.db.engine import session_scope
from app.db.models import TrainedModel
from app.errors import NotFound
from app.services.media import store as media
from app.services.ml.inference import (
    BATCH_JOB_KIND,
    TSV_HEADER,
    batch_inputs,
    batch_output_path,
    predictor_for,
    tsv_cell,
)
from workers.registry import job

CHUNK = 64


@job(BATCH_JOB_KIND)
def batch_predict(job_id: int, payload: dict, progress) -> dict:
    """Predict each stored image; tasks with no stored image are logged and skipped."""
    with session_scope(write=False) as session:
        model = session.get(TrainedModel, int(payload["model_id"]))
        if model is None:
            raise NotFound("The model was deleted.")
        predictor = predictor_for(model)
        inputs = batch_inputs(session, payload)
    out = batch_output_path(job_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    log: list[dict] = []
    written = 0
    total = len(inputs)
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(TSV_HEADER)
        for start in range(0, total, CHUNK):
            chunk = inputs[start : start + CHUNK]
            names, images = [], []
            for name, media_file in chunk:
                if media_file is None:
                    log.append({"input": name, "result": "skipped", "reason": "no stored image"})
                    continue
                names.append(name)
                images.append(media.local_path(media_file) or media.read_media(media_file))
            predictions = predictor.predict_batch(images, top_k=1) if images else []
            for name, prediction in zip(names, predictions, strict=True):
                label, probability = prediction[0]
                handle.write(f"{tsv_cell(name)}\t{tsv_cell(label)}\t{probability:.6f}\n")
                written += 1
            done = min(start + CHUNK, total)
            progress(done / max(total, 1), f"Predicted {done} of {total} images")
    tmp.replace(out)
    return {"rows": written, "skipped": len(log), "path": out.name, "log": log[:1000]}
