"""Model export over the JSON API: ONNX and TorchScript files, downloadable with a token."""

from __future__ import annotations

import json

import onnx
import pytest

from model.export import OnnxPredictor
from model.predict import Predictor
from tests.builders.models import digit_pngs, make_trained_model, quiet_torch_threads
from tests.builders.users import make_requester, make_token


@pytest.fixture(autouse=True)
def _one_thread():
    quiet_torch_threads()


def test_requester_exports_onnx_and_downloads_it_with_the_api_token(
    client, session, requester, tmp_path
):
    model = make_trained_model(session, requester)
    auth = {"Authorization": f"OAuth {make_token(session, requester)}"}

    started = client.post(
        f"/api/v1/models/{model.id}/exports", json={"format": "onnx"}, headers=auth
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] in ("exporting", "done")
    again = client.post(f"/api/v1/models/{model.id}/exports", json={"format": "onnx"}, headers=auth)
    assert again.json()["job_id"] == started.json()["job_id"]  # the same export, not a second

    listed = client.get(f"/api/v1/models/{model.id}/exports", headers=auth).json()
    assert [(e["format"], e["status"]) for e in listed] == [("onnx", "done")]
    download = client.get(listed[0]["download_url"], headers=auth)
    assert download.status_code == 200
    assert f'filename="model-{model.id}.onnx"' in download.headers["content-disposition"]
    file = tmp_path / "model.onnx"
    file.write_bytes(download.content)
    meta = {p.key: p.value for p in onnx.load(str(file)).metadata_props}
    assert json.loads(meta["classes"]) == [str(d) for d in range(10)]

    image = digit_pngs()["3"][100]
    server = Predictor.from_checkpoint(model.checkpoint_dir, device="cpu").predict(image, 1)
    assert OnnxPredictor(file).predict(image, top_k=1)[0][0] == server[0][0]


def test_torchscript_export_and_refusals(client, session, requester):
    model = make_trained_model(session, requester)
    auth = {"Authorization": f"OAuth {make_token(session, requester)}"}
    done = client.post(
        f"/api/v1/models/{model.id}/exports", json={"format": "TorchScript"}, headers=auth
    )
    assert done.status_code == 202 and done.json()["format"] == "torchscript"
    file = client.get(f"/api/v1/models/{model.id}/exports/torchscript/file", headers=auth)
    assert file.status_code == 200 and len(file.content) > 1000

    unknown = client.post(
        f"/api/v1/models/{model.id}/exports", json={"format": "coreml"}, headers=auth
    )
    assert unknown.status_code in (400, 422)
    assert "onnx, torchscript" in unknown.text

    other = {"Authorization": f"OAuth {make_token(session, make_requester(session))}"}
    hidden = client.get(f"/api/v1/models/{model.id}/exports/torchscript/file", headers=other)
    assert hidden.status_code == 404
