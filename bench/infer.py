"""Inference speed: ``model.predict.Predictor`` versus a bare timm forward.

Both sides start from the same image file and do the whole job: decode, preprocess, forward,
softmax, top-k. The bare side uses timm's own eval transform and ``model(x)`` under
``torch.inference_mode`` with the same device and precision. Single-image latency (p50, p95)
alternates ours/bare call by call; batch throughput alternates batch by batch.
Target: ours within 1.2x of bare (latency p50 ratio <= 1.2, throughput ratio >= 1/1.2).

    python bench/infer.py                      # CPU-friendly defaults, under a minute
    python bench/infer.py --arch convnext_tiny --device cuda --batch-size 64

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import timm  # noqa: E402
import torch  # noqa: E402
from timm.data import create_transform  # noqa: E402
from timm.data import resolve_data_config as timm_data_config  # noqa: E402

from model.checkpoint import save_checkpoint  # noqa: E402
from model.device import make_runtime  # noqa: E402
from model.factory import build_model  # noqa: E402
from model.predict import Predictor  # noqa: E402


class BareTimm:
    """The baseline: timm model, timm eval transform, softmax and top-k."""

    def __init__(self, arch: str, classes: int, image_size: int, device: str,
                 state: dict[str, torch.Tensor]) -> None:  # fmt: skip
        self.runtime = make_runtime(device)
        model = timm.create_model(arch, pretrained=False, num_classes=classes)
        model.load_state_dict(state)
        self.model = self.runtime.prepare_model(model).eval()
        config = timm_data_config({"input_size": (3, image_size, image_size)}, model=model)
        self.transform = create_transform(**config, is_training=False)

    def predict_batch(self, paths: list[str], top_k: int = 5) -> list[list[tuple[int, float]]]:
        """Decode, transform, forward, softmax and top-k for a list of files."""
        batch = torch.stack([self.transform(Image.open(p).convert("RGB")) for p in paths])
        with torch.inference_mode():
            batch = self.runtime.to_device(batch)
            with self.runtime.autocast():
                logits = self.model(batch)
            probs, indices = logits.float().softmax(dim=1).topk(top_k, dim=1)
        probs, indices = probs.cpu(), indices.cpu()
        return [list(zip(i.tolist(), p.tolist(), strict=True))
                for i, p in zip(indices, probs, strict=True)]  # fmt: skip


def make_images(root: Path, count: int, size: int) -> list[str]:
    """Write ``count`` noisy JPEGs of ``size`` x ``size`` pixels (camera-like input)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        path = root / f"{i:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(str(path))
    return paths


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark and print its figures; returns the JSON summary."""
    parser = argparse.ArgumentParser(description="inference speed: Predictor vs bare timm")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224, help="network input side")
    parser.add_argument("--source-size", type=int, default=320, help="side of the JPEG files")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=30, help="single-image calls each")
    parser.add_argument("--batches", type=int, default=6, help="timed batches each")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 on a busy machine)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="crowdlab-bench-") as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        model, info = build_model(args.arch, args.classes, pretrained=False,
                                  image_size=args.image_size)  # fmt: skip
        save_checkpoint(root / "ckpt", model, arch=args.arch,
                        classes=[f"class{i}" for i in range(args.classes)],
                        data_config=info.data_config, model_kwargs=info.model_kwargs)  # fmt: skip
        ours = Predictor.from_checkpoint(root / "ckpt", device=args.device,
                                         batch_size=args.batch_size)  # fmt: skip
        bare = BareTimm(args.arch, args.classes, args.image_size, args.device, model.state_dict())
        paths = make_images(root, max(args.iterations, args.batch_size), args.source_size)
        device = str(ours.runtime.device)
        print(f"arch {args.arch}, device {device}, input {args.image_size}px from "
              f"{args.source_size}px JPEGs, batch {args.batch_size}, "
              f"torch threads {torch.get_num_threads()}")  # fmt: skip

        for _ in range(3):  # warm-up, untimed
            ours.predict(paths[0], top_k=args.top_k)
            bare.predict_batch(paths[:1], args.top_k)
        ours.predict_batch(paths[: args.batch_size])
        bare.predict_batch(paths[: args.batch_size], args.top_k)

        lat_ours: list[float] = []
        lat_bare: list[float] = []
        # Alternate which side goes first, so a load change hurts both sides alike.
        for i in range(args.iterations):
            path = paths[i % len(paths)]
            calls = [
                (lat_bare, lambda p=path: bare.predict_batch([p], args.top_k)),
                (lat_ours, lambda p=path: ours.predict(p, top_k=args.top_k)),
            ]
            for sink, call in calls if i % 2 == 0 else calls[::-1]:
                sink.append(_timed(call))
        batch = paths[: args.batch_size]
        thr_ours: list[float] = []
        thr_bare: list[float] = []
        for i in range(args.batches):
            calls = [
                (thr_bare, lambda: bare.predict_batch(batch, args.top_k)),
                (thr_ours, lambda: ours.predict_batch(batch, top_k=args.top_k)),
            ]
            for sink, call in calls if i % 2 == 0 else calls[::-1]:
                sink.append(len(batch) / _timed(call))

    def ms(values: list[float], q: float) -> float:
        return float(np.percentile(values, q) * 1000)

    p50_ratio = ms(lat_ours, 50) / ms(lat_bare, 50)
    thr_ratio = max(thr_ours) / max(thr_bare)
    met = p50_ratio <= 1.2 and thr_ratio >= 1 / 1.2
    print(f"single image  bare : p50 {ms(lat_bare, 50):7.1f} ms  p95 {ms(lat_bare, 95):7.1f} ms")
    print(f"single image  ours : p50 {ms(lat_ours, 50):7.1f} ms  p95 {ms(lat_ours, 95):7.1f} ms")
    print(f"batch of {len(batch):3d}  bare : {max(thr_bare):7.1f} img/s (best of {args.batches})")
    print(f"batch of {len(batch):3d}  ours : {max(thr_ours):7.1f} img/s (best of {args.batches})")
    print(f"latency ours/bare {p50_ratio:.3f}, throughput ours/bare {thr_ratio:.3f} "
          f"(target within 1.2x: {'met' if met else 'MISSED'})")  # fmt: skip
    summary: dict[str, object] = {
        "bench": "infer",
        "arch": args.arch,
        "device": device,
        "image_size": args.image_size,
        "source_size": args.source_size,
        "batch_size": len(batch),
        "iterations": args.iterations,
        "ours_p50_ms": round(ms(lat_ours, 50), 3),
        "ours_p95_ms": round(ms(lat_ours, 95), 3),
        "bare_p50_ms": round(ms(lat_bare, 50), 3),
        "bare_p95_ms": round(ms(lat_bare, 95), 3),
        "ours_batch_images_per_s": round(max(thr_ours), 2),
        "bare_batch_images_per_s": round(max(thr_bare), 2),
        "latency_ratio_p50": round(p50_ratio, 4),
        "throughput_ratio": round(thr_ratio, 4),
        "target_within": 1.2,
        "target_met": met,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
