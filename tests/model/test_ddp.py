"""DDP: two CPU processes (Gloo) train through ``python -m model.ddp_train``, as torchrun would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from model.checkpoint import SIDECAR_FILE, WEIGHTS_FILE
from model.config import TrainConfig
from model.ddp_train import read_items


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_process_ddp_run_writes_one_checkpoint_from_rank_zero(
    digits, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    config_file = tmp_path / "cfg.json"
    config_file.write_text(tiny_config(epochs=1).to_json())
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps({"classes": digits.classes, "train": digits.train[:128],
                                      "val": digits.val[:64]}))  # fmt: skip
    out = tmp_path / "ckpt"
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "-m", "model.ddp_train", "--config", str(config_file),
                   "--items", str(items_file), "--out", str(out)]  # fmt: skip
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))  # fmt: skip
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    summary = json.loads(outputs[0].strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["checkpoint_dir"] == str(out)
    # 128 images over 2 ranks with batch 32: 2 steps per rank
    assert "step 2/2" in outputs[0]
    assert "{" not in outputs[1]  # only rank 0 reports and prints the result
    assert (out / WEIGHTS_FILE).is_file() and (out / SIDECAR_FILE).is_file()
    assert json.loads((out / SIDECAR_FILE).read_text())["metrics"]["num_samples"] == 64


def test_items_file_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps({"classes": ["a", "b"], "train": [["x/1.png", 1]]}))
    classes, train, val = read_items(items_file)
    assert classes == ["a", "b"] and val == []
    assert train == [(str(tmp_path / "x/1.png"), 1)]
