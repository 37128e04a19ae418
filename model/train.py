"""The training loop: image items in, a checkpoint directory and metrics out.

Progress goes through a callback and cancellation through a predicate, so this module never
sees a database or a job queue. Under ``torchrun`` (``WORLD_SIZE > 1``) the same function runs
DDP: a ``DistributedSampler`` shards the data, and only rank 0 validates and writes files.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from model.checkpoint import save_checkpoint, unwrap_model
from model.config import TrainConfig
from model.data import DataConfig, ImageListDataset, build_transform, check_items
from model.device import Runtime, make_runtime, seed_everything, seed_worker
from model.distributed import DistContext, any_rank_true, barrier, init_process_group
from model.evaluate import predict_loader
from model.factory import build_model
from model.metrics import compute_metrics
from model.multilabel import (
    MultiLabelDataset,
    check_multilabel_items,
    multilabel_metrics,
    predict_multilabel_loader,
)
from model.optim import make_optimizer, make_scheduler
from model.progress import ProgressCallback, ProgressReporter
from model.resume import fingerprint, load_resume_state, save_resume_state

logger = logging.getLogger(__name__)

StopPredicate = Callable[[], bool]
ItemsInput = Sequence[tuple[str | os.PathLike[str], int]]

DDP_STOP_CHECK_EVERY = 20


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        status: ``"completed"`` or ``"cancelled"`` (a cancelled run writes no checkpoint).
        checkpoint_dir: The checkpoint directory, or ``None`` (cancelled, or not rank 0).
        metrics: Validation metrics of the final model (``compute_metrics``; empty without
            a validation set).
        history: One dict per finished epoch: ``epoch``, ``train_loss``, ``val_loss``,
            ``val_accuracy``, ``lr``, ``seconds``.
        epochs_completed: Finished epochs.
        duration_seconds: Wall time of the whole call.
        train_images_per_second: Training throughput (data loading included, validation
            excluded), summed over DDP ranks.
        device: Device used, e.g. ``cpu`` or ``cuda:0``.
        model_info: ``ModelInfo.to_dict()``: arch, parameters, data config, weights source.
        messages: Readable notes, e.g. the from-scratch fallback of pretrained weights.
    """

    status: str
    checkpoint_dir: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_completed: int = 0
    duration_seconds: float = 0.0
    train_images_per_second: float = 0.0
    device: str = "cpu"
    model_info: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def cancelled(self) -> bool:
        """True when ``should_stop`` ended the run early."""
        return self.status == "cancelled"


def train(
    config: TrainConfig,
    train_items: ItemsInput,
    val_items: ItemsInput,
    classes: Sequence[str],
    out_dir: str | os.PathLike[str],
    on_progress: ProgressCallback | None = None,
    should_stop: StopPredicate | None = None,
    resume_dir: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train a classifier and write its checkpoint to ``out_dir``.

    Args:
        config: Training settings.
        train_items: ``(image path, class index)`` pairs to learn from.
        val_items: Pairs to validate on after each epoch (may be empty).
        classes: Class names; indices in the items refer to this list.
        out_dir: Checkpoint directory to write (see ``model.checkpoint``).
        on_progress: Called with ``phase``, ``epoch``, ``epochs``, ``step``, ``steps``,
            ``loss``, ``val_accuracy``, ``eta_seconds`` and ``fraction`` (0..1), at most
            about twice a second plus at every epoch end.
        should_stop: Polled every step; when it returns True the run stops and returns a
            result with ``status="cancelled"`` without writing a checkpoint.
        resume_dir: A work directory for the resume state (``model.resume``), written after
            every epoch. When it holds the state of an interrupted run of the same config,
            classes and data, training continues after that run's last finished epoch.

    Raises:
        ValueError: for an invalid config, fewer than two classes, no or malformed items.
        model.data.BadImageError: when an image cannot be read (naming the file).
    """
    started = time.perf_counter()
    config.validate()
    class_names = [str(c) for c in classes]
    if len(class_names) < 2:
        raise ValueError(f"training needs at least 2 classes, got {len(class_names)}")
    check = check_multilabel_items if config.multilabel else check_items
    train_list = check(train_items, len(class_names), "training")
    val_list = check(val_items, len(class_names), "validation")
    if len(train_list) < 2:
        raise ValueError(f"training needs at least 2 images, got {len(train_list)}")

    ctx = DistContext.from_env()
    runtime = make_runtime(
        config.device,
        amp=config.amp,
        compile=config.compile,
        num_workers=config.num_workers,
        local_rank=ctx.local_rank if ctx.enabled else None,
    )
    owns_group = init_process_group(ctx, runtime.device.type)
    try:
        return _run(
            config,
            train_list,
            val_list,
            class_names,
            Path(out_dir),
            ctx,
            runtime,
            on_progress if ctx.is_main else None,
            should_stop,
            started,
            Path(resume_dir) if resume_dir is not None else None,
        )
    finally:
        if owns_group:
            torch.distributed.destroy_process_group()


def _run(
    config: TrainConfig,
    train_list: list[tuple[str, int]],
    val_list: list[tuple[str, int]],
    classes: list[str],
    out_dir: Path,
    ctx: DistContext,
    runtime: Runtime,
    on_progress: ProgressCallback | None,
    should_stop: StopPredicate | None,
    started: float,
    resume_dir: Path | None = None,
) -> TrainResult:
    generator = seed_everything(config.seed)
    model, info = build_model(
        config.arch,
        len(classes),
        pretrained=config.pretrained,
        pretrained_path=config.pretrained_path,
        image_size=config.image_size,
    )
    messages = [info.message]
    model = runtime.prepare_model(model)
    train_loader = _train_loader(
        config, train_list, info.data_config, runtime, ctx, generator, len(classes)
    )
    val_loader = (
        _eval_loader(config, val_list, info.data_config, runtime, len(classes))
        if val_list
        else None
    )

    steps = len(train_loader)
    optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, total_steps=steps * config.epochs)
    history: list[dict[str, Any]] = []
    first_epoch = 1
    resume_key = fingerprint(config.to_dict(), classes, len(train_list))
    saved = load_resume_state(resume_dir, key=resume_key) if resume_dir is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        history = list(saved["history"])
        first_epoch = int(saved["epoch"]) + 1
        messages.append(f"resumed after epoch {saved['epoch']} of {config.epochs}")
    net: nn.Module = model
    if ctx.enabled:
        ids = [runtime.device.index] if runtime.is_cuda else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    net = runtime.maybe_compile(net)
    # multilabel: one sigmoid per tag, binary cross-entropy summed over tags
    criterion = nn.BCEWithLogitsLoss() if config.multilabel else nn.CrossEntropyLoss()
    predict = predict_multilabel_loader if config.multilabel else predict_loader
    progress = ProgressReporter(on_progress, config.epochs, steps)
    progress.done_before = (first_epoch - 1) * steps
    last_eval: tuple[Any, Any] | None = None
    train_images, train_seconds = 0, 0.0
    result = TrainResult(
        status="completed",
        checkpoint_dir=None,
        device=str(runtime.device),
        model_info=info.to_dict(),
        messages=messages,
    )

    for epoch in range(first_epoch, config.epochs + 1):
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        epoch_start = time.perf_counter()
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
        seen = 0
        for step, (images, targets) in enumerate(train_loader, start=1):
            if _stop_requested(should_stop, ctx, step, runtime.device):
                progress.report(epoch, step - 1, _mean(loss_sum, seen), phase="cancelled")
                result.status = "cancelled"
                break
            images = runtime.to_device(images)
            targets = targets.to(runtime.device, non_blocking=runtime.pin_memory)
            with runtime.autocast():
                logits = net(images)
            loss = criterion(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach().double() * images.shape[0]
            seen += images.shape[0]
            if progress.due(step):
                progress.report(epoch, step, _mean(loss_sum, seen))
        if result.cancelled:
            break
        train_loss = _mean(loss_sum, seen)  # .item() synchronises, so the timing is honest
        epoch_train_seconds = time.perf_counter() - epoch_start
        train_images += seen * ctx.world_size
        train_seconds += epoch_train_seconds

        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": None,
            "val_accuracy": None,
            "lr": optimizer.param_groups[0]["lr"],
        }
        if val_loader is not None and ctx.is_main:
            y_true, y_prob, val_loss = predict(model, val_loader, runtime, len(classes))
            last_eval = (y_true, y_prob)
            record["val_loss"] = val_loss
            if config.multilabel:  # the share of images whose whole tag set is right
                hits = ((y_prob >= config.threshold) == y_true.astype(bool)).all(axis=1)
                record["val_accuracy"] = float(hits.mean())
            else:
                record["val_accuracy"] = float((y_prob.argmax(axis=1) == y_true).mean())
            progress.val_accuracy = record["val_accuracy"]
        barrier(ctx)
        record["seconds"] = round(time.perf_counter() - epoch_start, 3)
        history.append(record)
        progress.report(epoch, steps, train_loss, phase="epoch_end")
        if resume_dir is not None and ctx.is_main:
            save_resume_state(resume_dir, key=resume_key, epoch=epoch, model=model,
                              optimizer=optimizer, scheduler=scheduler, history=history,
                              generator=generator)  # fmt: skip

    result.history = history
    result.epochs_completed = len(history)
    result.train_images_per_second = train_images / train_seconds if train_seconds else 0.0
    if result.cancelled:
        result.messages.append(f"cancelled after {len(history)} of {config.epochs} epochs")
        result.duration_seconds = time.perf_counter() - started
        return result

    if last_eval is None and val_loader is not None and ctx.is_main and history:
        last_eval = predict(model, val_loader, runtime, len(classes))[:2]  # resumed done
    if last_eval is not None and config.multilabel:
        result.metrics = multilabel_metrics(last_eval[0], last_eval[1], classes, config.threshold)
        result.metrics["loss"] = history[-1]["val_loss"]
    elif last_eval is not None:
        result.metrics = compute_metrics(last_eval[0], last_eval[1], classes)
        result.metrics["loss"] = history[-1]["val_loss"]
    if ctx.is_main:
        result.checkpoint_dir = str(_write_outputs(out_dir, model, info, config, classes, result))
    barrier(ctx)
    result.duration_seconds = time.perf_counter() - started
    progress.report(
        config.epochs, steps, history[-1]["train_loss"] if history else None, phase="done"
    )
    return result


def _write_outputs(
    out_dir: Path,
    model: nn.Module,
    info: Any,
    config: TrainConfig,
    classes: list[str],
    result: TrainResult,
) -> Path:
    from model.plots import plot_confusion_matrix, plot_training_curves

    plot_training_curves(result.history, out_dir / "training_curves.png")
    if result.metrics:
        plot_confusion_matrix(
            result.metrics["confusion_matrix"], classes, out_dir / "confusion_matrix.png"
        )
    else:
        (out_dir / "confusion_matrix.png").unlink(missing_ok=True)  # from an earlier run
    extra = {
        "pretrained": {
            "loaded": info.pretrained_loaded,
            "source": info.pretrained_source,
            "message": info.message,
        },
        "num_params": info.num_params,
        "train_images_per_second": result.train_images_per_second,
        "device": result.device,
    }
    return save_checkpoint(
        out_dir,
        unwrap_model(model),
        arch=info.arch,
        classes=classes,
        data_config=info.data_config,
        train_config=config,
        metrics=result.metrics,
        history=result.history,
        model_kwargs=info.model_kwargs,
        extra=extra,
    )


def _train_loader(
    config: TrainConfig,
    items: list[tuple[str, int]],
    data_config: DataConfig,
    runtime: Runtime,
    ctx: DistContext,
    generator: torch.Generator,
    num_classes: int = 0,
) -> DataLoader[Any]:
    transform = build_transform(data_config, True, config.augmentation)
    dataset: Any = (
        MultiLabelDataset(items, num_classes, transform)
        if config.multilabel
        else ImageListDataset(items, transform)
    )
    sampler: DistributedSampler[Any] | None = None
    if ctx.enabled:
        sampler = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed
        )
    per_rank = math.ceil(len(dataset) / ctx.world_size)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=runtime.num_workers,
        pin_memory=runtime.pin_memory,
        drop_last=per_rank > config.batch_size,  # no size-1 batch to upset BatchNorm
        persistent_workers=runtime.num_workers > 0,
        worker_init_fn=seed_worker,
        generator=generator,
    )


def _eval_loader(
    config: TrainConfig,
    items: list[tuple[str, int]],
    data_config: DataConfig,
    runtime: Runtime,
    num_classes: int = 0,
) -> DataLoader[Any]:
    transform = build_transform(data_config, train=False)
    dataset: Any = (
        MultiLabelDataset(items, num_classes, transform)
        if config.multilabel
        else ImageListDataset(items, transform)
    )
    return DataLoader(
        dataset,
        batch_size=config.batch_size * 2,
        shuffle=False,
        num_workers=runtime.num_workers,
        pin_memory=runtime.pin_memory,
        persistent_workers=runtime.num_workers > 0,
    )


def _stop_requested(
    should_stop: StopPredicate | None, ctx: DistContext, step: int, device: torch.device
) -> bool:
    if should_stop is None:
        return False  # the same on every rank, so no collective is skipped unevenly
    if not ctx.enabled:
        return bool(should_stop())
    if step % DDP_STOP_CHECK_EVERY != 1:
        return False
    return any_rank_true(ctx, bool(should_stop()), device)


def _mean(total: torch.Tensor, count: int) -> float | None:
    return float(total.item()) / count if count else None
