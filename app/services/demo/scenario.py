"""The demo scenario: fill an empty instance with a whole marketplace loop.

A requester, simulated labelers of different skill, a "Handwritten digits" project built
from scikit-learn's bundled digits, a pool with control tasks and the image-classification
quality preset, suites labeled through the assignment engine (a too-fast labeler is banned
by the fast-responses rule), a Dawid-Skene aggregation with its TSV, a collection, a small
trained model and a published one; then a second pool of new digits labeled with dynamic
overlap (one answer per task, up to three until 90 % confident) with the published model
answering every task first, so the demo shows what the model in the loop saves. Everything
goes through the services the web uses;
the only liberty taken is time: a simulated labeler's suite is dated back by the seconds
it "took" before it is submitted, so the submit-time rule sees realistic durations.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session, func, select

from app.db.models import Answer, Job, MediaFile, Pool, Role, User
from app.errors import Conflict, CrowdlabError, NotFound, ValidationFailed
from app.services.accounts import users
from app.services.aggregations import runs as aggregations
from app.services.demo.crowd import DOMAIN, DemoLabeler, create_labelers, simulate_labeling
from app.services.demo.data import CLASSES, digit_images, zip_of_classes
from app.services.ml import collection_aggregation, trained_models
from app.services.money import ledger
from app.services.projects import (
    control_tasks,
    overlap_savings,
    pool_model,
    pools,
    projects,
    uploads,
)
from app.services.projects.pool_model import MODEL_JOB_KIND
from app.settings import get_settings

Progress = Callable[[float, str], None]

REQUESTER_EMAIL = f"requester@{DOMAIN}"
DEFAULT_PASSWORD = "crowdlab-demo"
PROJECT_NAME = "Handwritten digits"
PUBLISHED_NAME = "digits"
MIN_LABELERS, MAX_LABELERS = 5, 9
LOOP_CONFIDENCE = 0.9  # the second pool buys answers until a task is this confident
JOB_KIND = "demo"


@dataclass
class DemoSize:
    """How big the demo is (the defaults take well under two minutes on two CPU cores)."""

    per_class: int = 15
    control_per_class: int = 2
    image_size: int = 32
    general_per_suite: int = 9
    overlap: int = 3
    arch: str = "resnet10t"
    epochs: int = 8
    train_image_size: int = 32


@dataclass
class DemoResult:
    """What the demo created, for the CLI and the page to report."""

    requester_email: str
    password: str
    labelers: list[DemoLabeler]
    project_id: int = 0
    pool_id: int = 0
    tasks: dict[str, int] = field(default_factory=dict)
    suites: int = 0
    answers: int = 0
    spent_cents: int = 0
    run_id: int | None = None
    tsv_path: str | None = None
    tsv_rows: int = 0
    accuracy: float | None = None
    collection_id: int | None = None
    model_id: int | None = None
    model_accuracy: float | None = None
    published_name: str | None = None
    prediction_key: str | None = None
    # the second pool: dynamic overlap with the model answering first
    loop_pool_id: int | None = None
    loop_tasks: int = 0
    loop_answers: int = 0  # answers bought on its general tasks
    loop_fixed_answers: int = 0  # what fixed overlap would have bought
    loop_accuracy: float | None = None
    loop_saved_cents: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """JSON-able form (the demo job's result)."""
        data = dict(self.__dict__)
        data["labelers"] = [dict(item.__dict__) for item in self.labelers]
        return data


def has_users(session: Session) -> bool:
    """Whether the instance has any account (the demo only fills an empty one)."""
    return session.exec(select(func.count()).select_from(User)).one() > 0


def _reporter(session: Session, progress: Progress | None) -> Progress:
    """Report progress with no transaction open (a job's reporter writes in its own)."""

    def report(fraction: float, message: str = "") -> None:
        session.commit()
        if progress is not None:
            progress(fraction, message)

    return report


def run_demo(
    session: Session,
    *,
    labelers: int = 6,
    train: bool = True,
    size: DemoSize | None = None,
    password: str = DEFAULT_PASSWORD,
    seed: int = 0,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the whole demo on an empty instance (``Conflict`` when there are accounts)."""
    size = size or DemoSize()
    report = _reporter(session, progress)
    started = time.monotonic()
    if not MIN_LABELERS <= labelers <= MAX_LABELERS:
        raise ValidationFailed(
            f"The demo runs with {MIN_LABELERS} to {MAX_LABELERS} labelers "
            "(after the bans, three careful ones must remain to fill overlap 3).",
            errors={"labelers": f"Between {MIN_LABELERS} and {MAX_LABELERS}."},
        )
    if has_users(session):
        raise Conflict(
            "This instance already has accounts; the demo only fills an empty database "
            f"(demo log-in: {REQUESTER_EMAIL} / {password} if it ran before)."
        )
    rng = random.Random(seed)
    report(0.0, "Creating accounts")
    requester = users.create_user(
        session, email=REQUESTER_EMAIL, password=password, role=Role.REQUESTER, name="Demo lab"
    )
    people = create_labelers(session, count=labelers, password=password)
    result = DemoResult(requester_email=REQUESTER_EMAIL, password=password, labelers=people)

    report(0.04, "Creating the project and the pool")
    pool, truth = _set_up_pool(session, requester=requester, size=size, result=result)
    report(0.1, f"Launched pool {pool.name!r}")

    simulate_labeling(session, pool=pool, people=people, truth=truth, rng=rng, report=report)
    session.expire_all()
    pool = session.get(Pool, pool.id)
    result.suites = sum(p.suites for p in people)
    result.answers = session.exec(
        select(func.count()).select_from(Answer).where(Answer.pool_id == pool.id)
    ).one()
    result.spent_cents = ledger.get_pool_spent(session, pool=pool)

    report(0.55, "Aggregating with Dawid-Skene")
    _aggregate(session, requester=requester, pool=pool, truth=truth, result=result)
    report(0.6, "Creating a collection from the aggregation")
    collection = collection_aggregation.create_collection_from_aggregation(
        session,
        requester=requester,
        run_id=result.run_id,
        name="Handwritten digits (crowd labels)",
        min_confidence=0.5,
        include_control=True,
        description="Dawid-Skene labels of the demo pool at 50% confidence or more.",
    )
    result.collection_id = collection.id
    if train:
        _train_and_publish(session, requester=requester, size=size, result=result, report=report)
        report(0.9, "A second pool: dynamic overlap with the model answering first")
        _model_in_the_loop(
            session, requester=requester, size=size, result=result, people=people, rng=rng
        )
    result.seconds = round(time.monotonic() - started, 1)
    report(1.0, f"Demo ready in {result.seconds:.0f} s")
    return result


def _set_up_pool(
    session: Session, *, requester: User, size: DemoSize, result: DemoResult
) -> tuple[Pool, dict[int, str]]:
    project = projects.create_project(
        session,
        requester=requester,
        name=PROJECT_NAME,
        question="Which digit is this?",
        public_description="Tell handwritten digits apart: one small image, ten buttons.",
        instructions=(
            "Look at the image and press the digit you see.\n\n"
            "* Keys **1**–**9** pick the first nine options; click **0**.\n"
            "* When unsure, choose the most likely digit."
        ),
        options=[(label, label) for label in CLASSES],
    )
    result.project_id = project.id
    pool = pools.create_pool(
        session,
        requester=requester,
        project_id=project.id,
        name="Digits, batch 1",
        overlap=size.overlap,
        reward_cents=3,
        general_per_suite=size.general_per_suite,
        control_per_suite=1,
        use_quality_preset=True,
        public_description="Ten quick digits per suite.",
    )
    result.pool_id = pool.id
    control = digit_images(size=size.image_size, per_class=size.control_per_class)
    general = digit_images(
        size=size.image_size, per_class=size.per_class, offset=size.control_per_class
    )
    truth = _upload(session, requester=requester, pool=pool, control=control, general=general)
    result.tasks = pools.task_counts(session, pool=pool)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    ledger.top_up(session, user=requester, amount_cents=max(review.total_cents * 3, 2000))
    # the simulated crowd's bans re-issue tasks: a margin as large as the estimate keeps
    # the scripted run from stopping at "more money needed"
    pool = pools.launch_pool(session, requester=requester, pool_id=pool.id, margin_percent=100)
    return pool, truth


def _upload(
    session: Session,
    *,
    requester: User,
    pool: Pool,
    control: dict[str, list[bytes]],
    general: dict[str, list[bytes]],
) -> dict[int, str]:
    """Upload the control digits as a ZIP of class folders and the general ones as images;
    returns each general task's true digit (the simulation's, never the labelers')."""
    # Control tasks: a ZIP of class folders (folder = correct answer), as on the pool page.
    uploads.submit_upload(
        session,
        requester=requester,
        pool_id=pool.id,
        kind="zip",
        files=[("control.zip", zip_of_classes(control))],
    )
    files = [
        (f"digit-{n:04d}.png", png)
        for n, png in enumerate(png for pngs in general.values() for png in pngs)
    ]
    outcome = uploads.submit_upload(
        session, requester=requester, pool_id=pool.id, kind="images", files=files
    )
    if outcome.job is not None:
        _finish_job(session, outcome.job.id)
    # The simulation knows each image's digit; labelers never do.
    label_of_sha = {
        hashlib.sha256(png).hexdigest(): label for label, pngs in general.items() for png in pngs
    }
    tasks, _ = control_tasks.list_tasks(
        session, requester=requester, pool_id=pool.id, kind="general", limit=100_000
    )
    truth: dict[int, str] = {}
    for task in tasks:
        media = session.get(MediaFile, task.media_id)
        truth[task.id] = label_of_sha[media.sha256]
    return truth


def _aggregate(
    session: Session, *, requester: User, pool: Pool, truth: dict[int, str], result: DemoResult
) -> None:
    run = aggregations.start_aggregation(session, requester=requester, pool_id=pool.id, method="ds")
    _finish_job(session, run.job_id)
    session.expire_all()
    run = aggregations.get_run(session, requester=requester, run_id=run.id)
    aggregations.require_finished(run)
    tsv = aggregations.build_results_tsv(session, run=run)
    folder = get_settings().data_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"aggregation-{run.id}.tsv"
    path.write_text(tsv, encoding="utf-8")
    result.run_id, result.tsv_path = run.id, str(path.resolve())
    rows = aggregations.iter_labels(session, run=run)
    labels = {row.task_id: row.value for row in rows}
    result.tsv_rows = max(0, len(tsv.strip().splitlines()) - 1)
    scored = [labels.get(task_id) == digit for task_id, digit in truth.items()]
    result.accuracy = round(sum(scored) / len(scored), 3) if scored else None


def _train_and_publish(
    session: Session, *, requester: User, size: DemoSize, result: DemoResult, report: Progress
) -> None:
    report(0.62, f"Training {size.arch} ({size.epochs} epochs)")
    model = trained_models.start_training(
        session,
        requester=requester,
        collection_id=result.collection_id,
        settings={
            "arch": size.arch,
            "epochs": size.epochs,
            "batch_size": 32,
            "lr": 3e-3,
            "image_size": size.train_image_size,
            "augmentation": "none",
            "pretrained": False,
            "device": "auto",
        },
        dispatch=False,
    )
    result.model_id = model.id
    _finish_job(session, model.job_id, report=report, span=(0.62, 0.88))
    session.expire_all()
    model = trained_models.get_model(session, requester=requester, model_id=model.id)
    if model.status != "completed":
        raise CrowdlabError(f"Training {model.status}: {model.message}")
    result.model_accuracy = (model.metrics or {}).get("accuracy")
    report(0.89, f"Publishing the model as {PUBLISHED_NAME!r}")
    _, key = trained_models.publish_model(
        session, requester=requester, model_id=model.id, name=PUBLISHED_NAME
    )
    result.published_name, result.prediction_key = PUBLISHED_NAME, key


def _model_in_the_loop(
    session: Session,
    *,
    requester: User,
    size: DemoSize,
    result: DemoResult,
    people: list[DemoLabeler],
    rng: random.Random,
) -> None:
    """New digits in a pool with dynamic overlap (1 to ``size.overlap`` until 90 %) whose
    published model answers each task first; the same crowd labels it."""
    pool = pools.create_pool(
        session,
        requester=requester,
        project_id=result.project_id,
        name="Digits, batch 2 (dynamic overlap + model)",
        overlap=1,
        max_overlap=size.overlap,
        min_confidence=LOOP_CONFIDENCE,
        model_id=result.model_id,
        reward_cents=3,
        general_per_suite=size.general_per_suite,
        control_per_suite=1,
        public_description="Ten quick digits per suite.",
    )  # no rules of its own: the first pool's bans (project-wide) still keep its spammers out
    result.loop_pool_id = pool.id
    control = digit_images(size=size.image_size, per_class=size.control_per_class)
    general = digit_images(
        size=size.image_size,
        per_class=size.per_class,
        offset=size.control_per_class + size.per_class,
    )
    truth = _upload(session, requester=requester, pool=pool, control=control, general=general)
    for job in session.exec(  # the model answers the tasks (queued by the uploads)
        select(Job).where(Job.kind == MODEL_JOB_KIND, Job.status.in_(("queued", "running")))
    ).all():
        _finish_job(session, job.id)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    ledger.top_up(session, user=requester, amount_cents=max(review.total_cents * 2, 1000))
    pool = pools.launch_pool(session, requester=requester, pool_id=pool.id, margin_percent=100)
    simulate_labeling(
        session, pool=pool, people=people, truth=truth, rng=rng, report=lambda *_: None
    )
    session.expire_all()
    pool = session.get(Pool, pool.id)
    savings = overlap_savings.get_overlap_savings(session, requester=requester, pool_id=pool.id)
    labels = {row[0]: row[2] for row in pool_model.engine_labels(session, pool=pool)}
    result.loop_tasks = len(truth)
    result.loop_answers = savings.answers
    result.loop_fixed_answers = len(truth) * size.overlap
    result.loop_saved_cents = savings.saved_cents
    scored = [labels.get(task_id) == digit for task_id, digit in truth.items()]
    result.loop_accuracy = round(sum(scored) / len(scored), 3) if scored else None


def _finish_job(
    session: Session,
    job_id: int,
    *,
    report: Progress | None = None,
    span: tuple[float, float] = (0.0, 1.0),
    timeout: float = 1800.0,
) -> Job:
    """Run a queued job here (a consumer that got it first runs it instead) and wait for it."""
    from workers.registry import execute_job

    session.commit()
    worker = threading.Thread(target=execute_job, args=(job_id,), daemon=True)
    worker.start()
    deadline = time.monotonic() + timeout
    while True:
        worker.join(timeout=0.3)
        session.expire_all()
        job = session.get(Job, job_id)
        session.commit()
        if report is not None and job.progress:
            low, high = span
            report(low + (high - low) * job.progress, job.message or "")
        if job.done and not worker.is_alive():
            return job
        if time.monotonic() > deadline:
            raise CrowdlabError(f"Job {job_id} did not finish in {timeout:.0f} s.")


def start_demo_job(session: Session, *, train: bool = True, labelers: int = 6) -> Job:
    """Queue the demo as a background job (first start only: no accounts, no demo running)."""
    if has_users(session):
        raise Conflict("This instance already has accounts; the demo fills an empty one only.")
    running = session.exec(
        select(Job).where(Job.kind == JOB_KIND, Job.status.in_(("queued", "running")))
    ).first()
    if running is not None:
        return running
    from app.services.jobs.records import submit_job

    return submit_job(
        session, kind=JOB_KIND, owner=None, payload={"train": bool(train), "labelers": labelers}
    )


def get_demo_job(session: Session, *, job_id: int) -> Job:
    """A demo job by id (any other job → ``NotFound``)."""
    job = session.get(Job, job_id)
    if job is None or job.kind != JOB_KIND:
        raise NotFound("No such demo run.")
    return job


def latest_demo_job(session: Session) -> Job | None:
    """The newest demo job, if one ever ran here."""
    return session.exec(select(Job).where(Job.kind == JOB_KIND).order_by(Job.id.desc())).first()
