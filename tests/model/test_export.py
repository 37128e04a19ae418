"""Export to ONNX and TorchScript: the exported file agrees with the server's predictor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.data import load_image
from model.export import ExportError, OnnxPredictor, export_checkpoint, sidecar_path
from model.predict import Predictor

AGREEMENT = 0.995


def test_onnx_export_gives_the_servers_top1_on_the_held_out_digits(trained, tmp_path) -> None:
    onnx_file = export_checkpoint(trained.checkpoint_dir, "onnx", tmp_path / "model.onnx")
    held_out = [path for path, _ in trained.digits.val]  # 597 images training never saw
    server = Predictor.from_checkpoint(trained.checkpoint_dir, device="cpu")
    exported = OnnxPredictor(onnx_file)

    expected = server.predict_proba(held_out)
    got = exported.predict_proba(held_out)

    agreement = float((expected.argmax(axis=1) == got.argmax(axis=1)).mean())
    print(f"ONNX top-1 agreement with the server: {agreement:.4f} on {len(held_out)} images")
    assert agreement >= AGREEMENT
    assert np.abs(expected - got).max() < 1e-3
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert exported.classes == trained.digits.classes


def test_onnx_classes_come_from_metadata_or_the_sidecar(trained, tmp_path) -> None:
    import onnx

    onnx_file = export_checkpoint(trained.checkpoint_dir, "onnx", tmp_path / "model.onnx")
    side = json.loads(sidecar_path(onnx_file).read_text())
    assert side["classes"] == trained.digits.classes
    assert side["data_config"]["image_size"] == 32
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert json.loads(meta["classes"]) == trained.digits.classes

    # Without the metadata, the sidecar beside the file names the classes.
    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ExportError, match="names no classes"):
        OnnxPredictor(bare)
    sidecar_path(bare).write_text(json.dumps(side))
    path = trained.digits.val[0][0]
    assert (
        OnnxPredictor(bare).predict(path, top_k=1)[0][0]
        == OnnxPredictor(onnx_file).predict(path, top_k=1)[0][0]
    )


def test_torchscript_export_loads_without_timm_and_agrees(trained, tmp_path) -> None:
    file = export_checkpoint(trained.checkpoint_dir, "torchscript", tmp_path / "m.pt")
    extra = {"classes.txt": "", "data_config.txt": ""}
    scripted = torch.jit.load(str(file), _extra_files=extra)
    assert json.loads(extra["classes.txt"]) == trained.digits.classes
    server = Predictor.from_checkpoint(trained.checkpoint_dir, device="cpu")
    paths = [path for path, _ in trained.digits.val[:64]]
    batch = torch.stack([server.transform(load_image(p)) for p in paths])
    with torch.no_grad():
        got = scripted(batch).numpy()
    assert np.abs(got - server.predict_proba(paths)).max() < 1e-4


def test_unknown_format_and_missing_checkpoint_are_refused(trained, tmp_path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'coreml'"):
        export_checkpoint(trained.checkpoint_dir, "coreml", tmp_path / "x")
    with pytest.raises(ExportError, match="not found"):
        export_checkpoint(tmp_path / "nowhere", "onnx", tmp_path / "x.onnx")


@pytest.mark.parametrize("arch", ["test_efficientnet", "test_convnext", "test_vit"])
def test_every_kind_of_curated_network_exports_to_onnx(arch, tmp_path) -> None:
    """Convolutions with same-padding, LayerNorm blocks and attention all export faithfully."""
    from PIL import Image

    from model.checkpoint import save_checkpoint
    from model.factory import build_model

    model, info = build_model(arch, 4, pretrained=False, image_size=32)
    save_checkpoint(tmp_path / "ck", model, arch=info.arch, classes=list("abcd"),
                    data_config=info.data_config, model_kwargs=info.model_kwargs)  # fmt: skip
    onnx_file = export_checkpoint(tmp_path / "ck", "onnx", tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(6)]
    expected = Predictor.from_checkpoint(tmp_path / "ck", device="cpu").predict_proba(images)
    got = OnnxPredictor(onnx_file).predict_proba(images)
    assert np.abs(expected - got).max() < 1e-4
