"""The Custom Vision SDK (3.1.1) multilabel quickstart, unchanged, against Crowdlab: create a
Multilabel project, tag images with several tags, train, publish, classify."""

from __future__ import annotations

from azure.cognitiveservices.vision.customvision.training.models import (
    ImageFileCreateBatch,
    ImageFileCreateEntry,
)

from tests.builders.users import make_requester, make_token
from tests.clients.test_customvision_sdk import (  # noqa: F401  (fixtures)
    PREDICTION_RESOURCE,
    _clients,
    _wait_for,
    tiny_training,
)
from tests.multilabel.builders import colour_png, tag_sets


def test_multilabel_quickstart(jobs_live_server, tiny_training, session, monkeypatch):  # noqa: F811
    # no DataLoader worker processes: on a busy 2-core machine they starve the job thread
    monkeypatch.setenv(
        "CROWDLAB_CV_TRAIN_SETTINGS",
        '{"augmentation": "none", "lr": 0.01, "batch_size": 8, "num_workers": 0}',
    )
    requester = make_requester(session)
    trainer, predictor = _clients(jobs_live_server.url, make_token(session, requester))

    project = trainer.create_project("Colours", classification_type="Multilabel")
    assert project.settings.classification_type == "Multilabel"
    tags = {name: trainer.create_tag(project.id, name) for name in ("red", "green", "blue")}

    sets = [s for s in tag_sets(90, seed=7) if s][:72]
    entries = [
        ImageFileCreateEntry(
            name=f"{i}.png", contents=colour_png(tag_set, i), tag_ids=[tags[t].id for t in tag_set]
        )
        for i, tag_set in enumerate(sets)
    ]
    summary = trainer.create_images_from_files(
        project.id, ImageFileCreateBatch(images=entries[:36])
    )
    rest = trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries[36:]))
    assert summary.is_batch_successful and rest.is_batch_successful
    several = next(i for i, s in enumerate(sets) if len(s) >= 2)
    assert {t.tag_name for t in summary.images[several].image.tags} == set(sets[several])
    counts = {t.name: t.image_count for t in trainer.get_tags(project.id)}
    assert counts == {name: sum(name in s for s in sets) for name in tags}
    only_red = trainer.get_tagged_images(project.id, tag_ids=[tags["red"].id], take=256)
    assert len(only_red) == counts["red"]

    iteration = trainer.train_project(project.id)
    iteration, _seen = _wait_for(trainer, project.id, iteration, seconds=600.0)
    assert iteration.classification_type == "Multilabel"
    performance = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.5)
    assert {t.name for t in performance.per_tag_performance} == set(tags)
    assert 0.0 <= performance.precision <= 1.0 and 0.0 <= performance.recall <= 1.0

    trainer.publish_iteration(project.id, iteration.id, "tagsModel", PREDICTION_RESOURCE)
    results = predictor.classify_image(project.id, "tagsModel", colour_png(["red", "blue"], 5000))
    by_tag = {p.tag_name: p.probability for p in results.predictions}
    assert set(by_tag) == set(tags)  # every tag, each with its own probability
    assert sum(by_tag.values()) > 1.0  # sigmoid outputs: they do not sum to 1
    assert by_tag["red"] > 0.5 and by_tag["blue"] > 0.5 and by_tag["green"] < 0.5
