"""Collections and trained models for tests: scikit-learn digits as PNGs, tiny CPU training.

``shared_checkpoint()`` trains one tiny timm model per test process and reuses it, so the
web, API and CLI tests do not each pay for a training run.
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from sqlmodel import Session

from app.db.models import Collection, ModelStatus, TrainedModel, User
from app.db.types import utcnow

IMAGE_SIZE = 16
# The settings a test trains with: timm's tiny test ResNet on 16-pixel digits, on the CPU.
TINY_SETTINGS = {
    "arch": "test_resnet",
    "epochs": 2,
    "batch_size": 8,
    "lr": 1e-2,
    "image_size": IMAGE_SIZE,
    "augmentation": "none",
    "pretrained": False,
    "device": "cpu",
}


@lru_cache
def digit_pngs(size: int = IMAGE_SIZE) -> dict[str, list[bytes]]:
    """Every digits image as PNG bytes, by class name ("0" ... "9")."""
    from sklearn.datasets import load_digits

    data = load_digits()
    by_class: dict[str, list[bytes]] = {str(d): [] for d in range(10)}
    for pixels, target in zip(data.images, data.target, strict=True):
        grey = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L")
        buffer = io.BytesIO()
        grey.resize((size, size), Image.Resampling.BILINEAR).save(buffer, format="PNG")
        by_class[str(int(target))].append(buffer.getvalue())
    return by_class


def zip_bytes(files: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> io.BytesIO:
    """A ZIP archive of ``{path: bytes}`` (paths ending in / are folders)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = 0o120777 << 16
            archive.writestr(info, data)
    buffer.seek(0)
    return buffer


def digits_zip(
    classes: tuple[str, ...] = ("0", "1", "2"), per_class: int = 20, top: str = "Digits"
) -> io.BytesIO:
    """A class-folder ZIP (``Digits/<digit>/<n>.png``) of digits images."""
    pngs = digit_pngs()
    files = {
        f"{top}/{label}/{n:03d}.png": pngs[label][n] for label in classes for n in range(per_class)
    }
    return zip_bytes(files)


def make_collection(
    session: Session,
    requester: User,
    *,
    name: str = "Digits",
    classes: tuple[str, ...] = ("0", "1", "2"),
    per_class: int = 20,
    **options,
) -> Collection:
    """A ready collection of digits imported through the ZIP service."""
    from app.services.ml.collections import create_collection_from_zip

    return create_collection_from_zip(
        session,
        requester=requester,
        file=digits_zip(classes, per_class),
        name=name,
        **options,
    )


def quiet_torch_threads() -> None:
    """One torch thread: on a busy 2-core machine more threads spin and run 10x slower."""
    import torch

    torch.set_num_threads(1)


@lru_cache
def shared_checkpoint() -> tuple[str, dict]:
    """``(checkpoint dir, metrics)`` of one tiny model trained on 10-class digits.

    Trained once per test process (3 epochs of test_resnet on 350 16-pixel digits).
    """
    from model.config import TrainConfig
    from model.train import train
    from workers.jobs.training import threshold_curve

    quiet_torch_threads()
    root = Path(tempfile.mkdtemp(prefix="crowdlab-shared-ckpt-"))
    atexit.register(shutil.rmtree, root, True)
    pngs = digit_pngs()
    classes = [str(d) for d in range(10)]
    train_items, val_items = [], []
    for label in classes:
        for n, data in enumerate(pngs[label][:45]):
            path = root / "images" / f"{label}_{n}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            (val_items if n >= 35 else train_items).append((str(path), int(label)))
    config = TrainConfig(**{**TINY_SETTINGS, "epochs": 3, "num_workers": 0})
    result = train(config, train_items, val_items, classes, root / "checkpoint")
    metrics = {
        **result.metrics,
        "history": result.history,
        "threshold_curve": threshold_curve(result.checkpoint_dir, val_items, "cpu"),
        "device": result.device,
        "duration_seconds": result.duration_seconds,
        "train_images_per_second": result.train_images_per_second,
    }
    return str(result.checkpoint_dir), metrics


def make_trained_model(
    session: Session,
    requester: User,
    collection: Collection | None = None,
    **fields,
) -> TrainedModel:
    """A completed model row pointing at the shared digits checkpoint."""
    checkpoint_dir, metrics = shared_checkpoint()
    if collection is None:
        collection = make_collection(session, requester, name=f"Digits for models {utcnow()}")
    fields.setdefault("iteration", 1)
    values = {
        "owner_id": requester.id,
        "collection_id": collection.id,
        "name": f"{collection.name} · iteration {fields['iteration']}",
        "arch": TINY_SETTINGS["arch"],
        "status": ModelStatus.COMPLETED,
        "config": {**TINY_SETTINGS, "epochs": 3},
        "metrics": metrics,
        "classes": [str(d) for d in range(10)],
        "checkpoint_dir": checkpoint_dir,
        "message": "pretrained weights for test_resnet not available offline; "
        "training from scratch",
        "finished_at": utcnow(),
        **fields,
    }
    model = TrainedModel(**values)
    session.add(model)
    session.commit()
    session.refresh(model)
    return model


def make_aggregated_run(session: Session, requester: User):
    """A pool of 6 stored-image tasks (3 "0", 3 "1") and 2 control tasks, aggregated.

    Confidences: 0.9, 0.95, 0.5 for "0"; 0.8, 0.99, 0.6 for "1".
    """
    from app.db.models import AggregatedLabel, AggregationRun
    from app.services.media.store import store_image
    from tests.builders.pools import add_tasks, make_pool, make_project

    project = make_project(session, requester, options=("0", "1"))
    pool = make_pool(session, requester, project)
    general = add_tasks(session, pool, general=6, control=("0", "1"))
    pngs = digit_pngs()
    for n, task in enumerate(general):
        label = "0" if n < 3 else "1"
        task.media_id = store_image(session, owner=requester, data=pngs[label][n], name="x").id
        session.add(task)
    run = AggregationRun(pool_id=pool.id, owner_id=requester.id, method="mv", status="succeeded")
    session.add(run)
    session.flush()
    confidences = [0.9, 0.95, 0.5, 0.8, 0.99, 0.6]
    for n, task in enumerate(general[:6]):
        if task.kind != "general":
            continue
        session.add(
            AggregatedLabel(
                run_id=run.id,
                task_id=task.id,
                value="0" if n < 3 else "1",
                confidence=confidences[n],
                answer_count=3,
            )
        )
    session.commit()
    return run, pool
