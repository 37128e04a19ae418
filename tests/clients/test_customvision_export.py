"""The Custom Vision SDK (3.1.1): export, per-image performance, training not needed, errors.

Azure's "export programmatically" sequence (export_iteration, poll get_exports, GET the
downloadUri) on a compact-domain project, then the ONNX file in onnxruntime; the
iteration's validation images through get_image_performances; train_project with nothing
new refused unless forced; SDK operations Crowdlab does not serve answer in Azure's shape.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from azure.cognitiveservices.vision.customvision.training.models import (
    CustomVisionErrorException,
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    ImageTagCreateEntry,
)
from sqlmodel import select

from app.db.models import TrainedModel
from model.export import OnnxPredictor
from tests.builders.models import digit_pngs
from tests.builders.users import make_requester, make_token
from tests.clients.test_customvision_sdk import _clients, _wait_for, tiny_training  # noqa: F401

COMPACT_DOMAIN = "0732100f-1a38-4e49-a514-c9b44c697ab5"  # General (compact)
GENERAL_DOMAIN = "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31"
PER_TAG = 15


def _trained_project(trainer, name, domain_id=COMPACT_DOMAIN, **options):
    project = trainer.create_project(name, domain_id=domain_id, **options)
    digits = digit_pngs()
    tags = {d: trainer.create_tag(project.id, f"digit {d}") for d in ("0", "1", "7")}
    batch = ImageFileCreateBatch(
        images=[
            ImageFileCreateEntry(name=f"{d}_{i}.png", contents=digits[d][i], tag_ids=[tag.id])
            for d, tag in tags.items()
            for i in range(PER_TAG)
        ]
    )
    assert trainer.create_images_from_files(project.id, batch).is_batch_successful
    iteration, _ = _wait_for(trainer, project.id, trainer.train_project(project.id))
    return project, tags, iteration


def test_compact_project_exports_onnx_that_agrees_with_the_server(
    jobs_live_server,
    tiny_training,  # noqa: F811
    session,
    tmp_path,
):
    key = make_token(session, make_requester(session))
    trainer, _ = _clients(jobs_live_server.url, key)
    domains = {d.id: d for d in trainer.get_domains()}
    assert domains[COMPACT_DOMAIN].exportable_platforms == ["ONNX"]
    assert domains[GENERAL_DOMAIN].exportable_platforms == []
    with pytest.raises(CustomVisionErrorException) as coreml:
        trainer.create_project(
            "Phones", domain_id=COMPACT_DOMAIN, target_export_platforms=["CoreML"]
        )
    assert coreml.value.error.code == "BadRequestProjectUnsupportedExportPlatform"
    assert "CoreML" in coreml.value.message

    project, _, iteration = _trained_project(trainer, "Export me", target_export_platforms=["ONNX"])
    assert project.settings.target_export_platforms == ["ONNX"]
    assert iteration.exportable is True and iteration.exportable_to == ["ONNX"]
    assert trainer.get_exports(project.id, iteration.id) == []

    with pytest.raises(CustomVisionErrorException) as tensorflow:
        trainer.export_iteration(project.id, iteration.id, "TensorFlow")
    assert tensorflow.value.error.code == "BadRequestExportValidationFailed"
    assert "ONNX only" in tensorflow.value.message
    with pytest.raises(CustomVisionErrorException) as flavor:
        trainer.export_iteration(project.id, iteration.id, "ONNX", flavor="ONNX12")
    assert "flavor" in flavor.value.message

    # Azure's sample: export, poll get_exports until it is no longer Exporting, download.
    export = trainer.export_iteration(project.id, iteration.id, "ONNX")
    assert export.platform == "ONNX" and export.status in ("Exporting", "Done")
    deadline = time.monotonic() + 60
    while export.status == "Exporting":
        assert time.monotonic() < deadline
        time.sleep(0.2)
        export = next(
            e for e in trainer.get_exports(project.id, iteration.id) if e.platform == "ONNX"
        )
    assert export.status == "Done", export.status
    assert export.download_uri.startswith(jobs_live_server.url)

    with_key = httpx.get(export.download_uri, headers={"Training-Key": key})
    assert with_key.status_code == 200
    bare = httpx.get(export.download_uri)  # the sample's requests.get(export.download_uri)
    assert bare.status_code == 200 and bare.content == with_key.content
    forged = httpx.get(export.download_uri.split("sig=")[0] + "sig=forged")
    assert forged.status_code == 401 and forged.json()["code"] == "Unauthorized"
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(with_key.content)

    # The exported file gives the iteration's own answers (quick test = the server's model).
    exported = OnnxPredictor(onnx_file)
    assert exported.classes == ["digit 0", "digit 1", "digit 7"]
    for digit in ("0", "1", "7"):
        image = digit_pngs()[digit][PER_TAG + 5]
        server = trainer.quick_test_image(project.id, image, iteration_id=iteration.id)
        best = max(server.predictions, key=lambda p: p.probability)
        top = exported.predict(image, top_k=None)
        assert top[0][0] == best.tag_name
        onnx_probs = dict(top)
        for p in server.predictions:
            assert onnx_probs[p.tag_name] == pytest.approx(p.probability, abs=1e-3)


def test_general_domain_iteration_is_not_exportable_until_retrained_compact(
    jobs_live_server,
    tiny_training,  # noqa: F811
    session,
):
    trainer, _ = _clients(jobs_live_server.url, make_token(session, make_requester(session)))
    project, _, iteration = _trained_project(trainer, "Not compact", domain_id=GENERAL_DOMAIN)
    assert iteration.exportable is False and iteration.exportable_to == []
    with pytest.raises(CustomVisionErrorException) as refused:
        trainer.export_iteration(project.id, iteration.id, "ONNX")
    assert refused.value.response.status_code == 400
    assert refused.value.error.code == "BadRequestExportValidationFailed"
    assert "compact" in refused.value.message

    # As in Azure: switch the project to a compact domain, then train again to export.
    settings = trainer.get_project(project.id)
    settings.settings.target_export_platforms = ["CoreML"]
    settings.settings.domain_id = COMPACT_DOMAIN
    with pytest.raises(CustomVisionErrorException) as coreml:
        trainer.update_project(project.id, settings)
    assert coreml.value.error.code == "BadRequestProjectUnsupportedExportPlatform"
    settings.settings.target_export_platforms = ["ONNX"]
    updated = trainer.update_project(project.id, settings)
    assert updated.settings.domain_id == COMPACT_DOMAIN
    assert updated.settings.target_export_platforms == ["ONNX"]
    old = trainer.get_iteration(project.id, iteration.id)
    assert old.domain_id == GENERAL_DOMAIN and old.exportable is False
    with pytest.raises(CustomVisionErrorException) as still:
        trainer.export_iteration(project.id, iteration.id, "ONNX")
    assert "train again" in still.value.message
    retrained, _ = _wait_for(trainer, project.id, trainer.train_project(project.id))
    assert retrained.domain_id == COMPACT_DOMAIN and retrained.exportable_to == ["ONNX"]


def test_image_performances_page_and_filter_the_validation_images(
    jobs_live_server,
    tiny_training,  # noqa: F811
    session,
):
    trainer, _ = _clients(jobs_live_server.url, make_token(session, make_requester(session)))
    project, tags, iteration = _trained_project(trainer, "Per image")
    # Training kept each validation image's probabilities beside the checkpoint.
    session.expire_all()
    model = session.exec(select(TrainedModel).order_by(TrainedModel.id.desc())).first()
    assert (Path(model.checkpoint_dir) / "val_predictions.json").is_file()

    total = trainer.get_image_performance_count(project.id, iteration.id)
    assert total == 9  # 20 % of 15 images per tag held out, 3 tags
    everything = trainer.get_image_performances(project.id, iteration.id, take=256)
    assert len(everything) == total
    tagged = {image.id: image.tags[0].tag_name for image in everything}
    for image in everything:
        probabilities = [p.probability for p in image.predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
        assert {p.tag_name: p.tag_id for p in image.predictions} == {
            t.name: t.id for t in tags.values()
        }
        assert image.width == 16 and image.image_uri.startswith(jobs_live_server.url)

    # Paging (newest first by default) and oldest first.
    pages = [
        trainer.get_image_performances(project.id, iteration.id, take=4, skip=skip)
        for skip in (0, 4, 8)
    ]
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [i.id for page in pages for i in page] == [i.id for i in everything]
    oldest = trainer.get_image_performances(project.id, iteration.id, order_by="Oldest", take=256)
    assert [i.id for i in oldest] == [i.id for i in reversed(everything)]

    # Tag filter: images tagged with any of the tags.
    seven = tags["7"].id
    only_seven = trainer.get_image_performances(project.id, iteration.id, tag_ids=[seven])
    assert {i.tags[0].tag_id for i in only_seven} == {seven}
    assert len(only_seven) == sum(1 for name in tagged.values() if name == "digit 7")
    assert trainer.get_image_performance_count(project.id, iteration.id, tag_ids=[seven]) == len(
        only_seven
    )
    two = trainer.get_image_performance_count(
        project.id, iteration.id, tag_ids=[seven, tags["0"].id]
    )
    assert two == sum(1 for name in tagged.values() if name in ("digit 7", "digit 0"))
    with pytest.raises(CustomVisionErrorException) as unknown:
        trainer.get_image_performances(
            project.id, iteration.id, tag_ids=["00000000-0000-0000-0000-000000000000"]
        )
    assert unknown.value.error.code == "NotFoundTag"


def test_training_with_nothing_new_is_refused_unless_forced(
    jobs_live_server,
    tiny_training,  # noqa: F811
    session,
):
    trainer, _ = _clients(jobs_live_server.url, make_token(session, make_requester(session)))
    project, tags, first = _trained_project(trainer, "Not needed")

    # An untagged image is no new training data.
    untagged = trainer.create_images_from_data(project.id, digit_pngs()["3"][0])
    assert untagged.is_batch_successful
    with pytest.raises(CustomVisionErrorException) as not_needed:
        trainer.train_project(project.id)
    assert not_needed.value.response.status_code == 400
    assert not_needed.value.error.code == "BadRequestTrainingNotNeeded"
    assert "forceTrain" in not_needed.value.message
    assert [i.id for i in trainer.get_iterations(project.id)] == [first.id]

    forced = trainer.train_project(project.id, force_train=True)
    forced, _ = _wait_for(trainer, project.id, forced)
    assert forced.name == "Iteration 2"

    # Tagging that image is new data: training is needed again.
    image_id = untagged.images[0].image.id
    entry = ImageTagCreateEntry(image_id=image_id, tag_id=tags["7"].id)
    assert trainer.create_image_tags(project.id, [entry]).created
    third, _ = _wait_for(trainer, project.id, trainer.train_project(project.id))
    assert third.name == "Iteration 3"


def test_operations_crowdlab_does_not_serve_answer_in_azures_shape(jobs_live_server, session):
    key = make_token(session, make_requester(session))
    trainer, predictor = _clients(jobs_live_server.url, key)
    project = trainer.create_project("Shapes")

    with pytest.raises(CustomVisionErrorException) as suggested:
        trainer.suggest_tags_and_regions(project.id, "00000000-0000-0000-0000-000000000001", [])
    assert suggested.value.response.status_code == 400
    assert suggested.value.error.code == "BadRequestNotSupported"
    assert "suggest_tags_and_regions" in suggested.value.message
    with pytest.raises(CustomVisionErrorException) as exported:
        trainer.export_project(project.id)
    assert exported.value.error.code == "BadRequestNotSupported"

    from azure.cognitiveservices.vision.customvision.prediction.models import (
        CustomVisionErrorException as PredictionError,
    )

    with pytest.raises(PredictionError) as detect:
        predictor.detect_image(project.id, "model", b"\x89PNG")
    assert detect.value.error.code == "BadRequestNotSupported"
    assert "object detection" in detect.value.message

    nowhere = httpx.get(
        f"{jobs_live_server.url}/customvision/v3.4-preview/training/nowhere",
        headers={"Training-Key": key},
    )
    assert nowhere.status_code == 404
    assert nowhere.json()["code"] == "NotFound"
    assert "GET /customvision/v3.4-preview/training/nowhere" in nowhere.json()["message"]
    wrong_method = httpx.put(
        f"{jobs_live_server.url}/customvision/v3.4-preview/training/projects",
        headers={"Training-Key": key},
    )
    assert set(wrong_method.json()) == {"code", "message"}
