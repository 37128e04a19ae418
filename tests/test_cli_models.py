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
