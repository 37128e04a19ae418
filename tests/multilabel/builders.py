"""Multilabel test data: small colour pictures whose tags are the colours present."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from tests.builders.models import zip_bytes

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 220)}
SPOTS = {"red": (0, 0), "green": (0, 8), "blue": (8, 4)}  # top-left corner of each patch


def colour_png(tags, seed: int) -> bytes:
    """A 16x16 picture: grey noise, with an 8x8 patch for each tag at its own place."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(128, 12, (16, 16, 3))
    for tag in tags:
        row, col = SPOTS[tag]
        pixels[row : row + 8, col : col + 8] = COLOURS[tag]
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def tag_sets(count: int, seed: int = 0) -> list[list[str]]:
    """``count`` tag sets: every colour present with probability 1/2."""
    rng = np.random.default_rng(seed)
    return [[t for t in COLOURS if rng.random() < 0.5] for _ in range(count)]


def manifest_zip(count: int = 60, *, kind: str = "csv", seed: int = 0) -> io.BytesIO:
    """A ZIP of ``count`` pictures in ``images/`` and a manifest naming each one's tags."""
    files = {}
    rows = []
    for i, tags in enumerate(tag_sets(count, seed)):
        files[f"images/{i:03d}.png"] = colour_png(tags, seed * 1000 + i)
        rows.append((f"images/{i:03d}.png", tags))
    if kind == "csv":
        lines = ["image,tags"] + [f"{path},{';'.join(tags)}" for path, tags in rows]
        files["manifest.csv"] = ("\n".join(lines) + "\n").encode()
    else:
        files["manifest.json"] = json.dumps(dict(rows)).encode()
    return zip_bytes(files)
