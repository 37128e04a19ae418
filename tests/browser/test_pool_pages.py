"""Pages that lost state or words: the collection preview, a running training's status, the
pool's tabs on its sub-pages, labelers' names in review, and a ban rule's missing reason."""

from __future__ import annotations

from app.db.models import Job, ModelStatus, TrainedModel
from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.ml import trained_models
from app.services.quality.presets import image_classification_preset
from tests.browser.conftest import log_in
from tests.builders.concurrency import in_own_session
from tests.builders.models import make_aggregated_run, make_collection
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler, make_requester


def test_collection_preview_loads_before_the_name_is_filled(page, session):
    requester = make_requester(session, email="preview@example.com")
    make_aggregated_run(session, requester)
    session.commit()
    log_in(page, "preview@example.com")
    page.goto("/requester/collections/from-aggregation")
    assert page.input_value("#f-name") == ""
    page.wait_for_function(
        "!document.getElementById('preview').innerText.includes('Loading')", timeout=10_000
    )
    assert "0" in page.inner_text("#preview") and "1" in page.inner_text("#preview")


def test_training_status_follows_the_running_job(page, session):
    requester = make_requester(session, email="status@example.com")
    collection = make_collection(session, requester, per_class=4)
    model = trained_models.start_training(
        session,
        requester=requester,
        collection_id=collection.id,
        settings={"arch": "test_resnet", "epochs": 1, "image_size": 16, "device": "cpu"},
        dispatch=False,  # no worker: the test moves the job itself
    )
    log_in(page, "status@example.com")
    page.goto(f"/requester/models/{model.id}")
    assert page.inner_text("#model-status") == "queued"

    job = session.get(Job, model.job_id)
    job.status, job.progress, job.message = "running", 0.53, "Epoch 1/1"
    row = session.get(TrainedModel, model.id)
    row.status = ModelStatus.TRAINING
    session.add_all([job, row])
    session.commit()
    page.wait_for_function(
        "document.querySelector('.job-progress').innerText.includes('53% · running')"
    )
    page.wait_for_function("document.getElementById('model-status').innerText === 'training'")
    assert page.inner_text("#current-iteration-status") == "training"


def test_pool_sub_pages_keep_tabs_breadcrumbs_names_and_readable_errors(page, session):
    requester = make_requester(session, email="tabs@example.com")
    project = make_project(session, requester, name="Pets")
    pool = make_pool(
        session, requester, project, name="Cats pool", overlap=1, general_per_suite=2,
        control_per_suite=0, auto_accept=False,
    )  # fmt: skip
    add_tasks(session, pool, general=2)
    open_pool(session, requester, pool)
    alice = make_labeler(session, email="alice@example.com", name="Alice Example")

    def work(s):
        suite = assign_next_suite(s, labeler=alice, pool_id=pool.id)
        return submit_assignment(
            s, labeler=alice, assignment_id=suite.assignment_id, answers={"0": "cat", "1": "cat"},
            by_position=True,
        )  # fmt: skip

    assert in_own_session(work).status == "submitted"
    log_in(page, "tabs@example.com")

    tabs = {"quality": "Quality rules", "review": "Review", "aggregations": "Aggregation"}
    for path, tab in tabs.items():
        page.goto(f"/requester/pools/{pool.id}/{path}")
        assert page.inner_text("#pool-tabs a.active") == tab
        crumbs = page.inner_text("#pool-breadcrumbs")
        assert "Pets" in crumbs and "Cats pool" in crumbs

    page.goto(f"/requester/pools/{pool.id}/review")
    assert "Alice Example" in page.inner_text("table")
    assert f"labeler #{alice.id}" not in page.inner_text("table")

    # A ban rule saved without its private reason: the error speaks words, not field names.
    session.expire_all()
    pool_row = session.get(type(pool), pool.id)
    pool_row.quality_rules = [
        c
        for c in image_classification_preset()
        if c["collector_config"]["type"] == "ASSIGNMENT_SUBMIT_TIME"
    ]
    session.add(pool_row)
    session.commit()
    page.goto(f"/requester/pools/{pool.id}/quality")
    page.fill("input[name$='-private_comment']", "")
    page.click("#rules-form button[type=submit]")
    error = page.inner_text("small.error[data-field=private_comment]")
    assert "private_comment" not in page.inner_text("#rules")
    assert "private reason" in error.lower()
