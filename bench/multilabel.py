"""Multilabel training on CPU: which digits are on the canvas?

Builds a multilabel set offline from scikit-learn's 8x8 digits: each canvas is a 2x2 grid
holding 2 or 3 different digits in random cells (the other cells blank), and its tags are the
digits present. The digit images are split first, so held-out canvases are made of digit
images the model never saw. Trains ``model.train.train`` with ``multilabel=True`` (sigmoid
outputs, binary cross-entropy) on CPU and prints the held-out figures: mAP, overall precision
and recall at the threshold, and per-tag precision, recall and AP.
Target: mAP >= 0.9 within 5 minutes on CPU.

    python bench/multilabel.py                 # defaults: 1200 training canvases, 300 held out
    python bench/multilabel.py --epochs 4 --train 1000    # a quick look

The last line printed is one JSON object with every figure (``map`` among them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from model.config import TrainConfig  # noqa: E402
from model.multilabel import multilabel_metrics  # noqa: E402
from model.predict import Predictor  # noqa: E402
from model.train import train  # noqa: E402

TAGS = [str(d) for d in range(10)]


def canvases(
    images: np.ndarray, labels: np.ndarray, count: int, scale: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, list[int]]]:
    """``count`` 2x2 canvases of 2-3 distinct digits, upscaled ``scale`` times."""
    by_digit = {d: np.flatnonzero(labels == d) for d in range(10)}
    out = []
    for _ in range(count):
        n = int(rng.integers(2, 4))
        digits = rng.choice(10, size=n, replace=False)
        cells = rng.choice(4, size=n, replace=False)
        canvas = np.zeros((16, 16), np.float64)
        for digit, cell in zip(digits, cells, strict=True):
            picture = images[rng.choice(by_digit[int(digit)])]
            row, col = divmod(int(cell), 2)
            canvas[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] = picture
        big = np.kron(canvas / 16.0 * 255.0, np.ones((scale, scale)))
        out.append((big.astype(np.uint8), sorted(int(d) for d in digits)))
    return out


def write(root: Path, items: list[tuple[np.ndarray, list[int]]], prefix: str) -> list:
    rows = []
    for i, (pixels, tags) in enumerate(items):
        path = root / f"{prefix}{i:05d}.png"
        Image.fromarray(pixels).convert("RGB").save(path)
        rows.append((str(path), tags))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=1200, help="training canvases")
    parser.add_argument("--val", type=int, default=300, help="held-out canvases")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--arch", default="test_resnet")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    digits = load_digits()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(digits.target))
    held = order[: len(order) // 4]  # a quarter of the digit images only ever in held-out
    seen = order[len(order) // 4 :]
    scale = max(1, args.image_size // 16)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_items = write(
            root,
            canvases(digits.images[seen], digits.target[seen], args.train, scale, rng),
            "train",
        )
        val_items = write(
            root,
            canvases(digits.images[held], digits.target[held], args.val, scale, rng),
            "val",
        )
        built = time.perf_counter()
        config = TrainConfig(
            arch=args.arch,
            epochs=args.epochs,
            batch_size=64,
            lr=1e-2,
            weight_decay=0.01,
            image_size=args.image_size,
            augmentation="none",
            pretrained=False,
            device="cpu",
            seed=args.seed,
            num_workers=0,
            multilabel=True,
            threshold=args.threshold,
        )

        def progress(event: dict) -> None:
            if event.get("phase") == "epoch_end":
                print(
                    f"epoch {event['epoch']}/{event['epochs']}  loss {event['loss']:.4f}  "
                    f"exact-set accuracy {event.get('val_accuracy') or 0:.3f}",
                    flush=True,
                )

        result = train(config, train_items, val_items, TAGS, root / "checkpoint", progress)
        trained = time.perf_counter()
        # the held-out figures again, through the predictor a deployment uses
        predictor = Predictor.from_checkpoint(result.checkpoint_dir, device="cpu")
        probabilities = predictor.predict_proba([path for path, _ in val_items])
        truth = np.zeros((len(val_items), len(TAGS)), np.int64)
        for row, (_path, tags) in enumerate(val_items):
            truth[row, tags] = 1
        metrics = multilabel_metrics(truth, probabilities, TAGS, args.threshold)
    done = time.perf_counter()

    print(f"\nheld-out canvases: {len(val_items)} (digit images never seen in training)")
    print(f"{'tag':>4} {'precision':>10} {'recall':>8} {'AP':>7} {'support':>8}")
    for row in metrics["per_class"]:
        ap = row["average_precision"]
        print(
            f"{row['class']:>4} {row['precision']:>10.3f} {row['recall']:>8.3f} "
            f"{(ap if ap is not None else float('nan')):>7.3f} {row['support']:>8}"
        )
    print(
        f"mAP {metrics['map']:.4f}  precision {metrics['precision']:.4f}  "
        f"recall {metrics['recall']:.4f} at threshold {args.threshold}  "
        f"exact-set accuracy {metrics['accuracy']:.4f}"
    )
    print(f"train {trained - built:.1f} s, total {done - started:.1f} s on CPU")
    summary = {
        "map": metrics["map"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "exact_set_accuracy": metrics["accuracy"],
        "threshold": args.threshold,
        "per_tag": {
            row["class"]: {
                "precision": row["precision"],
                "recall": row["recall"],
                "ap": row["average_precision"],
            }
            for row in metrics["per_class"]
        },
        "train_canvases": len(train_items),
        "held_out_canvases": len(val_items),
        "arch": args.arch,
        "epochs": args.epochs,
        "train_seconds": round(trained - built, 1),
        "total_seconds": round(done - started, 1),
        "target_map": 0.9,
        "target_seconds": 300,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
