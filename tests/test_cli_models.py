"""``crowdlab collection import``, ``crowdlab train`` and ``crowdlab predict``."""

from __future__ import annotations

import pytest

from app.cli import main
from tests.builders.models import digit_pngs, digits_zip, quiet_torch_threads, zip_bytes
from tests.builders.users import make_requester


@pytest.fixture(autouse=True)
def _one_thread():
    quiet_torch_threads()


def test_import_train_publish_and_predict_from_the_command_line(
    tmp_path, capsys, session, requester
):
    archive = tmp_path / "digits.zip"
    archive.write_bytes(digits_zip(per_class=10).getvalue())
    assert main(["collection", "import", str(archive), "--name", "Digits"]) == 0
    out = capsys.readouterr().out
    assert "Created collection 'Digits'" in out and "30 images, 3 classes" in out
    assert "0\ttrain 8\tval 2" in out

    code = main(
        [
            "train", "--collection", "Digits", "--arch", "test_resnet", "--epochs", "3",
            "--image-size", "16", "--batch-size", "8", "--lr", "0.01", "--augmentation", "none",
            "--device", "cpu", "--publish", "digits-cli",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Training iteration 1 of 'Digits'" in captured.err
    assert "Epoch 3/3" in captured.err  # the progress lines
    assert "accuracy\t" in captured.out
    assert "class\tprecision\trecall\tf1\tAP\tsupport" in captured.out
    assert "not available offline; training from scratch" in captured.out
    assert "Published as 'digits-cli'; prediction key (shown once): pk_" in captured.out

    images = []
    for label in ("0", "2"):
        path = tmp_path / f"{label}.png"
        path.write_bytes(digit_pngs()[label][150])
        images.append(str(path))
    assert main(["predict", "--model", "digits-cli", *images]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == images
    for line in lines:
        _, label, probability = line.split("\t")
        assert label in {"0", "1", "2"} and 0 < float(probability) <= 1


def test_command_line_errors_are_clear(tmp_path, capsys, session, requester):
    archive = tmp_path / "one.zip"
    archive.write_bytes(zip_bytes({"D/a/1.png": digit_pngs()["0"][0]}).getvalue())
    assert main(["collection", "import", str(archive), "--name", "One"]) == 2
    assert "only one class" in capsys.readouterr().err
    assert main(["train", "--collection", "Nope", "--arch", "test_resnet"]) == 2
    assert "No collection named 'Nope'" in capsys.readouterr().err
    assert main(["predict", "--model", "nothing", str(archive)]) == 2
    assert "No published model named 'nothing'" in capsys.readouterr().err
    make_requester(session)
    assert main(["collection", "import", str(archive), "--name", "Two"]) == 2
    assert "Pass --owner EMAIL: there are 2 requesters." in capsys.readouterr().err


def test_export_then_predict_with_the_onnx_file_gives_the_servers_answers(
    tmp_path, capsys, session, requester
):
    from app.services.ml import trained_models
    from tests.builders.models import make_trained_model

    model = make_trained_model(session, requester)
    trained_models.publish_model(session, requester=requester, model_id=model.id, name="digits")
    onnx_file = tmp_path / "digits.onnx"
    assert main(["export", "--model", "digits", "--out", str(onnx_file)]) == 0
    assert f"Wrote {onnx_file}" in capsys.readouterr().out
    assert (tmp_path / "digits.onnx.json").is_file()

    images = []
    for label in "0123456789":
        path = tmp_path / f"{label}.png"
        path.write_bytes(digit_pngs()[label][160])
        images.append(str(path))
    assert main(["predict", "--model", "digits", *images]) == 0
    server = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", "--onnx", str(onnx_file), *images]) == 0
    local = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [row[:2] for row in local] == [row[:2] for row in server]
    for (_, _, p_local), (_, _, p_server) in zip(local, server, strict=True):
        assert float(p_local) == pytest.approx(float(p_server), abs=2e-4)

    # Without the metadata and the sidecar there are no class names: a clear error.
    import onnx

    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    assert main(["predict", "--onnx", str(tmp_path / "bare.onnx"), images[0]]) == 2
    assert "names no classes" in capsys.readouterr().err
    assert main(["predict", "--onnx", str(tmp_path / "missing.onnx"), images[0]]) == 2
    assert "ONNX file not found" in capsys.readouterr().err
    assert main(["predict", "--onnx", str(onnx_file), str(tmp_path / "nope.png")]) == 1
    assert "image file not found" in capsys.readouterr().err
