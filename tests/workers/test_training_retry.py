"""A training job whose worker died at epoch 3 is retried and resumes at epoch 3."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.db.engine import session_scope
from app.db.models import Job, JobStatus, ModelStatus, TrainedModel
from app.db.types import utcnow
from app.services.jobs.records import job_work_dir
from app.services.ml import trained_models
from model.resume import resumable_epoch
from tests.builders.models import TINY_SETTINGS, make_collection, quiet_torch_threads
from workers.periodic import run_periodic
from workers.registry import execute_job


class WorkerKilled(BaseException):
    """Stands in for the worker process dying: nothing in the job runner catches it."""


@pytest.fixture(autouse=True)
def _one_thread():
    quiet_torch_threads()


def test_training_killed_at_epoch_3_resumes_there_on_retry(session, requester, monkeypatch):
    import workers.jobs.training as training_job

    collection = make_collection(session, requester, per_class=12, val_fraction=0.25)
    model = trained_models.start_training(
        session,
        requester=requester,
        collection_id=collection.id,
        settings={**TINY_SETTINGS, "epochs": 4},
        dispatch=False,
    )
    job_id = model.job_id
    trained_epochs: list[int] = []
    killed: list[bool] = []
    real_message = training_job.progress_message

    def dies_in_epoch_3(event: dict) -> str:
        trained_epochs.append(event["epoch"])
        if event["epoch"] == 3 and not killed:
            killed.append(True)
            raise WorkerKilled
        return real_message(event)

    monkeypatch.setattr(training_job, "progress_message", dies_in_epoch_3)
    with pytest.raises(WorkerKilled):
        execute_job(job_id)
    session.expire_all()
    assert session.get(Job, job_id).status == JobStatus.RUNNING  # as a dead worker leaves it
    assert resumable_epoch(job_work_dir(job_id) / "train") == 2

    with session_scope() as s:  # ... and its heartbeat stops
        s.execute(update(Job).where(Job.id == job_id)
                  .values(heartbeat_at=utcnow() - timedelta(minutes=5)))  # fmt: skip
        s.commit()
    trained_epochs.clear()
    assert run_periodic()["recover_stale_jobs"]["retried"] == 1

    session.expire_all()
    row = session.get(Job, job_id)
    assert row.status == JobStatus.SUCCEEDED, row.message
    assert row.attempts == 2
    assert set(trained_epochs) == {3, 4}  # epochs 1 and 2 were not trained again
    model = session.get(TrainedModel, model.id)
    assert model.status == ModelStatus.COMPLETED
    assert [h["epoch"] for h in model.metrics["history"]] == [1, 2, 3, 4]
    assert "resumed after epoch 2 of 4" in model.message
    assert not job_work_dir(job_id).exists()  # the resume state goes with the job


def test_cancelling_a_training_whose_worker_died_cancels_it_at_once(session, requester):
    from app.services.jobs.records import mark_running

    collection = make_collection(session, requester, per_class=3)
    model = trained_models.start_training(
        session,
        requester=requester,
        collection_id=collection.id,
        settings=TINY_SETTINGS,
        dispatch=False,
    )
    assert mark_running(model.job_id) is not None
    with session_scope() as s:  # the worker died ten minutes ago
        s.execute(
            update(Job)
            .where(Job.id == model.job_id)
            .values(heartbeat_at=utcnow() - timedelta(minutes=10))
        )
        s.commit()
    cancelled = trained_models.cancel_training(session, requester=requester, model_id=model.id)
    assert cancelled.status == ModelStatus.CANCELLED
    assert "stopped responding" in cancelled.message
    session.expire_all()
    assert session.get(Job, model.job_id).status == JobStatus.CANCELLED
