"""Training throughput: our ``model.train.train`` loop versus a bare timm loop.

Both loops train the same architecture from scratch on the same synthetic PNG files, with the
same transform, batch size, DataLoader workers, device and precision (bf16 autocast and
channels_last on CUDA, float32 on CPU). Images per second count the training epochs only
(data loading included; model building, validation and checkpoint writing excluded). Runs
alternate (bare, ours, ours, bare, bare, ours, ...) so that a noisy machine hurts both alike;
the best repeat of each is compared, and the median of adjacent pairs is printed too.
Target: ours >= 85% of bare.

    python bench/train.py                      # CPU-friendly defaults, under a minute
    python bench/train.py --arch resnet50 --device cuda --image-size 224 --batch-size 128 \\
        --images 2048 --epochs 2

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import timm  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from model.config import TrainConfig  # noqa: E402
from model.data import ImageListDataset, build_transform, resolve_data_config  # noqa: E402
from model.device import make_runtime  # noqa: E402
from model.train import train  # noqa: E402


def make_images(root: Path, count: int, size: int, classes: int) -> list[tuple[str, int]]:
    """Write ``count`` PNGs whose colour depends on the class, with noise."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        label = i % classes
        base = np.array([label * 255 // max(1, classes - 1), 128, 255 - label * 20], np.float64)
        pixels = base + rng.normal(0, 40, (size, size, 3))
        path = root / f"{i:05d}_{label}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        items.append((str(path), label))
    return items


def bare_loop(args: argparse.Namespace, items: list[tuple[str, int]], classes: int) -> float:
    """A plain timm training loop; returns images per second over the epochs."""
    torch.manual_seed(0)
    runtime = make_runtime(args.device, num_workers=args.workers)
    model = timm.create_model(args.arch, pretrained=False, num_classes=classes)
    data_config = resolve_data_config(model.pretrained_cfg, args.image_size)
    model = runtime.prepare_model(model).train()
    loader = DataLoader(
        ImageListDataset(items, build_transform(data_config, train=False)),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=len(items) > args.batch_size,
        num_workers=runtime.num_workers,
        pin_memory=runtime.pin_memory,
        persistent_workers=runtime.num_workers > 0,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss()
    seen, seconds = 0, 0.0
    for _ in range(args.epochs):
        start = time.perf_counter()
        for images, targets in loader:
            images = runtime.to_device(images)
            targets = targets.to(runtime.device, non_blocking=True)
            with runtime.autocast():
                logits = model(images)
            loss = criterion(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += images.shape[0]
        loss.item()  # wait for the device before stopping the clock
        seconds += time.perf_counter() - start
    return seen / seconds


def our_loop(args: argparse.Namespace, items: list[tuple[str, int]], classes: int,
             out: Path) -> float:  # fmt: skip
    """``model.train.train`` with progress reporting on; returns its images per second."""
    config = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                         lr=1e-3, weight_decay=0.05, image_size=args.image_size,
                         augmentation="none", pretrained=False, device=args.device,
                         num_workers=args.workers, amp=True, compile=False)  # fmt: skip
    events: list[dict[str, object]] = []
    result = train(config, items, [], [f"c{i}" for i in range(classes)], out,
                   on_progress=events.append, should_stop=lambda: False)  # fmt: skip
    return result.train_images_per_second


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark and print its figures; returns the JSON summary."""
    parser = argparse.ArgumentParser(description="training images/s: ours vs bare timm")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=192, help="synthetic training images")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each loop")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 on a busy machine)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    ours: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory(prefix="crowdlab-bench-") as tmp:
        root = Path(tmp)
        items = make_images(root, args.images, args.image_size, args.classes)
        device = str(make_runtime(args.device).device)
        print(f"arch {args.arch}, device {device}, batch {args.batch_size}, "
              f"{args.images} images of {args.image_size}px, {args.epochs} epoch(s), "
              f"torch threads {torch.get_num_threads()}")  # fmt: skip
        bare_loop(args, items[: args.batch_size * 2], args.classes)  # warm-up, untimed
        for repeat in range(args.repeats):  # alternate who goes first: load changes hit both
            if repeat % 2 == 0:
                bare.append(bare_loop(args, items, args.classes))
            ours.append(our_loop(args, items, args.classes, root / f"run{repeat}"))
            if repeat % 2 == 1:
                bare.append(bare_loop(args, items, args.classes))
            print(f"  repeat {repeat + 1}: bare {bare[-1]:8.1f} img/s   ours {ours[-1]:8.1f} img/s")

    ratio = max(ours) / max(bare)
    print(f"bare timm loop : best {max(bare):8.1f} img/s  median {statistics.median(bare):8.1f}")
    print(f"model.train    : best {max(ours):8.1f} img/s  median {statistics.median(ours):8.1f}")
    paired = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
    verdict = "met" if ratio >= 0.85 else "MISSED"
    print(
        f"ours / bare    : {ratio:.3f} best vs best, {paired:.3f} median of adjacent pairs "
        f"(target >= 0.85: {verdict})"
    )
    summary: dict[str, object] = {
        "bench": "train",
        "arch": args.arch,
        "device": device,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "images": args.images,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "bare_images_per_s": [round(v, 2) for v in bare],
        "ours_images_per_s": [round(v, 2) for v in ours],
        "bare_best": round(max(bare), 2),
        "ours_best": round(max(ours), 2),
        "ratio_best": round(ratio, 4),
        "ratio_median": round(statistics.median(ours) / statistics.median(bare), 4),
        "ratio_paired_median": round(paired, 4),
        "target_ratio": 0.85,
        "target_met": ratio >= 0.85,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
