"""The Custom Vision API over HTTP without the SDK: Crowdlab objects seen as projects, edge cases.

The SDK quickstart itself runs in tests/clients/test_customvision_sdk.py.
"""

from __future__ import annotations

import base64

import pytest

from app.compat.customvision.domain import get_project, iteration_uuid, project_uuid
from app.db.models import ModelStatus, TrainedModel
from app.services.ml import trained_models
from tests.builders.models import digit_pngs, make_collection, make_trained_model
from tests.builders.users import make_token

T = "/customvision/v3.3/training"
P = "/customvision/v3.0/prediction"


@pytest.fixture
def cv(make_client, session, requester):
    client = make_client()
    client.headers["Training-Key"] = make_token(session, requester)
    return client


def _project(cv, name="Pets") -> dict:
    response = cv.post(f"{T}/projects", params={"name": name})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_crowdlab_collection_and_published_model_are_a_project_and_published_iteration(
    cv, client, session, requester
):
    collection = make_collection(session, requester, name="Digits", per_class=6)
    model = make_trained_model(session, requester, collection)
    model, key = trained_models.publish_model(
        session, requester=requester, model_id=model.id, name="digits-v1"
    )
    pid = project_uuid(collection.id)

    projects = cv.get(f"{T}/projects").json()
    assert [(p["id"], p["name"], p["status"]) for p in projects] == [(pid, "Digits", "Succeeded")]
    assert projects[0]["created"].endswith("Z")
    tags = cv.get(f"{T}/projects/{pid}/tags").json()
    assert [(t["name"], t["imageCount"]) for t in tags] == [("0", 6), ("1", 6), ("2", 6)]
    iterations = cv.get(f"{T}/projects/{pid}/iterations").json()
    assert [(i["id"], i["status"], i["publishName"]) for i in iterations] == [
        (iteration_uuid(model.id), "Completed", "digits-v1")
    ]
    perf = cv.get(
        f"{T}/projects/{pid}/iterations/{iterations[0]['id']}/performance",
        params={"threshold": 0.9},
    ).json()
    expected = next(p for p in model.metrics["threshold_curve"] if p["threshold"] == 0.9)
    assert perf["precision"] == expected["precision"]
    assert perf["recall"] == expected["recall"]
    assert len(perf["perTagPerformance"]) == 10

    # The model's own Crowdlab prediction key works as a Prediction-Key, with a raw body.
    answer = client.post(
        f"{P}/{pid}/classify/iterations/digits-v1/image/nostore",
        content=digit_pngs()["1"][3],
        headers={"Prediction-Key": key, "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["iteration"] == iteration_uuid(model.id)
    assert sum(p["probability"] for p in body["predictions"]) == pytest.approx(1.0, abs=1e-4)
    assert {p["tagName"] for p in body["predictions"]} == {str(d) for d in range(10)}


def test_tags_rename_delete_and_image_tagging(cv):
    pid = _project(cv)["id"]
    cat = cv.post(f"{T}/projects/{pid}/tags", params={"name": "cat"}).json()
    clash = cv.post(f"{T}/projects/{pid}/tags", params={"name": "cat"})
    assert clash.status_code == 400
    assert clash.json()["code"] == "BadRequestTagNameNotUnique"

    files = [("imageData", (f"{n}.png", digit_pngs()["3"][n], "image/png")) for n in range(3)]
    created = cv.post(f"{T}/projects/{pid}/images", files=files)
    assert created.status_code == 200
    ids = [i["image"]["id"] for i in created.json()["images"]]
    tagged = cv.post(
        f"{T}/projects/{pid}/images/tags",
        json={"tags": [{"imageId": ids[0], "tagId": cat["id"]}]},
    )
    assert [t["imageId"] for t in tagged.json()["created"]] == [ids[0]]
    assert cv.get(f"{T}/projects/{pid}/images/tagged/count").json() == 1

    renamed = cv.patch(f"{T}/projects/{pid}/tags/{cat['id']}", json={"name": "kitten"})
    assert (renamed.json()["id"], renamed.json()["name"]) == (cat["id"], "kitten")
    images = cv.get(f"{T}/projects/{pid}/images/id", params={"imageIds": ids[0]}).json()
    assert images[0]["tags"][0]["tagName"] == "kitten"

    untag = cv.delete(
        f"{T}/projects/{pid}/images/tags", params={"imageIds": ids[0], "tagIds": cat["id"]}
    )
    assert untag.status_code == 204
    assert cv.delete(f"{T}/projects/{pid}/tags/{cat['id']}").status_code == 204
    assert cv.get(f"{T}/projects/{pid}/images/untagged/count").json() == 3
    assert cv.delete(f"{T}/projects/{pid}/images", params={"allImages": "true"}).status_code == 204
    assert cv.get(f"{T}/projects/{pid}/images/count").json() == 0


def test_a_project_made_through_the_api_shows_in_the_web_console(
    cv, requester_client, session, requester
):
    project = _project(cv, name="Sketches")
    tag = cv.post(f"{T}/projects/{project['id']}/tags", params={"name": "circle"}).json()
    cv.post(
        f"{T}/projects/{project['id']}/images",
        params={"tagIds": tag["id"]},
        files={"imageData": ("c.png", digit_pngs()["0"][0], "image/png")},
    )
    collection = get_project(session, requester=requester, project_id=project["id"])
    listing = requester_client.get("/requester/collections")
    assert "Sketches" in listing.text and "customvision" in listing.text
    detail = requester_client.get(f"/requester/collections/{collection.id}")
    assert detail.status_code == 200
    assert "circle" in detail.text


def test_bad_images_get_their_own_status(cv):
    pid = _project(cv)["id"]
    batch = {
        "images": [
            {"name": "ok.png", "contents": _b64(digit_pngs()["5"][0])},
            {"name": "text.png", "contents": _b64(b"not an image")},
            {"name": "broken", "contents": "%%%"},
        ]
    }
    response = cv.post(f"{T}/projects/{pid}/images/files", json=batch)
    assert response.status_code == 207
    statuses = [(i["sourceUrl"], i["status"]) for i in response.json()["images"]]
    assert statuses == [
        ('"ok.png"', "OK"),
        ('"text.png"', "ErrorImageFormat"),
        ('"broken"', "ErrorImageFormat"),
    ]


def test_a_failed_training_run_is_a_failed_iteration_with_its_reason(cv, session, requester):
    project = _project(cv)
    collection_id = get_project(session, requester=requester, project_id=project["id"]).id
    row = TrainedModel(
        owner_id=requester.id,
        collection_id=collection_id,
        arch="test_resnet",
        name=f"{project['name']} · iteration 1",
        status=ModelStatus.FAILED,
        message="CUDA out of memory",
    )
    session.add(row)
    session.commit()
    iteration = cv.get(f"{T}/projects/{project['id']}/iterations/{iteration_uuid(row.id)}").json()
    assert (iteration["name"], iteration["status"]) == ("Iteration 1", "Failed")
    assert iteration["trainingErrorDetails"] == "CUDA out of memory"
    perf = cv.get(f"{T}/projects/{project['id']}/iterations/{iteration['id']}/performance")
    assert perf.json()["code"] == "BadRequestIterationIsNotTrained"


def test_errors_come_back_in_custom_vision_shape(cv, client):
    assert cv.get(f"{T}/projects/not-a-guid").json()["code"] == "BadRequestInvalidIds"
    missing = cv.get(f"{T}/projects/00000000-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.json()["code"]) == (404, "NotFoundProject")
    assert cv.get("/customvision/v2.0/training/projects").status_code == 404
    anonymous = client.get(f"{T}/projects")
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"code", "message"}
    detection = cv.post(
        f"{T}/projects",
        params={"name": "Boxes", "domainId": "da2e3a8a-40a5-4171-82f4-58522f70fbc1"},
    )
    assert detection.json()["code"] == "BadRequestProjectUnknownDomain"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_same_publish_name_in_two_projects_does_not_clash(cv, session, requester):
    names = []
    for title in ("Digits A", "Digits B"):
        collection = make_collection(session, requester, name=title, per_class=5)
        model = make_trained_model(session, requester, collection)
        pid, iid = project_uuid(collection.id), iteration_uuid(model.id)
        for _ in range(2):  # idempotent
            published = cv.post(
                f"{T}/projects/{pid}/iterations/{iid}/publish",
                params={"publishName": "classifyModel", "predictionId": "/subscriptions/x"},
            )
            assert (published.status_code, published.json()) == (200, True)
        answer = cv.post(
            f"{P}/{pid}/classify/iterations/classifyModel/image",
            files={"imageData": ("d.png", digit_pngs()["7"][0], "image/png")},
            headers={"Prediction-Key": cv.headers["Training-Key"]},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["iteration"] == iid
        session.expire_all()
        names.append(session.get(TrainedModel, model.id).published_name)
    assert names == ["classifyModel", "Digits B/classifyModel"]


def test_a_second_export_while_one_runs_is_refused_and_a_done_one_is_reused(cv, session, requester):
    from app.compat.customvision.domain import set_extra
    from app.db.models import Job, JobStatus
    from app.services.ml.exports import EXPORT_JOB_KIND

    collection = make_collection(session, requester, name="Compact digits", per_class=6)
    set_extra(collection, domainId="0732100f-1a38-4e49-a514-c9b44c697ab5")  # General (compact)
    session.add(collection)
    model = make_trained_model(session, requester, collection)
    url = f"{T}/projects/{project_uuid(collection.id)}/iterations/{iteration_uuid(model.id)}/export"

    queued = Job(
        owner_id=requester.id,
        kind=EXPORT_JOB_KIND,
        status=JobStatus.QUEUED,
        payload={"model_id": model.id, "format": "onnx"},
    )
    session.add(queued)
    session.commit()
    listed = cv.get(url).json()
    assert [(e["platform"], e["status"], e["downloadUri"]) for e in listed] == [
        ("ONNX", "Exporting", None)
    ]
    busy = cv.post(url, params={"platform": "ONNX"})
    assert busy.status_code == 400
    assert busy.json()["code"] == "BadRequestExportAlreadyInProgress"

    session.delete(queued)  # the export ended without a file: a new one is made
    session.commit()
    done = cv.post(url, params={"platform": "ONNX"}).json()  # jobs run at once in tests
    assert done["status"] == "Done" and "sig=" in done["downloadUri"]
    again = cv.post(url, params={"platform": "ONNX"}).json()
    assert again["status"] == "Done"  # the finished export is reused, not redone
    assert len(cv.get(url).json()) == 1
