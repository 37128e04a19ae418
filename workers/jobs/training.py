"""The training job: a collection's images in, a checkpoint and its metrics out."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from app.db.engine import session_scope
from app.db.models import Job, ModelStatus, TrainedModel
from app.db.types import utcnow
from app.errors import NotFound
from app.services.jobs.records import JobCancelled, LeaseLost, job_work_dir
from app.services.media import store as media
from app.services.ml.collections import collection_items
from app.services.ml.multilabel import is_multilabel, item_tags
from app.services.ml.pool_retraining import adopt_retrained_model
from app.services.ml.trained_models import FIGURES, TRAIN_JOB_KIND, models_dir_for
from app.services.ml.validation import write_validation_predictions
from workers.registry import job, on_failure

CANCEL_CHECK_SECONDS = 1.0
THRESHOLDS = [round(i * 0.05, 2) for i in range(21)]


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def progress_message(event: dict) -> str:
    """One line for the progress bar: epoch, step, loss, validation accuracy, time left."""
    parts = [f"Epoch {event['epoch']}/{event['epochs']}", f"step {event['step']}/{event['steps']}"]
    if event.get("loss") is not None:
        parts.append(f"loss {event['loss']:.4f}")
    if event.get("val_accuracy") is not None:
        parts.append(f"val accuracy {event['val_accuracy'] * 100:.1f}%")
    if event.get("phase") == "done":
        parts.append("writing the checkpoint")
    elif event.get("eta_seconds") is not None:
        parts.append(_eta(event["eta_seconds"]))
    return " · ".join(parts)


class _CancelWatch:
    """``should_stop`` for the training loop: reads ``job.cancel_requested`` once a second,
    and stops the run at once (``LeaseLost``) when the heartbeat found the lease gone."""

    def __init__(self, job_id: int, progress=None) -> None:
        self.job_id = job_id
        self.progress = progress
        self.last = 0.0
        self.cancelled = False

    def __call__(self) -> bool:
        if self.progress is not None:
            self.progress.check_lease()
        now = time.monotonic()
        if self.cancelled or now - self.last < CANCEL_CHECK_SECONDS:
            return self.cancelled
        self.last = now
        with session_scope(write=False) as session:
            row = session.get(Job, self.job_id)
            self.cancelled = bool(row is None or row.cancel_requested)
        return self.cancelled


def _gather(model_id: int, scratch: Path) -> tuple[dict, list[str], list, list, list[int]]:
    """Mark the model training and list its items as local files (copied when remote)."""
    with session_scope() as session:
        row = session.get(TrainedModel, model_id)
        if row is None:
            raise NotFound("The model was deleted before training started.")
        from app.db.models import Collection

        collection = session.get(Collection, row.collection_id)
        if collection is None:
            raise NotFound("The collection was deleted before training started.")
        classes = list(row.classes or collection.classes)
        index = {name: i for i, name in enumerate(classes)}
        multilabel = is_multilabel(collection)
        train_items, val_items, val_ids = [], [], []
        for item, media_file in collection_items(session, collection=collection):
            if multilabel:  # the tag indices of the image (unknown tags left out)
                target_of = [index[t] for t in item_tags(item) if t in index]
            elif item.label not in index:
                continue
            else:
                target_of = index[item.label]
            path = media.local_path(media_file)
            if path is None:
                path = str(scratch / media_file.storage_key.replace("/", "_"))
                Path(path).write_bytes(media.read_media(media_file))
            target = val_items if item.split == "val" else train_items
            target.append((path, target_of))
            if item.split == "val":
                val_ids.append(item.id)
        config = dict(row.config)
        if multilabel:
            config["multilabel"] = True
        row.status = ModelStatus.TRAINING
        row.started_at = utcnow()
        row.message = ""
        session.add(row)
        session.commit()
    return config, classes, train_items, val_items, val_ids


def threshold_curve(
    checkpoint_dir: str, val_items: list, device: str, item_ids: list[int] | None = None
) -> list[dict]:
    """Precision/recall (overall and per class) at thresholds 0, 0.05, ..., 1 on validation.

    With ``item_ids`` (the collection items of ``val_items``), each image's probabilities
    are kept beside the checkpoint (Custom Vision's per-image performance reads them).
    """
    if not val_items:
        return []
    from model.metrics import threshold_metrics
    from model.predict import Predictor

    predictor = Predictor.from_checkpoint(checkpoint_dir, device=device, batch_size=64)
    probs = predictor.predict_proba([path for path, _ in val_items])
    if item_ids is not None:
        write_validation_predictions(checkpoint_dir, item_ids, probs)
    truth = [label for _, label in val_items]
    if predictor.multilabel:
        return _multilabel_curve(truth, probs)
    curve = []
    for threshold in THRESHOLDS:
        figures = threshold_metrics(truth, probs, threshold)
        curve.append(
            {
                "threshold": threshold,
                "precision": figures["precision"],
                "recall": figures["recall"],
                "coverage": figures["coverage"],
                "per_class_precision": [float(v) for v in figures["per_class_precision"]],
                "per_class_recall": [float(v) for v in figures["per_class_recall"]],
            }
        )
    return curve


def _multilabel_curve(truth: list[list[int]], probs) -> list[dict]:
    """The multilabel figures (per tag, and over every image-tag decision) per threshold."""
    import numpy as np

    from model.multilabel import at_threshold

    hot = np.zeros(probs.shape, dtype=np.int64)
    for row, tags in enumerate(truth):
        hot[row, list(tags)] = 1
    curve = []
    for threshold in THRESHOLDS:
        figures = at_threshold(hot, probs, threshold)
        curve.append(
            {
                "threshold": threshold,
                "precision": figures["precision"],
                "recall": figures["recall"],
                "coverage": float((probs >= threshold).any(axis=1).mean()) if len(hot) else 0.0,
                "per_class_precision": figures["per_tag_precision"],
                "per_class_recall": figures["per_tag_recall"],
            }
        )
    return curve


@job(TRAIN_JOB_KIND)
def train_model_job(job_id: int, payload: dict, progress) -> dict:
    """Train the model row's config on its collection and store checkpoint and metrics."""
    from model.config import TrainConfig
    from model.plots import plot_training_curves
    from model.resume import resumable_epoch
    from model.train import train

    model_id = int(payload["model_id"])
    with session_scope() as session:
        row = session.get(TrainedModel, model_id)
        if row is not None and row.status == ModelStatus.COMPLETED:
            return {"model_id": model_id, "accuracy": row.metrics.get("accuracy")}
        out_dir = models_dir_for(row) if row is not None else None
    scratch = Path(tempfile.mkdtemp(prefix=f"crowdlab-train-{model_id}-"))
    try:
        config_values, classes, train_items, val_items, val_ids = _gather(model_id, scratch)
        config = TrainConfig.from_dict(config_values)
        # Epoch checkpoints live in the job's work dir: a retry after the worker died
        # continues after the last finished epoch (the dir goes when the job ends).
        resume_dir = job_work_dir(job_id) / "train"
        done = resumable_epoch(resume_dir)
        if done:
            progress(0.95 * done / config.epochs,
                     f"Resuming after epoch {done} of {config.epochs}", force=True)  # fmt: skip
        else:
            progress(0.0, f"Preparing {len(train_items)} training images", force=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)

        def on_progress(event: dict) -> None:
            forced = event.get("phase") in ("epoch_end", "done")
            progress(0.95 * float(event["fraction"]), progress_message(event), force=forced)

        watch = _CancelWatch(job_id, progress)
        result = train(config, train_items, val_items, classes, out_dir, on_progress, watch,
                       resume_dir=resume_dir)  # fmt: skip
        if result.cancelled:
            raise JobCancelled(
                f"Cancelled by its owner after {result.epochs_completed} of {config.epochs} epochs."
            )
        progress(0.96, "Computing precision and recall per threshold", force=True)
        curve = threshold_curve(result.checkpoint_dir, val_items, config.device, val_ids)
        if not (out_dir / FIGURES["training_curves"]).is_file():
            plot_training_curves(result.history, out_dir / FIGURES["training_curves"])
    except LeaseLost:
        raise  # another worker owns the job (and out_dir) now: touch nothing
    except BaseException:
        if out_dir is not None and out_dir.exists():
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    metrics = {
        **result.metrics,
        "history": result.history,
        "threshold_curve": curve,
        "duration_seconds": round(result.duration_seconds, 2),
        "train_images_per_second": round(result.train_images_per_second, 1),
        "device": result.device,
        "train_count": len(train_items),
        "val_count": len(val_items),
        "num_params": result.model_info.get("num_params"),
    }
    with session_scope() as session:
        row = session.get(TrainedModel, model_id)
        row.status = ModelStatus.COMPLETED
        row.checkpoint_dir = str(out_dir)
        row.metrics = metrics
        row.pretrained_used = bool(result.model_info.get("pretrained_loaded"))
        row.message = "; ".join(m for m in result.messages if m)[:2000]
        row.finished_at = utcnow()
        session.add(row)
        session.commit()
        adopt_retrained_model(session, model_id=model_id)  # a pool retraining into it
    accuracy = metrics.get("accuracy")
    return {"model_id": model_id, "accuracy": accuracy, "epochs": result.epochs_completed}


@on_failure(TRAIN_JOB_KIND)
def _training_failed(payload: dict, message: str, cancelled: bool) -> None:
    with session_scope() as session:
        row = session.get(TrainedModel, int(payload["model_id"]))
        if row is None or row.status == ModelStatus.COMPLETED:
            return
        row.status = ModelStatus.CANCELLED if cancelled else ModelStatus.FAILED
        row.message = message[:2000]
        row.finished_at = utcnow()
        session.add(row)
        session.commit()
        adopt_retrained_model(session, model_id=row.id)  # ends a pool's retraining
