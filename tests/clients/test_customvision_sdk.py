"""The Azure Custom Vision SDK (3.1.1) runs its classification quickstart against Crowdlab.

A live server with a real job consumer; digits from scikit-learn as PNGs; timm's tiny test
ResNet trained on the CPU (set through the ``CROWDLAB_CV_*`` variables).
"""

from __future__ import annotations

import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.prediction.models import (
    CustomVisionErrorException as PredictionError,
)
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    ImageUrlCreateBatch,
    ImageUrlCreateEntry,
)
from msrest.authentication import ApiKeyCredentials
from PIL import Image

from app.services.ml import collections, trained_models
from tests.builders.models import digit_pngs, quiet_torch_threads
from tests.builders.users import make_requester, make_token

GENERAL_DOMAIN = "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31"
PREDICTION_RESOURCE = (
    "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/pred"
)


@pytest.fixture
def tiny_training(monkeypatch):
    """Custom Vision trains timm's tiny test ResNet on 16-pixel images on the CPU."""
    quiet_torch_threads()
    for key, value in {
        "CROWDLAB_CV_ARCH": "test_resnet",
        "CROWDLAB_CV_EPOCHS": "6",
        "CROWDLAB_CV_IMAGE_SIZE": "16",
        "CROWDLAB_CV_DEVICE": "cpu",
        "CROWDLAB_CV_PRETRAINED": "false",
        "CROWDLAB_CV_TRAIN_SETTINGS": '{"augmentation": "none", "lr": 0.01, "batch_size": 8}',
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def image_host():
    """A tiny HTTP server that serves PNGs put in its ``files`` dict (for the URL calls)."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            data = files.get(self.path.lstrip("/"))
            self.send_response(200 if data else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args):
            pass

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.files = files
    server.url = f"http://127.0.0.1:{port}"
    yield server
    server.shutdown()


def _clients(url: str, key: str):
    trainer = CustomVisionTrainingClient(url, ApiKeyCredentials(in_headers={"Training-key": key}))
    predictor = CustomVisionPredictionClient(
        url, ApiKeyCredentials(in_headers={"Prediction-key": key})
    )
    return trainer, predictor


def _wait_for(trainer, project_id, iteration, seconds=240.0):
    """The quickstart's polling loop, with a deadline and an exit on failure."""
    deadline = time.monotonic() + seconds
    seen = {iteration.status}
    while iteration.status != "Completed":
        assert iteration.status != "Failed", iteration.training_error_details
        assert time.monotonic() < deadline, f"still {iteration.status}"
        time.sleep(0.2)
        iteration = trainer.get_iteration(project_id, iteration.id)
        seen.add(iteration.status)
    return iteration, seen


def _big_png() -> bytes:
    """A PNG over 1 MB (noise does not compress): the SDK sends it as one multipart part."""
    pixels = np.random.default_rng(0).integers(0, 256, (640, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_quickstart_runs_unchanged_and_shows_up_in_crowdlab(
    jobs_live_server, tiny_training, image_host, session
):
    requester = make_requester(session)
    key = make_token(session, requester)
    trainer, predictor = _clients(jobs_live_server.url, key)
    digits = digit_pngs()

    domains = {d.id: d for d in trainer.get_domains()}
    assert domains[GENERAL_DOMAIN].name == "General"
    assert domains[GENERAL_DOMAIN].type == "Classification"

    project = trainer.create_project("My New Project", classification_type="Multiclass")
    assert trainer.get_project(project.id).name == "My New Project"
    assert project.settings.domain_id == GENERAL_DOMAIN
    assert project.created.tzinfo is not None
    assert project.id in [p.id for p in trainer.get_projects()]
    zero = trainer.create_tag(project.id, "zero")
    one = trainer.create_tag(project.id, "one")
    two = trainer.create_tag(project.id, "two")
    assert len({zero.id, one.id, two.id}) == 3
    assert {t.id: t.name for t in trainer.get_tags(project.id)} == {
        zero.id: "zero",
        one.id: "one",
        two.id: "two",
    }

    # Like the quickstart: one JSON batch of base64 files, tags per image.
    batch = ImageFileCreateBatch(
        images=[
            ImageFileCreateEntry(name=f"{tag.name}{i}.png", contents=digits[d][i], tag_ids=[tag.id])
            for d, tag in (("0", zero), ("1", one))
            for i in range(8)
        ]
    )
    summary = trainer.create_images_from_files(project.id, batch)
    assert summary.is_batch_successful
    assert [i.status for i in summary.images] == ["OK"] * 16
    assert summary.images[0].image.tags[0].tag_id == zero.id

    # Too few images for "two": a Custom Vision error that says what is missing.
    with pytest.raises(CustomVisionErrorException) as refused:
        trainer.train_project(project.id)
    assert refused.value.error.code == "BadRequestTrainingValidationFailed"
    assert "'two' has 0 image(s), 5 more needed" in refused.value.message

    # Like the AI-102 labs: raw bytes as multipart imageData (one over 1 MB, untagged).
    for i in range(6):
        created = trainer.create_images_from_data(project.id, digits["2"][i], tag_ids=[two.id])
        assert created.images[0].status == "OK"
    big = trainer.create_images_from_data(project.id, _big_png())
    assert big.is_batch_successful
    assert (big.images[0].image.width, big.images[0].image.height) == (640, 640)
    assert big.images[0].image.tags == []

    # A partly duplicate batch: 207 with a status per image.
    image_host.files["new.png"] = digits["2"][6]
    mixed = trainer.create_images_from_urls(
        project.id,
        ImageUrlCreateBatch(
            images=[
                ImageUrlCreateEntry(url=f"{image_host.url}/new.png", tag_ids=[two.id]),
                ImageUrlCreateEntry(url=f"{image_host.url}/missing.png", tag_ids=[two.id]),
            ]
        ),
    )
    assert not mixed.is_batch_successful
    assert [i.status for i in mixed.images] == ["OK", "ErrorSource"]
    again = trainer.create_images_from_data(project.id, digits["2"][0], tag_ids=[two.id])
    assert not again.is_batch_successful
    assert again.images[0].status == "OKDuplicate"
    assert trainer.get_tagged_image_count(project.id) == 23
    assert trainer.get_untagged_image_count(project.id) == 1
    assert len(trainer.get_untagged_images(project.id)) == 1
    assert {t.name: t.image_count for t in trainer.get_tags(project.id)} == {
        "zero": 8,
        "one": 8,
        "two": 7,
    }

    iteration = trainer.train_project(project.id)
    assert iteration.status in ("Training", "Completed")
    iteration, seen = _wait_for(trainer, project.id, iteration)
    assert "Completed" in seen
    assert iteration.name == "Iteration 1"
    assert iteration.trained_at is not None
    assert [i.id for i in trainer.get_iterations(project.id)] == [iteration.id]
    with pytest.raises(CustomVisionErrorException) as not_needed:
        trainer.train_project(project.id)
    assert not_needed.value.error.code == "BadRequestTrainingNotNeeded"

    performance = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.5)
    figures = [performance.precision, performance.recall, performance.average_precision]
    assert all(0.0 <= f <= 1.0 for f in figures)
    assert {t.id: t.name for t in performance.per_tag_performance} == {
        zero.id: "zero",
        one.id: "one",
        two.id: "two",
    }
    for tag in performance.per_tag_performance:
        assert 0.0 <= tag.precision <= 1.0 and 0.0 <= tag.recall <= 1.0
        assert 0.0 <= tag.average_precision <= 1.0

    # The quickstart publishes twice: the second call must succeed too.
    for _ in range(2):
        assert trainer.publish_iteration(
            project.id, iteration.id, "classifyModel", PREDICTION_RESOURCE
        )
    assert trainer.get_iteration(project.id, iteration.id).publish_name == "classifyModel"

    results = [
        predictor.classify_image(project.id, "classifyModel", digits["1"][20]),
        predictor.classify_image_with_no_store(
            project.id, "classifyModel", io.BytesIO(digits["1"][21])
        ),
        predictor.classify_image_url(project.id, "classifyModel", f"{image_host.url}/new.png"),
        predictor.classify_image_url_with_no_store(
            project.id, "classifyModel", f"{image_host.url}/new.png"
        ),
    ]
    for result in results:
        assert result.project == project.id and result.iteration == iteration.id
        probabilities = [p.probability for p in result.predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
        by_name = {p.tag_name: p.tag_id for p in result.predictions}
        assert by_name == {"zero": zero.id, "one": one.id, "two": two.id}

    # The same objects through Crowdlab's own services and JSON API.
    session.expire_all()
    collection = collections.get_collection_by_name(
        session, requester=requester, name="My New Project"
    )
    assert collection.source == "customvision"
    assert collection.classes == ["one", "two", "zero"]
    published = trained_models.list_published_models(session, requester=requester)
    assert [(m.published_name, m.collection_id) for m in published] == [
        ("classifyModel", collection.id)
    ]
    api = httpx.get(
        f"{jobs_live_server.url}/api/v1/models/{published[0].id}",
        headers={"Authorization": f"OAuth {key}"},
    )
    assert api.status_code == 200
    assert api.json()["status"] == "completed"
    assert api.json()["published_name"] == "classifyModel"

    # Unpublish, then the prediction endpoint answers 404 in Custom Vision's shape.
    trainer.unpublish_iteration(project.id, iteration.id)
    with pytest.raises(PredictionError) as gone:
        predictor.classify_image(project.id, "classifyModel", digits["1"][20])
    assert gone.value.response.status_code == 404
    assert "classifyModel" in gone.value.message

    trainer.delete_iteration(project.id, iteration.id)
    trainer.delete_tag(project.id, two.id)
    assert trainer.get_untagged_image_count(project.id) == 8
    trainer.delete_project(project.id)
    with pytest.raises(CustomVisionErrorException) as missing:
        trainer.get_project(project.id)
    assert missing.value.error.code == "NotFoundProject"
    assert collections.list_collections(session, requester=requester) == []


def test_wrong_key_and_another_users_project_get_custom_vision_errors(jobs_live_server, session):
    owner_key = make_token(session, make_requester(session))
    other_key = make_token(session, make_requester(session))
    owner, _ = _clients(jobs_live_server.url, owner_key)
    project = owner.create_project("Private")

    stranger, _ = _clients(jobs_live_server.url, "not-a-key")
    with pytest.raises(CustomVisionErrorException) as denied:
        stranger.get_projects()
    assert denied.value.response.status_code == 401
    assert denied.value.error.code == "Unauthorized"

    other, _ = _clients(jobs_live_server.url, other_key)
    with pytest.raises(CustomVisionErrorException) as hidden:
        other.create_tag(project.id, "cat")
    assert hidden.value.response.status_code == 404
    assert other.get_projects() == []

    with pytest.raises(CustomVisionErrorException) as duplicate:
        owner.create_project("Private")
    assert duplicate.value.error.code == "BadRequestProjectNameNotUnique"
    with pytest.raises(CustomVisionErrorException) as multilabel:
        owner.create_project("Tags", classification_type="Hierarchical")
    assert "Multiclass" in multilabel.value.message
