"""The real ``crowdlab`` command on a data directory that does not exist yet.

Each command runs as its own process with only ``CROWDLAB_DATA_DIR`` set, as the README's
CLI table shows it: the directory is made, the database migrated, and with no requester
yet the commands act for a local owner.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.builders.models import digit_pngs, digits_zip

REPO = Path(__file__).resolve().parent.parent
CROWDLAB = Path(sys.executable).parent / "crowdlab"


def _crowdlab(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CROWDLAB_") and key != "PYTHONPATH"
    }
    env.update(
        CROWDLAB_DATA_DIR=str(data_dir),
        PYTHONPATH=str(REPO),  # this checkout's ``app``, not an installed copy
        OMP_NUM_THREADS="1",
    )
    return subprocess.run(
        [str(CROWDLAB), *args],
        env=env,
        cwd=next(p for p in data_dir.parents if p.exists()),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_import_train_and_predict_on_a_fresh_data_directory(tmp_path):
    data_dir = tmp_path / "new" / "dir"  # neither folder exists
    archive = tmp_path / "digits.zip"
    archive.write_bytes(digits_zip(per_class=6).getvalue())

    imported = _crowdlab(data_dir, "collection", "import", str(archive), "--name", "n")
    assert imported.returncode == 0, imported.stderr
    assert "Traceback" not in imported.stderr
    assert "Created collection 'n'" in imported.stdout
    assert "18 images, 3 classes" in imported.stdout
    assert "created owner@crowdlab.localhost" in imported.stderr
    assert (data_dir / "crowdlab.db").is_file()

    trained = _crowdlab(
        data_dir, "train", "--collection", "n", "--arch", "test_resnet", "--epochs", "1",
        "--image-size", "16", "--batch-size", "8", "--device", "cpu", "--publish", "digits",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "Published as 'digits'" in trained.stdout
    assert "created owner@" not in trained.stderr  # the same owner as the import's

    image = tmp_path / "two.png"
    image.write_bytes(digit_pngs()["2"][100])
    predicted = _crowdlab(data_dir, "predict", "--model", "digits", str(image))
    assert predicted.returncode == 0, predicted.stderr
    path, label, probability = predicted.stdout.strip().split("\t")
    assert path == str(image) and label in {"0", "1", "2"} and 0 < float(probability) <= 1


def test_a_fresh_instance_answers_every_read_command_without_a_traceback(tmp_path):
    data_dir = tmp_path / "fresh"
    missing = _crowdlab(data_dir, "predict", "--model", "nothing", str(tmp_path / "x.png"))
    assert missing.returncode == 2
    assert "No published model named 'nothing'" in missing.stderr
    assert "Traceback" not in missing.stderr

    fresh = tmp_path / "fresh2"
    listed = _crowdlab(fresh, "token", "list", "--email", "nobody@example.com")
    assert listed.returncode == 2
    assert "No active account" in listed.stderr and "Traceback" not in listed.stderr
    assert (fresh / "crowdlab.db").is_file()
