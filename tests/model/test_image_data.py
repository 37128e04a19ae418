"""Image loading, transforms and the dataset."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import ExifTags, Image

from model.data import (
    BadImageError,
    DataConfig,
    ImageListDataset,
    build_transform,
    check_items,
    load_image,
)


def _png_bytes(size: tuple[int, int] = (20, 12), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=128 if mode == "L" else (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_load_image_accepts_path_bytes_and_pil(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    path.write_bytes(_png_bytes(mode="L"))
    from_path = load_image(path)
    from_str = load_image(str(path))
    from_bytes = load_image(path.read_bytes())
    from_pil = load_image(Image.open(path))
    for image in (from_path, from_str, from_bytes, from_pil):
        assert image.mode == "RGB" and image.size == (20, 12)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 10), (200, 10, 10))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: rotate 90 degrees to view
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif.tobytes())
    assert load_image(path).size == (10, 40)
    assert load_image(Image.open(path)).size == (10, 40)


def test_bad_images_raise_bad_image_error_naming_the_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(_png_bytes()[:40])
    with pytest.raises(BadImageError, match="not a readable image: .*notes.png") as err:
        load_image(text)
    assert err.value.path == str(text)
    with pytest.raises(BadImageError, match="truncated.png"):
        load_image(truncated)
    with pytest.raises(BadImageError, match="image file not found: .*missing.jpg"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(BadImageError, match="not a readable image: <5 bytes>"):
        load_image(b"hello")
    with pytest.raises(BadImageError, match="give a file path, bytes or a PIL image"):
        load_image(42)  # type: ignore[arg-type]
    assert issubclass(BadImageError, ValueError)


@pytest.mark.parametrize("augmentation", ["none", "light", "medium", "heavy"])
def test_every_augmentation_level_gives_the_model_input_shape(augmentation: str) -> None:
    image = Image.new("RGB", (50, 30), (255, 0, 0))
    transform = build_transform(DataConfig(image_size=24), train=True, augmentation=augmentation)
    assert transform(image).shape == (3, 24, 24)


def test_eval_transform_is_deterministic_and_normalised() -> None:
    config = DataConfig(image_size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    transform = build_transform(config, train=False)
    white = Image.new("RGB", (40, 20), (255, 255, 255))
    out = transform(white)
    assert torch.equal(out, transform(white))
    assert torch.allclose(out, torch.ones(3, 16, 16))  # (1 - 0.5) / 0.5
    # training with "none" is exactly the eval transform
    assert torch.equal(build_transform(config, train=True, augmentation="none")(white), out)


def test_data_config_round_trip_and_validation() -> None:
    config = DataConfig(image_size=64, interpolation="bicubic", crop_pct=0.875)
    assert DataConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="interpolation must be one of"):
        DataConfig(image_size=64, interpolation="lanczos")
    with pytest.raises(ValueError, match="augmentation must be one of"):
        build_transform(config, train=True, augmentation="wild")


def test_dataset_yields_tensor_and_label(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(_png_bytes())
    dataset = ImageListDataset([(path, 2)], build_transform(DataConfig(8), train=False))
    image, label = dataset[0]
    assert len(dataset) == 1 and label == 2 and image.shape == (3, 8, 8)


def test_check_items_names_the_bad_row() -> None:
    assert check_items([("a.png", 1)], 2, "training") == [("a.png", 1)]
    with pytest.raises(ValueError, match="training item 1: class index 5 is outside 0..2"):
        check_items([("a.png", 0), ("b.png", 5)], 3, "training")
    with pytest.raises(ValueError, match="validation item 0 must be a \\(path, class_index\\)"):
        check_items(["a.png"], 3, "validation")
    with pytest.raises(ValueError, match="class index must be an int"):
        check_items([("a.png", "cat")], 3, "training")
