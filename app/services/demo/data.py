"""Demo images: scikit-learn's bundled handwritten digits as small PNGs (no download)."""

from __future__ import annotations

import hashlib
import io
import zipfile

CLASSES = tuple(str(d) for d in range(10))


def digit_images(*, size: int, per_class: int, offset: int = 0) -> dict[str, list[bytes]]:
    """Distinct scikit-learn digits as ``size``×``size`` greyscale PNGs, by class."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    out: dict[str, list[bytes]] = {label: [] for label in CLASSES}
    seen: set[str] = set()
    skipped: dict[str, int] = dict.fromkeys(CLASSES, 0)
    for pixels, target in zip(data.images, data.target, strict=True):
        label = str(int(target))
        if len(out[label]) >= per_class:
            continue
        grey = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L")
        buffer = io.BytesIO()
        grey.resize((size, size), Image.Resampling.BICUBIC).save(buffer, format="PNG")
        png = buffer.getvalue()
        digest = hashlib.sha256(png).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        if skipped[label] < offset:
            skipped[label] += 1
            continue
        out[label].append(png)
    return out


def zip_of_classes(images: dict[str, list[bytes]]) -> bytes:
    """A ZIP of class folders (``digits/<label>/<label>-NNN.png``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for label, pngs in images.items():
            for n, png in enumerate(pngs):
                archive.writestr(f"digits/{label}/{label}-{n:03d}.png", png)
    return buffer.getvalue()
