"""Large TSV uploads: streamed, written in short batches, appearing whole or not at all."""

from __future__ import annotations

import io
import tracemalloc

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from app.db.engine import get_engine, is_sqlite, session_scope
from app.db.models import Job, JobStatus, Task
from app.db.models.upload import UploadRow
from app.errors import UploadRejected
from app.services.jobs.records import JobCancelled
from app.services.projects import upload_batches, upload_jobs, uploads
from tests.builders.pools import add_tasks, make_pool


@pytest.fixture
def pool(session, requester):
    return make_pool(session, requester)


@pytest.fixture
def as_job(monkeypatch):
    """Every upload of more than 10 rows runs as a job; batches of 50 rows."""
    monkeypatch.setenv("CROWDLAB_UPLOAD_JOB_THRESHOLD", "10")
    monkeypatch.setattr(upload_batches, "BATCH_ROWS", 50)
    monkeypatch.setattr(upload_batches, "PUBLISH_ROWS", 100)
    from app.settings import get_settings

    get_settings.cache_clear()


def tsv(rows: int, *, bad: dict[int, str] | None = None) -> bytes:
    """A TSV with ``rows`` task rows; every third a control task. ``bad`` replaces the
    line of a given row number (the header is row 1)."""
    lines = ["INPUT:image\tGOLDEN:result"]
    for i in range(rows):
        lines.append(f"https://img.example/{i:07d}.png\t{'cat' if i % 3 == 0 else ''}")
    for row, line in (bad or {}).items():
        lines[row - 1] = line
    return ("\n".join(lines) + "\n").encode()


def upload(session, requester, pool, data: bytes):
    return uploads.submit_upload(
        session, requester=requester, pool_id=pool.id, kind="tsv", files=[("t.tsv", data)]
    )


def job_of(session, outcome) -> Job:
    session.expire_all()
    return session.get(Job, outcome.job.id)


def tasks_in(session, pool) -> int:
    return session.exec(select(func.count(Task.id)).where(Task.pool_id == pool.id)).one()


def staged(session) -> int:
    return session.exec(select(func.count(UploadRow.id))).one()


def uploads_left(settings) -> list:
    folder = settings.data_dir / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


def test_a_large_tsv_is_written_in_short_batches_and_appears_whole(
    session, requester, pool, as_job, settings, monkeypatch
):
    commits: list[int] = []
    seen_during: list[int] = []

    def on_commit(conn):
        commits.append(1)

    write_patiently = upload_batches._write_patiently

    def on_stage(write):  # a staged batch (or, on SQLite, a move into the pool) is written
        with session_scope(write=False) as other:  # what the pool shows meanwhile
            seen_during.append(tasks_in(other, pool))
        return write_patiently(write)

    engine = get_engine()
    sa.event.listen(engine, "commit", on_commit)
    monkeypatch.setattr(upload_batches, "_write_patiently", on_stage)
    try:
        outcome = upload(session, requester, pool, tsv(500))
    finally:
        sa.event.remove(engine, "commit", on_commit)
    job = job_of(session, outcome)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["created"] == {"general": 333, "control": 167, "training": 0}
    # 500 rows, 50 a batch, each its own transaction (SQLite then moves them into the pool
    # in 5 more short ones, 100 rows each, and a last one removes the upload's marker)
    moves = [0, 100, 200, 300, 400, 500] if is_sqlite(get_engine()) else []
    assert seen_during == [0] * 10 + moves  # none of the upload shows until it all passed
    assert len(commits) >= 10
    tasks = session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.position))
    tasks = tasks.all()
    assert [t.position for t in tasks] == list(range(500))
    assert tasks[3].image == "https://img.example/0000003.png"
    assert tasks[3].known_answer == "cat" and tasks[3].kind == "control"
    assert tasks[4].input_values == {"image": "https://img.example/0000004.png"}
    assert staged(session) == 0 and uploads_left(settings) == []


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({450: "https://img.example/x.png\tcow"}, "row 450: GOLDEN:result 'cow'"),
        ({480: "https://img.example/0000002.png\t"}, "row 480: duplicate of row 4"),
        ({470: "https://img.example/bad\x00.png\t"}, "row 470: INPUT:image contains a NUL"),
        ({490: "https://img.example/\xff.png\t"}, "bad byte at row 490"),
    ],
)
def test_a_bad_row_late_in_a_large_tsv_leaves_nothing_behind(
    session, requester, pool, as_job, settings, bad, expected
):
    data = tsv(500, bad=bad)
    if "\xff" in next(iter(bad.values())):
        data = data.replace("\xff".encode(), b"\xff")
    outcome = upload(session, requester, pool, data)
    job = job_of(session, outcome)
    assert job.status == JobStatus.FAILED
    assert expected in job.message
    assert tasks_in(session, pool) == 0
    assert staged(session) == 0 and uploads_left(settings) == []


def test_a_large_tsv_naming_images_already_in_the_pool_is_refused(session, requester, pool, as_job):
    assert job_of(session, upload(session, requester, pool, tsv(20))).status == "succeeded"
    job = job_of(session, upload(session, requester, pool, tsv(30)))
    assert job.status == JobStatus.FAILED
    assert "row 2: this image is already in the pool" in job.message
    assert tasks_in(session, pool) == 20 and staged(session) == 0


def test_nul_bytes_in_a_small_tsv_are_refused_naming_the_row(session, requester, pool):
    data = (
        b"INPUT:image\tGOLDEN:result\nhttps://a.example/1.png\t\nhttps://a.example/2.png\tc\x00t\n"
    )
    with pytest.raises(UploadRejected) as exc:
        upload(session, requester, pool, data)
    assert exc.value.row == 3 and exc.value.column == "GOLDEN:result"
    assert "NUL" in exc.value.message
    assert tasks_in(session, pool) == 0


def test_an_upload_job_retried_after_its_worker_died_starts_clean(
    session, requester, pool, as_job, settings
):
    """The first attempt staged some rows and died; the retry drops them and imports
    the file once; ``cleanup_upload`` undoes a dead attempt for the generic retry code."""
    folder = settings.data_dir / "uploads" / "deadbeef"
    folder.mkdir(parents=True)
    (folder / "000000").write_bytes(tsv(120))
    payload = {"pool_id": pool.id, "kind": "tsv", "folder": str(folder), "names": ["t.tsv"]}
    with session_scope() as writer:
        writer.execute(
            sa.insert(UploadRow),
            [
                {
                    "upload_key": "deadbeef",
                    "seq": i,
                    "row": i + 1,
                    "kind": "general",
                    "image": f"https://img.example/{i:07d}.png",
                    "input_values": {},
                }
                for i in range(1, 80)
            ],
        )
        writer.commit()
    result = upload_jobs.run_upload_job(0, payload, lambda *a, **k: None)
    assert result["created"]["general"] + result["created"]["control"] == 120
    assert tasks_in(session, pool) == 120 and staged(session) == 0
    assert not folder.exists()

    # A job whose worker died half-way: cleanup_upload removes its rows and files.
    outcome = upload(session, requester, pool, tsv(30).replace(b"img.", b"other."))
    job = job_of(session, outcome)
    folder.mkdir()
    with session_scope() as writer:
        job = writer.get(Job, job.id)
        job.payload = {**job.payload, "folder": str(folder)}
        writer.add(job)
        writer.execute(
            sa.insert(UploadRow),
            [
                {
                    "upload_key": "deadbeef",
                    "seq": 1,
                    "row": 2,
                    "kind": "general",
                    "image": "x",
                    "input_values": {},
                }
            ],
        )
        writer.commit()
        upload_jobs.cleanup_upload(writer, job_id=job.id)
        upload_jobs.cleanup_upload(writer, job_id=job.id)  # twice is fine
    assert staged(session) == 0 and not folder.exists()


def test_a_streamed_upload_needs_far_less_memory_than_the_file(
    session, requester, pool, as_job, monkeypatch
):
    """Peak Python memory of a whole upload (parse, check, stage, move) stays a fraction
    of the file's size (it was about ten times the file)."""
    monkeypatch.setattr(upload_batches, "BATCH_ROWS", 500)
    upload(session, requester, make_pool(session, requester), tsv(1000))  # imports, caches
    data = tsv(60_000)
    file = io.BytesIO(data)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        outcome = uploads.submit_upload(
            session, requester=requester, pool_id=pool.id, kind="tsv", files=[("t.tsv", file)]
        )
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert job_of(session, outcome).status == JobStatus.SUCCEEDED
    assert tasks_in(session, pool) == 60_000
    assert peak < len(data) / 2, (peak, len(data))


def test_a_batch_that_finds_the_database_busy_is_tried_again(
    session, requester, pool, as_job, monkeypatch
):
    """The first batch finds the database busy (another writer kept the lock past the
    busy timeout): the import waits and goes on instead of failing."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    real, calls = upload_batches.session_scope, []

    def busy_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(upload_batches, "session_scope", busy_once)
    job = job_of(session, upload(session, requester, pool, tsv(120)))
    assert job.status == JobStatus.SUCCEEDED, job.message
    # 3 batches staged (one retried), 2 moved into the pool, then the marker removed
    moves = 3 if is_sqlite(get_engine()) else 0
    assert tasks_in(session, pool) == 120 and len(calls) == 4 + moves


def sqlite_only(session):
    if not is_sqlite(session.get_bind()):
        pytest.skip("PostgreSQL moves an upload into the pool in one transaction")


def test_on_sqlite_checked_rows_enter_the_pool_in_short_batches(session, requester, pool, as_job):
    sqlite_only(session)
    visible: list[int] = []

    def on_move(conn, cursor, statement, params, context, executemany):
        if statement.startswith("INSERT INTO task"):
            with session_scope(write=False) as other:
                visible.append(tasks_in(other, pool))

    engine = get_engine()
    sa.event.listen(engine, "before_cursor_execute", on_move)
    try:
        outcome = upload(session, requester, pool, tsv(450))
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_move)
    job = job_of(session, outcome)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert visible == [0, 100, 200, 300, 400]  # 100 rows a transaction, after every check
    tasks = session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.position))
    assert [t.position for t in tasks] == list(range(450))
    assert staged(session) == 0


def test_a_job_that_died_while_moving_rows_into_the_pool_finishes_on_retry(
    session, requester, pool, as_job, settings, monkeypatch
):
    sqlite_only(session)
    add_tasks(session, pool, general=3)  # the upload's tasks come after these
    folder = settings.data_dir / "uploads" / "cafe0001"
    folder.mkdir(parents=True)
    (folder / "000000").write_bytes(tsv(350))
    payload = {"pool_id": pool.id, "kind": "tsv", "folder": str(folder), "names": ["t.tsv"]}
    real_publish = upload_batches.publish_in_batches

    def dies_after_one_batch(**kwargs):
        def on_batch(moved):
            raise SystemExit("worker killed")

        real_publish(**{**kwargs, "on_batch": on_batch})

    monkeypatch.setattr(upload_batches, "publish_in_batches", dies_after_one_batch)
    with pytest.raises(SystemExit):
        upload_jobs.run_upload_job(0, payload, lambda *a, **k: None)
    assert tasks_in(session, pool) == 3 + 100 and staged(session) == 350 - 100 + 1  # + marker

    monkeypatch.setattr(upload_batches, "publish_in_batches", real_publish)
    result = upload_jobs.run_upload_job(0, payload, lambda *a, **k: None)  # the retry
    assert result["created"] == {"general": 233, "control": 117, "training": 0}
    images = session.exec(
        select(Task.image).where(Task.pool_id == pool.id).order_by(Task.position)
    ).all()
    assert len(images) == len(set(images)) == 353
    assert images[3:5] == ["https://img.example/0000000.png", "https://img.example/0000001.png"]
    positions = session.exec(select(Task.position).where(Task.pool_id == pool.id)).all()
    assert sorted(positions) == list(range(353))
    assert staged(session) == 0 and not folder.exists()


def test_a_cancel_that_comes_while_rows_enter_the_pool_lets_the_upload_finish(
    session, requester, pool, as_job, monkeypatch
):
    calls = []

    def progress(fraction, message="", **kwargs):
        calls.append(message)
        if message.startswith("Adding tasks to the pool"):
            raise JobCancelled("Cancelled by its owner.")

    folder = session_settings_folder(pool)
    (folder / "000000").write_bytes(tsv(300))
    payload = {"pool_id": pool.id, "kind": "tsv", "folder": str(folder), "names": ["t.tsv"]}
    result = upload_jobs.run_upload_job(0, payload, progress)
    assert sum(result["created"].values()) == 300
    assert tasks_in(session, pool) == 300 and staged(session) == 0
    assert sum(m.startswith("Adding tasks to the pool") for m in calls) == 1


def postgresql_only(session):
    if is_sqlite(session.get_bind()):
        pytest.skip("PostgreSQL stages rows by COPY and moves them in one transaction")


def test_on_postgresql_rows_enter_the_pool_in_batches_of_one_transaction(
    session, requester, pool, as_job, monkeypatch
):
    postgresql_only(session)
    monkeypatch.setattr(upload_batches, "MOVE_ROWS_PG", 100)
    visible = []
    move_staged = upload_batches.move_staged

    def watched(s, **kwargs):  # before each batch moves into the pool
        with session_scope(write=False) as other:
            visible.append(tasks_in(other, pool))
        return move_staged(s, **kwargs)

    monkeypatch.setattr(upload_batches, "move_staged", watched)
    outcome = upload(session, requester, pool, tsv(450, bad={3: "https://img.example/a\\b\t"}))
    job = job_of(session, outcome)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert visible == [0] * 5  # 100 rows a statement; nothing shows before the one commit
    tasks = session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.position))
    tasks = tasks.all()
    assert [t.position for t in tasks] == list(range(450))
    assert tasks[1].image == "https://img.example/a\\b"  # COPY kept the backslash
    assert tasks[1].input_values == {"image": "https://img.example/a\\b"}
    assert staged(session) == 0


def test_the_move_into_the_pool_reports_the_rows_moved_without_the_ones_left_out(
    session, requester, pool, as_job, monkeypatch
):
    monkeypatch.setattr(upload_batches, "MOVE_ROWS_PG", 100)
    messages = []
    folder = session_settings_folder(pool)
    (folder / "000000").write_bytes(tsv(300, bad={10: "https://img.example/0000002.png\t"}))
    payload = {
        "pool_id": pool.id,
        "kind": "tsv",
        "folder": str(folder),
        "names": ["t.tsv"],
        "skip_bad": True,
    }
    result = upload_jobs.run_upload_job(0, payload, lambda f, m="", **k: messages.append((f, m)))
    assert sum(result["created"].values()) == 299  # row 10 repeats row 4: left out
    moving = [(f, m) for f, m in messages if m.startswith("Adding tasks to the pool")]
    assert moving[-1] == (1.0, "Adding tasks to the pool: 299 of 299")
    assert all(f <= 1.0 for f, _ in messages)


def session_settings_folder(pool):
    from app.settings import get_settings

    folder = get_settings().data_dir / "uploads" / f"cafe{pool.id:04d}"
    folder.mkdir(parents=True)
    return folder
