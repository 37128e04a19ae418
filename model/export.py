"""Export a checkpoint to ONNX or TorchScript, and predict with an exported ONNX file.

An exported file is self-describing: the class list and the preprocessing (``DataConfig``)
travel inside it (ONNX ``metadata_props``; TorchScript ``_extra_files``) and in a JSON
sidecar beside it (``<file>.json``). The network ends in a softmax, so its output is the
probability of each class, in the order of ``classes``.

Prediction with an ONNX file (:class:`OnnxPredictor`) preprocesses exactly as
``model.predict.Predictor`` does: ``model.data.load_image`` then the eval
``build_transform`` of the checkpoint's data config. Nothing here needs a database.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.checkpoint import CheckpointError, atomic_write_bytes
from model.data import DataConfig, ImageInput, build_transform, load_image
from model.factory import load_checkpoint

FORMATS = ("onnx", "torchscript")
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
INPUT_NAME = "data"
OUTPUT_NAME = "probabilities"
OPSET = 17


class ExportError(ValueError):
    """A checkpoint cannot be exported (unknown format, broken checkpoint, exporter failure)."""


class _WithSoftmax(nn.Module):
    """The classifier followed by a softmax over the classes (multilabel: a sigmoid per tag)."""

    def __init__(self, model: nn.Module, multilabel: bool = False) -> None:
        super().__init__()
        self.model = model
        self.multilabel = multilabel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x).float()
        return logits.sigmoid() if self.multilabel else logits.softmax(dim=1)


def _metadata(info: Any, fmt: str) -> dict[str, str]:
    config = info.train_config
    return {
        "format": fmt,
        "arch": info.arch,
        "classes": json.dumps(list(info.classes)),
        "data_config": json.dumps(info.data_config.to_dict()),
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "producer": "crowdlab",
        # multilabel: the output is one sigmoid probability per tag, and tags count from
        # the threshold on
        "multilabel": json.dumps(bool(config is not None and config.multilabel)),
        "threshold": json.dumps(float(config.threshold) if config is not None else 0.5),
    }


def export_checkpoint(
    checkpoint_dir: str | os.PathLike[str], fmt: str, out_path: str | os.PathLike[str]
) -> Path:
    """Write ``checkpoint_dir`` as an ONNX or TorchScript file, with a JSON sidecar beside it.

    Args:
        checkpoint_dir: A directory written by training (``weights.pt`` + ``checkpoint.json``).
        fmt: ``onnx`` or ``torchscript``.
        out_path: The file to write (replaced atomically); the sidecar is ``<out_path>.json``.

    Returns:
        The written file.

    Raises:
        ExportError: for an unknown format, a broken checkpoint or an exporter failure.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        model, info = load_checkpoint(checkpoint_dir, device="cpu")
    except CheckpointError as exc:
        raise ExportError(str(exc)) from exc
    multilabel = bool(info.train_config is not None and info.train_config.multilabel)
    net = _WithSoftmax(model, multilabel=multilabel).eval()
    size = info.data_config.image_size
    example = torch.zeros(1, 3, size, size)
    meta = _metadata(info, fmt)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if fmt == "onnx":
                _export_onnx(net, example, buffer, meta)
            else:
                traced = torch.jit.trace(net, example)
                extra = {f"{key}.txt": value for key, value in meta.items()}
                torch.jit.save(traced, buffer, _extra_files=extra)
    except ExportError:
        raise
    except Exception as exc:  # the exporters raise many types; name the cause
        raise ExportError(f"exporting {info.arch} to {fmt} failed: {exc}") from exc
    target = Path(out_path)
    atomic_write_bytes(target, buffer.getvalue())
    sidecar = {key: json.loads(meta[key]) if key in ("classes", "data_config") else meta[key]
               for key in meta}  # fmt: skip
    atomic_write_bytes(sidecar_path(target), json.dumps(sidecar, indent=2).encode("utf-8"))
    return target


def _export_onnx(net: nn.Module, example: torch.Tensor, buffer: io.BytesIO, meta: dict) -> None:
    import onnx

    torch.onnx.export(
        net,
        (example,),
        buffer,
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
    )
    proto = onnx.load_model_from_string(buffer.getvalue())
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    buffer.seek(0)
    buffer.truncate()
    buffer.write(proto.SerializeToString())


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON sidecar of an exported file (``model.onnx`` → ``model.onnx.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


class OnnxPredictor:
    """Classify images with an exported ONNX file in onnxruntime (CPU).

    Args:
        path: The ``.onnx`` file.
        classes: Class names; by default from the file's metadata or its JSON sidecar.
        data_config: Preprocessing; by default from the metadata or the sidecar.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        classes: Sequence[str] | None = None,
        data_config: DataConfig | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"ONNX file not found: {self.path}")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ExportError(f"not a readable ONNX model: {self.path} ({exc})") from exc
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        side = sidecar_path(self.path)
        if ("classes" not in meta or "data_config" not in meta) and side.is_file():
            stored = json.loads(side.read_text(encoding="utf-8"))
            meta.setdefault("classes", json.dumps(stored.get("classes")))
            meta.setdefault("data_config", json.dumps(stored.get("data_config")))
        if classes is None:
            if "classes" not in meta:
                raise ExportError(
                    f"{self.path} names no classes: no metadata and no {side.name} beside it"
                )
            classes = json.loads(meta["classes"])
        if data_config is None:
            if "data_config" not in meta:
                raise ExportError(f"{self.path} has no preprocessing (data_config) metadata")
            data_config = DataConfig.from_dict(json.loads(meta["data_config"]))
        self.classes = [str(c) for c in classes]
        self.data_config = data_config
        self.transform = build_transform(data_config, train=False)
        self.input_name = self.session.get_inputs()[0].name
        self.softmax_included = meta.get("output", OUTPUT_NAME) == OUTPUT_NAME
        self.multilabel = json.loads(meta.get("multilabel", "false")) is True
        self.threshold = float(json.loads(meta.get("threshold", "0.5")))

    def predict_proba(self, images: Sequence[ImageInput], batch_size: int = 32) -> np.ndarray:
        """Probabilities ``(len(images), num_classes)`` in float64; rows sum to 1."""
        rows: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = torch.stack([self.transform(load_image(image)) for image in chunk]).numpy()
            out = self.session.run(None, {self.input_name: batch.astype(np.float32)})[0]
            out = out.astype(np.float64)
            if not self.softmax_included and self.multilabel:
                out = 1.0 / (1.0 + np.exp(-out))
            elif not self.softmax_included:
                out = np.exp(out - out.max(axis=1, keepdims=True))
                out /= out.sum(axis=1, keepdims=True)
            rows.append(out)
        if not rows:
            return np.zeros((0, len(self.classes)))
        return np.concatenate(rows)

    def predict(self, image: ImageInput, top_k: int | None = 5) -> list[tuple[str, float]]:
        """``(label, probability)`` pairs of one image, most probable first."""
        row = self.predict_proba([image])[0]
        k = len(self.classes) if top_k is None else max(1, min(int(top_k), len(self.classes)))
        order = np.argsort(-row, kind="stable")[:k]
        return [(self.classes[i], float(row[i])) for i in order]
