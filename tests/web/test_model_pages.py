"""Collections, Train a model, model page and Inference page as a requester sees them."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from app.db.models import Collection, TrainedModel
from tests.builders.models import (
    TINY_SETTINGS,
    digit_pngs,
    digits_zip,
    make_collection,
    make_trained_model,
    quiet_torch_threads,
    zip_bytes,
)
from tests.builders.users import login, make_requester


@pytest.fixture(autouse=True)
def _one_thread():
    quiet_torch_threads()


def _zip_upload(buffer, name="Digits"):
    return {
        "data": {"name": name, "val_fraction": "0.25", "seed": "1"},
        "files": {"file": ("digits.zip", buffer.getvalue(), "application/zip")},
    }


def test_zip_import_lists_counts_per_class_and_thumbnails(requester_client):
    response = requester_client.post(
        "/requester/collections/import", **_zip_upload(digits_zip(per_class=4))
    )
    assert response.status_code == 200
    assert "Imported 12 images." in response.text
    page = requester_client.get("/requester/collections").text
    assert 'data-collection="Digits"' in page
    assert "0: 4" in page and "2: 4" in page
    assert len(re.findall(r'<img src="/media/[0-9a-f]{64}\.png"', page)) == 6


def test_a_bad_zip_shows_the_error_inline_and_keeps_the_values(requester_client, session):
    png = digit_pngs()["0"][0]
    response = requester_client.post(
        "/requester/collections/import",
        **_zip_upload(zip_bytes({"D/a/1.png": png, "D/b/evil.exe": b"MZ"}), name="Keep me"),
    )
    assert response.status_code == 422
    assert "&#39;D/b/evil.exe&#39; is not an image" in response.text
    assert 'value="Keep me"' in response.text
    assert session.exec(select(Collection)).all() == []


def test_train_page_offers_curated_architectures_with_details_and_defaults(
    requester_client, session, requester
):
    make_collection(session, requester, per_class=3)
    page = requester_client.get("/requester/models/train").text
    assert 'value="classification" checked' in page
    for arch in ("resnet18", "resnet50", "efficientnet_b0", "convnext_tiny"):
        assert f'<option value="{arch}"' in page
    assert "vit_small_patch16_224" in page and "mobilenetv3_large_100" in page
    assert "He et al. 2016" in page  # the details panel names where it came from
    assert 'name="epochs" type="number" value="10"' in page
    assert "Digits (3 classes)" in page


def test_bad_settings_are_shown_inline(requester_client, session, requester):
    collection = make_collection(session, requester, per_class=3)
    response = requester_client.post(
        "/requester/models/train",
        data={**TINY_SETTINGS, "collection_id": collection.id, "epochs": "zero", "lr": "-1"},
    )
    assert response.status_code == 422
    assert "Enter a whole number." in response.text
    assert "A positive number like 0.001." in response.text
    assert session.exec(select(TrainedModel)).all() == []


def test_training_from_the_page_shows_metrics_figures_and_the_fallback_message(
    requester_client, session, requester
):
    collection = make_collection(session, requester, per_class=8)
    form = {**TINY_SETTINGS, "collection_id": collection.id, "pretrained": "1"}
    response = requester_client.post("/requester/models/train", data=form)
    assert response.status_code == 200
    page = response.text
    assert "Training iteration 1 started." in page
    assert "not available offline; training from scratch" in page
    assert 'id="accuracy"' in page and 'id="threshold-slider"' in page
    figure = re.search(
        r'src="http://testserver(/requester/models/\d+/figures/confusion_matrix\.png)"', page
    )
    image = requester_client.get(figure.group(1))
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"


def test_model_page_shows_per_class_figures_and_the_threshold_curve(
    requester_client, session, requester
):
    model = make_trained_model(session, requester)
    page = requester_client.get(f"/requester/models/{model.id}").text
    assert page.count('data-class-index="') == 10
    assert "macro F1" in page and "mean average precision" in page
    assert '<script type="application/json" id="threshold-curve">' in page
    assert "training_curves.png" in page


def test_publish_shows_the_key_once(requester_client, session, requester):
    model = make_trained_model(session, requester)
    page = requester_client.post(
        f"/requester/models/{model.id}/publish", data={"name": "digits"}
    ).text
    key = re.search(r'id="prediction-key">(pk_[^<]+)<', page).group(1)
    session.expire_all()
    assert session.get(TrainedModel, model.id).published_name == "digits"
    assert key not in requester_client.get(f"/requester/models/{model.id}").text
    other = make_trained_model(session, requester, iteration=2)
    clash = requester_client.post(f"/requester/models/{other.id}/publish", data={"name": "digits"})
    assert clash.status_code == 422 and "Already used by another model." in clash.text


def test_figures_and_pages_of_another_requesters_model_are_not_found(
    make_client, session, requester
):
    model = make_trained_model(session, requester)
    stranger = login(make_client(), make_requester(session))
    assert stranger.get(f"/requester/models/{model.id}").status_code == 404
    figure = f"/requester/models/{model.id}/figures/confusion_matrix.png"
    assert stranger.get(figure).status_code == 404
    assert stranger.get(f"/requester/collections/{model.collection_id}").status_code == 404


def test_inference_page_shows_top_class_and_probability_bars(requester_client, session, requester):
    model = make_trained_model(session, requester, published_name="digits")
    page = requester_client.get("/requester/inference").text
    assert f'<option value="{model.id}" selected>digits' in page
    pngs = digit_pngs()
    response = requester_client.post(
        "/requester/inference",
        data={"model_id": str(model.id)},
        files=[
            ("files", ("seven.png", pngs["7"][100], "image/png")),
            ("files", ("three.png", pngs["3"][100], "image/png")),
            ("files", ("notes.png", b"not an image", "image/png")),
        ],
    )
    assert response.status_code == 200
    html = response.text
    assert html.count('class="card prediction"') == 3
    assert html.count('class="top-class"') == 2
    assert html.count('class="bar-row"') == 10  # top 5 of each good image
    assert "notes.png: not a readable image" in html
    assert 'src="data:image/png;base64,' in html


def test_batch_prediction_from_the_model_page_gives_a_tsv(requester_client, session, requester):
    model = make_trained_model(session, requester)
    response = requester_client.post(
        f"/requester/models/{model.id}/batch", data={"source": f"collection:{model.collection_id}"}
    )
    link = re.search(
        r'href="http://testserver(/requester/predictions/\d+\.tsv)"', response.text
    ).group(1)
    tsv = requester_client.get(link)
    assert tsv.text.startswith("INPUT:image\tOUTPUT:result\tCONFIDENCE:result\n")
    assert len(tsv.text.splitlines()) == 61


def test_collection_from_aggregation_previews_counts_and_creates(
    requester_client, session, requester
):
    from tests.builders.models import make_aggregated_run

    run, _ = make_aggregated_run(session, requester)
    page = requester_client.get("/requester/collections/from-aggregation").text
    assert f'<option value="{run.id}"' in page
    preview = requester_client.get(
        f"/requester/collections/preview?run_id={run.id}&min_confidence=0.85",
        headers={"HX-Request": "true"},
    ).text
    assert "<strong>3</strong> images pass" in preview
    assert "3 below the threshold" in preview
    bad = requester_client.post(
        "/requester/collections/from-aggregation",
        data={"run_id": run.id, "name": "Crowd", "min_confidence": "1.5"},
    )
    assert bad.status_code == 422 and "Between 0 and 1." in bad.text and 'value="Crowd"' in bad.text
    created = requester_client.post(
        "/requester/collections/from-aggregation",
        data={"run_id": run.id, "name": "Crowd", "min_confidence": "0.75"},
    )
    assert (
        created.status_code == 200
        and "Created &#39;Crowd&#39; from the aggregation." in created.text
    )
    assert 'id="classes"' in created.text


def test_model_page_exports_onnx_and_links_the_download(
    requester_client, make_client, session, requester
):
    model = make_trained_model(session, requester)
    page = requester_client.get(f"/requester/models/{model.id}").text
    assert 'id="export-onnx"' in page and 'id="download-onnx"' not in page

    response = requester_client.post(
        f"/requester/models/{model.id}/export", data={"format": "onnx"}
    )
    assert response.status_code == 200  # followed the redirect back to the page
    assert "Export to onnx started" in response.text
    match = re.search(r'href="([^"]+)" id="download-onnx"', response.text)
    assert match, "the finished export is linked"
    download = requester_client.get(match.group(1))
    assert download.status_code == 200
    assert f'filename="model-{model.id}.onnx"' in download.headers["content-disposition"]

    other = login(make_client(), make_requester(session))
    assert other.get(match.group(1)).status_code == 404
