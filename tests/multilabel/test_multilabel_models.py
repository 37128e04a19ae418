"""Multilabel collections (ZIP + manifest, aggregation), training with sigmoid outputs and
BCE, the evaluation figures, and prediction (service, API, CLI)."""

from __future__ import annotations

import pytest

from app.db.models import CollectionItem, Job, ModelStatus, TrainedModel
from app.errors import UploadRejected, ValidationFailed
from app.services.ml import inference, multilabel, trained_models
from tests.builders.models import TINY_SETTINGS, quiet_torch_threads, zip_bytes
from tests.multilabel.builders import colour_png, manifest_zip

SETTINGS = {**TINY_SETTINGS, "epochs": 8, "lr": 2e-2, "num_workers": 0}


@pytest.fixture(autouse=True)
def _one_thread():
    quiet_torch_threads()


@pytest.fixture
def trained(session, requester):
    collection = multilabel.create_multilabel_collection_from_zip(
        session, requester=requester, file=manifest_zip(96), name="Colours", val_fraction=0.25
    )
    model = trained_models.start_training(
        session, requester=requester, collection_id=collection.id, settings=SETTINGS
    )
    session.expire_all()
    return collection, session.get(TrainedModel, model.id)


def test_zip_manifest_makes_a_multilabel_collection(session, requester):
    collection = multilabel.create_multilabel_collection_from_zip(
        session, requester=requester, file=manifest_zip(20, kind="json"), name="Json tags"
    )
    assert collection.classification_type == "multilabel"
    assert collection.classes == ["blue", "green", "red"]
    items = session.query(CollectionItem).filter_by(collection_id=collection.id).all()
    assert len(items) == 20 and all(isinstance(i.labels, list) for i in items)
    assert {i.split for i in items} == {"train", "val"}
    counts = multilabel.tag_counts(session, collection)
    assert sum(c["total"] for c in counts.values()) == sum(len(i.labels) for i in items)


def test_bad_manifests_are_refused_with_words(session, requester):
    no_manifest = zip_bytes({"a.png": colour_png(["red"], 1)})
    with pytest.raises(UploadRejected, match="manifest.csv"):
        multilabel.create_multilabel_collection_from_zip(
            session, requester=requester, file=no_manifest, name="x"
        )
    missing = zip_bytes({"a.png": colour_png(["red"], 1),
                         "manifest.csv": b"image,tags\na.png,red\nb.png,blue\n"})  # fmt: skip
    with pytest.raises(UploadRejected, match="b.png"):
        multilabel.create_multilabel_collection_from_zip(
            session, requester=requester, file=missing, name="x"
        )
    one_tag = zip_bytes(
        {"a.png": colour_png(["red"], 1), "manifest.csv": b"image,tags\na.png,red\n"}
    )
    with pytest.raises(ValidationFailed, match="two tags"):
        multilabel.create_multilabel_collection_from_zip(
            session, requester=requester, file=one_tag, name="x"
        )


def test_training_uses_sigmoid_outputs_and_reports_per_tag_figures(session, trained):
    collection, model = trained
    job = session.get(Job, model.job_id)
    assert job.status == "succeeded", job.message
    assert model.status == ModelStatus.COMPLETED
    assert model.config["multilabel"] is True and model.config["threshold"] == 0.5
    metrics = model.metrics
    assert metrics["multilabel"] and metrics["num_samples"] == 24
    assert metrics["map"] > 0.8, metrics["map"]  # three easy tags; chance is about 0.5
    assert {row["class"] for row in metrics["per_class"]} == {"blue", "green", "red"}
    assert len(metrics["co_occurrence"]) == 3 and len(metrics["threshold_curve"]) == 21
    figures = trained_models.evaluation(model)
    assert figures["multilabel"] and figures["map"] == metrics["map"]
    # one probability per tag, not summing to 1: a picture with every colour
    predictions = inference.predict_bytes(
        model, data=colour_png(["red", "green", "blue"], 999), name="all.png", top_k=1
    )
    assert {label for label, _ in predictions} == {"red", "green", "blue"}
    assert sum(p for _, p in predictions) > 1.5


def test_predict_api_returns_every_tag_and_those_above_threshold(
    session, requester, trained, requester_api
):
    _collection, model = trained
    response = requester_api.post(
        f"/api/v1/models/{model.id}/predict",
        files={"file": ("g.png", colour_png(["green"], 4242), "image/png")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["multilabel"] is True and body["threshold"] == 0.5
    assert {p["label"] for p in body["predictions"]} == {"red", "green", "blue"}
    assert body["tags"] == [p["label"] for p in body["predictions"] if p["probability"] >= 0.5]
    assert "green" in body["tags"]


def test_model_page_shows_per_tag_table_slider_and_co_occurrence(
    session, trained, requester_client
):
    _collection, model = trained
    page = requester_client.get(f"/requester/models/{model.id}")
    assert page.status_code == 200
    html = page.text
    assert "mAP" in html and "Co-occurrence" in html and "data-threshold-slider" in html


def test_crowdlab_predict_prints_the_tags_above_threshold(
    session, requester, trained, tmp_path, capsys
):
    from app.cli import main

    _collection, model = trained
    trained_models.publish_model(session, requester=requester, model_id=model.id, name="colours")
    both = tmp_path / "both.png"
    both.write_bytes(colour_png(["red", "blue"], 777))
    plain = tmp_path / "plain.png"
    plain.write_bytes(colour_png([], 778))
    assert main(["predict", "--model", "colours", str(both), str(plain)]) == 0
    lines = dict(line.split("\t") for line in capsys.readouterr().out.strip().splitlines())
    expected = inference.predict_bytes(model, data=both.read_bytes(), name="b.png")
    above = [tag for tag, p in expected if p >= 0.5]
    assert [part.split(":")[0] for part in lines[str(both)].split()] == above
    assert {"red", "blue"} <= set(above)
    assert all(0.5 <= float(part.split(":")[1]) <= 1 for part in lines[str(both)].split())
    assert lines[str(plain)] in ("-",) or "red" not in lines[str(plain)]


def test_inference_page_lists_the_tags_above_threshold(session, trained, requester_client):
    import re

    _collection, model = trained
    page = requester_client.get(f"/requester/inference?model_id={model.id}")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    shown = requester_client.post(
        "/requester/inference",
        data={"csrf_token": csrf, "model_id": str(model.id)},
        files=[("files", ("rb.png", colour_png(["red", "blue"], 31), "image/png"))],
    )
    assert shown.status_code == 200, shown.text
    expected = inference.predict_bytes(model, data=colour_png(["red", "blue"], 31), name="x")
    tags = [tag for tag, p in expected if p >= 0.5]
    assert f"<strong>{', '.join(tags)}</strong>" in shown.text and "data-tags" in shown.text
    assert shown.text.count('class="bar-row"') == 3  # every tag's bar
