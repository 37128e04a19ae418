"""Command-line training, single process or ``torchrun`` DDP.

Examples::

    python -m model.ddp_train --config cfg.json --items items.json --out runs/m1
    torchrun --nproc_per_node=4 -m model.ddp_train --config cfg.json --items items.json \\
        --out runs/m1

``cfg.json`` is a ``TrainConfig`` JSON object. ``items.json`` holds
``{"classes": [...], "train": [[path, class_index], ...], "val": [[path, class_index], ...]}``.
Rank 0 prints progress lines and, as its last line, the result as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from model.config import TrainConfig
from model.distributed import DistContext


def read_items(path: str | Path) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, int]]]:
    """Read an items file: ``{"classes": [...], "train": [...], "val": [...]}``.

    Relative image paths are taken relative to the items file.

    Raises:
        ValueError: when the file is not shaped as described.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        classes = [str(c) for c in data["classes"]]
        base = file.parent
        train = [(str(base / p), int(c)) for p, c in data["train"]]
        val = [(str(base / p), int(c)) for p, c in data.get("val", [])]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad items file {file}: {exc}") from exc
    return classes, train, val


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train, print the result; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="TrainConfig JSON file")
    parser.add_argument("--items", required=True, help="items JSON file")
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    args = parser.parse_args(argv)

    from model.train import train

    config = TrainConfig.from_json(Path(args.config).read_text(encoding="utf-8"))
    classes, train_items, val_items = read_items(args.items)
    ctx = DistContext.from_env()

    def show(event: dict[str, Any]) -> None:
        acc = event["val_accuracy"]
        loss = event["loss"]
        print(
            f"[{event['phase']}] epoch {event['epoch']}/{event['epochs']} "
            f"step {event['step']}/{event['steps']} "
            f"loss {'-' if loss is None else f'{loss:.4f}'} "
            f"val_acc {'-' if acc is None else f'{acc:.3f}'} "
            f"eta {event['eta_seconds']:.0f}s",
            flush=True,
        )

    result = train(config, train_items, val_items, classes, args.out, on_progress=show)
    if ctx.is_main:
        summary = asdict(result)
        summary["metrics"] = {
            k: v for k, v in result.metrics.items() if k not in ("per_class", "confusion_matrix")
        }
        print(json.dumps(summary, default=str))
    return 0 if result.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
