"""POST /api/v1/models/{id}/predict and the models/collections JSON API."""

from __future__ import annotations

import threading

import httpx
import pytest

from app.services.media import urls
from app.services.ml import inference, trained_models
from tests.builders.models import (
    TINY_SETTINGS,
    digit_pngs,
    digits_zip,
    make_collection,
    make_trained_model,
    quiet_torch_threads,
)
from tests.builders.users import make_requester, make_token


@pytest.fixture(autouse=True)
def _one_thread():
    quiet_torch_threads()


@pytest.fixture
def published(session, requester):
    model = make_trained_model(session, requester)
    model, key = trained_models.publish_model(
        session, requester=requester, model_id=model.id, name="digits"
    )
    return model, key


def _image(label="4", n=120):
    return {"file": (f"{label}.png", digit_pngs()[label][n], "image/png")}


def test_prediction_key_gives_sorted_probabilities_summing_to_one(client, published):
    model, key = published
    response = client.post(
        f"/api/v1/models/{model.id}/predict", files=_image(), headers={"Prediction-Key": key}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] != [] and len(predictions) == 10
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0)
    top = client.post(
        f"/api/v1/models/{model.id}/predict?top_k=2",
        files=_image(),
        headers={"Prediction-Key": key},
    )
    assert [p["label"] for p in top.json()["predictions"]] == [p["label"] for p in predictions[:2]]


def test_owner_token_works_and_other_credentials_do_not(client, session, requester, published):
    model, key = published
    url = f"/api/v1/models/{model.id}/predict"
    owner = {"Authorization": f"OAuth {make_token(session, requester)}"}
    assert client.post(url, files=_image(), headers=owner).status_code == 200
    assert client.post(url, files=_image()).status_code == 401
    wrong = client.post(url, files=_image(), headers={"Prediction-Key": "pk_wrong"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "AUTHENTICATION_ERROR"
    stranger = {"Authorization": f"OAuth {make_token(session, make_requester(session))}"}
    assert client.post(url, files=_image(), headers=stranger).status_code == 404
    other = make_trained_model(session, requester, iteration=2)
    misused = client.post(
        f"/api/v1/models/{other.id}/predict", files=_image(), headers={"Prediction-Key": key}
    )
    assert misused.status_code == 401


def test_image_url_is_fetched_with_a_size_limit(client, published, monkeypatch, settings):
    model, key = published
    png = digit_pngs()["1"][50]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big.png":
            return httpx.Response(200, content=b"\0" * 2048)
        if request.url.path == "/gone.png":
            return httpx.Response(404)
        return httpx.Response(200, content=png, headers={"content-type": "image/png"})

    real = inference.fetch_image_url
    monkeypatch.setattr(
        inference,
        "fetch_image_url",
        lambda url: real(url, transport=httpx.MockTransport(handler)),
    )
    url = f"/api/v1/models/{model.id}/predict"
    headers = {"Prediction-Key": key}
    ok = client.post(url, json={"url": "http://images.example/one.png"}, headers=headers)
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 10
    form = client.post(url, data={"url": "http://images.example/one.png"}, headers=headers)
    assert form.json() == ok.json()
    gone = client.post(url, json={"url": "http://images.example/gone.png"}, headers=headers)
    assert gone.status_code == 422 and "HTTP 404" in gone.json()["message"]
    monkeypatch.setattr(settings, "max_image_bytes", 1024)
    big = client.post(url, json={"url": "http://images.example/big.png"}, headers=headers)
    assert big.status_code == 422 and "larger than the limit" in big.json()["message"]
    bad = client.post(url, json={"url": "file:///etc/passwd"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["payload"]["errors"] == {
        "url": "Not an http(s) URL."
    }


def test_bad_or_missing_images_get_clear_errors(client, published):
    model, key = published
    url = f"/api/v1/models/{model.id}/predict"
    headers = {"Prediction-Key": key}
    bad = client.post(url, files={"file": ("x.png", b"nope", "image/png")}, headers=headers)
    assert bad.status_code == 422 and "x.png: not a readable image" in bad.json()["message"]
    missing = client.post(url, json={}, headers=headers)
    assert missing.status_code == 422 and "multipart field 'file'" in missing.json()["message"]


def test_concurrent_predictions_agree(client, published):
    model, key = published
    url = f"/api/v1/models/{model.id}/predict"
    results: list = []

    def call():
        response = client.post(url, files=_image("9", 80), headers={"Prediction-Key": key})
        results.append(response.json()["predictions"])

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and all(r == results[0] for r in results)


def test_collections_and_models_are_listed_per_owner(requester_api, session, requester):
    collection = make_collection(session, requester, per_class=3)
    model = make_trained_model(session, requester, collection=collection)
    listed = requester_api.get("/api/v1/collections").json()
    assert [c["name"] for c in listed] == ["Digits"]
    assert listed[0]["class_counts"]["0"]["total"] == 3
    got = requester_api.get(f"/api/v1/models/{model.id}").json()
    assert got["status"] == "completed" and got["metrics"]["accuracy"] > 0.3
    assert "checkpoint_dir" not in got and "prediction_key_hash" not in got
    assert [m["id"] for m in requester_api.get("/api/v1/models").json()] == [model.id]
    other = make_requester(session)
    stranger = {"Authorization": f"OAuth {make_token(session, other)}"}
    assert requester_api.get(f"/api/v1/models/{model.id}", headers=stranger).status_code == 404
    assert (
        requester_api.get(f"/api/v1/collections/{collection.id}", headers=stranger).status_code
        == 404
    )


def test_import_train_publish_and_predict_over_the_api(requester_api):
    imported = requester_api.post(
        "/api/v1/collections",
        data={"name": "API digits"},
        files={"file": ("d.zip", digits_zip(per_class=8).getvalue(), "application/zip")},
    )
    assert imported.status_code == 201, imported.text
    bad = requester_api.post(
        "/api/v1/models", json={"collection_id": imported.json()["id"], "arch": "nope_net"}
    )
    assert bad.status_code == 422 and "arch" in bad.json()["payload"]["errors"]
    started = requester_api.post(
        "/api/v1/models", json={"collection_id": imported.json()["id"], **TINY_SETTINGS}
    )
    assert started.status_code == 202, started.text
    model_id = started.json()["id"]
    assert requester_api.get(f"/api/v1/models/{model_id}").json()["status"] == "completed"
    published = requester_api.post(f"/api/v1/models/{model_id}/publish", json={"name": "api"})
    key = published.json()["prediction_key"]
    answer = requester_api.post(
        f"/api/v1/models/{model_id}/predict",
        files=_image("2"),
        headers={"Prediction-Key": key, "Authorization": ""},
    )
    assert answer.status_code == 200
    assert {p["label"] for p in answer.json()["predictions"]} == {"0", "1", "2"}


def test_image_urls_on_private_addresses_are_refused(client, published, monkeypatch, settings):
    model, key = published
    monkeypatch.setattr(settings, "allow_private_image_urls", False)
    url = f"/api/v1/models/{model.id}/predict"
    headers = {"Prediction-Key": key}
    for target in ("http://127.0.0.1:9/x.png", "http://169.254.169.254/latest/meta-data"):
        response = client.post(url, json={"url": target}, headers=headers)
        assert response.status_code == 422
        assert "private or local address" in response.json()["message"]


def test_numeric_ip_forms_are_read_as_the_os_reads_them_and_refused(
    client, published, monkeypatch, settings
):
    model, key = published
    monkeypatch.setattr(settings, "allow_private_image_urls", False)
    url = f"/api/v1/models/{model.id}/predict"
    headers = {"Prediction-Key": key}
    for target in (
        "http://0177.0.0.1/x.png",  # octal
        "http://0x7f.0.0.1/x.png",  # hex
        "http://2130706433/x.png",  # one integer
        "http://127.1/x.png",  # two parts
        "http://0x0a.1/x.png",  # 10.0.0.1
    ):
        response = client.post(url, json={"url": target}, headers=headers)
        assert response.status_code == 422, (target, response.text)
        assert "private or local address" in response.json()["message"]
    response = client.post(url, json={"url": "http://99999999999/x.png"}, headers=headers)
    assert response.status_code == 422
    assert "not a valid IP address" in response.json()["message"]


def test_a_redirect_to_a_private_address_is_refused(published, monkeypatch, settings):
    monkeypatch.setattr(settings, "allow_private_image_urls", False)
    public = ("93.184.215.14", 80)
    monkeypatch.setattr(
        urls.socket,
        "getaddrinfo",
        lambda host, port: [(2, 1, 6, "", ("10.0.0.5", port) if host == "internal" else public)],
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://internal/secret.png"})

    with pytest.raises(inference.UploadRejected, match="private or local address"):
        inference.fetch_image_url(
            "http://images.example/a.png", transport=httpx.MockTransport(handler)
        )
