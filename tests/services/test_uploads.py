"""Uploads: TSV validation (all-or-nothing with row numbers), images, ZIP of class folders, jobs."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from sqlmodel import func, select

from app.db.models import Job, JobStatus, MediaFile, Task, TaskKind
from app.errors import Conflict, UploadRejected
from app.services.projects import projects, uploads
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool


def png(color=(200, 10, 10), size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def count(session, pool, kind=None) -> int:
    query = select(func.count(Task.id)).where(Task.pool_id == pool.id)
    if kind:
        query = query.where(Task.kind == kind)
    return session.exec(query).one()


def upload(session, requester, pool, kind, files, **options):
    return uploads.submit_upload(
        session, requester=requester, pool_id=pool.id, kind=kind, files=files, **options
    )


@pytest.fixture
def pool(session, requester):
    return make_pool(session, requester)


def test_tsv_with_golden_hint_and_overlap(session, requester, pool):
    tsv = (
        "INPUT:image\tGOLDEN:result\tHINT:text\tTASK:overlap\n"
        "https://img.example/a.png\t\t\t\n"
        "https://img.example/b.png\tcat\t\t5\n"
        'https://img.example/c.png\tdog\t"It has a ""dog"" collar"\t\n'
    )
    outcome = upload(session, requester, pool, "tsv", [("t.tsv", tsv.encode())])
    assert outcome.result.created == {"general": 1, "control": 1, "training": 1}
    tasks = {t.image.rsplit("/", 1)[1]: t for t in session.exec(select(Task)).all()}
    assert tasks["b.png"].known_answer == "cat" and tasks["b.png"].overlap == 5
    assert tasks["c.png"].hint == 'It has a "dog" collar'
    assert tasks["a.png"].input_values == {"image": "https://img.example/a.png"}


@pytest.mark.parametrize(
    ("tsv", "expected"),
    [
        ("INPUT:image\tCOLOR:x\nhttps://a.example/1.png\tred\n", "unknown column(s) 'COLOR:x'"),
        ("GOLDEN:result\ncat\n", "needs an INPUT:image column"),
        ("INPUT:image\n\nhttps://a.example/1.png\n", None),
        (
            "INPUT:image\tGOLDEN:result\nhttps://a.example/1.png\tcow\n",
            "row 2: GOLDEN:result 'cow'",
        ),
        ("INPUT:image\tGOLDEN:result\n\tcat\n", "row 2: INPUT:image is empty"),
        (
            "INPUT:image\nhttps://a.example/1.png\nhttps://a.example/2.png\nhttps://a.example/1.png\n",
            "row 4: duplicate of row 2",
        ),
        ("INPUT:image\tTASK:overlap\nhttps://a.example/1.png\t0\n", "row 2: TASK:overlap '0'"),
        ("INPUT:image\tHINT:text\nhttps://a.example/1.png\thint\n", "HINT:text needs a GOLDEN"),
        ("INPUT:image\nnot-a-url.png\n", "neither an http(s) URL nor the name"),
        ('INPUT:image\tGOLDEN:result\nhttps://a.example/1.png\t"ca"t"\n', "quoting is broken"),
        ("INPUT:image\n", "no task rows"),
        ("INPUT:image\tGOLDEN:result\nhttps://a.example/1.png\n", "expected 2 columns"),
    ],
)
def test_bad_tsv_is_refused_whole_with_the_row(session, requester, pool, tsv, expected):
    good_first = "INPUT:image\nhttps://ok.example/0.png\n" if expected is None else ""
    if expected is None:  # a blank line is fine
        assert upload(session, requester, pool, "tsv", [("t.tsv", tsv.encode())]).result.total == 1
        return
    data = tsv.encode() + good_first.encode()
    with pytest.raises(UploadRejected) as exc:
        upload(session, requester, pool, "tsv", [("t.tsv", data)])
    assert expected in exc.value.message or any(expected in p for p in exc.value.problems)
    assert count(session, pool) == 0


def test_tsv_lists_every_bad_row_and_imports_nothing(session, requester, pool):
    tsv = (
        "INPUT:image\tGOLDEN:result\n"
        "https://a.example/1.png\tcat\n"
        "https://a.example/2.png\tcow\n"
        "\tdog\n"
        "https://a.example/3.png\t\n"
    )
    with pytest.raises(UploadRejected) as exc:
        upload(session, requester, pool, "tsv", [("t.tsv", tsv.encode())])
    assert exc.value.row == 3
    assert [p.split(":")[0] for p in exc.value.problems] == ["row 3", "row 4"]
    assert "and 1 more" in exc.value.message
    assert count(session, pool) == 0


def test_non_utf8_tsv_is_refused(session, requester, pool):
    data = "INPUT:image\thttps://a.example/caf\u00e9.png\n".encode("latin-1")
    with pytest.raises(UploadRejected, match="not UTF-8"):
        upload(session, requester, pool, "tsv", [("t.tsv", data)])


def test_tsv_refers_to_uploaded_media_by_name_and_refuses_images_already_in_pool(
    session, requester, pool
):
    upload(session, requester, pool, "images", [("cat1.png", png())])
    other = make_pool(session, requester)
    tsv = b"INPUT:image\tGOLDEN:result\ncat1.png\tcat\n"
    result = upload(session, requester, other, "tsv", [("t.tsv", tsv)]).result
    assert result.created["control"] == 1
    task = session.exec(select(Task).where(Task.pool_id == other.id)).one()
    assert task.media_id is not None and task.image.startswith("/media/")
    with pytest.raises(UploadRejected, match="already in the pool"):
        upload(session, requester, other, "tsv", [("t.tsv", tsv)])


def test_images_become_tasks_and_a_bad_file_refuses_all(session, requester, pool):
    result = upload(
        session,
        requester,
        pool,
        "images",
        [("a.png", png((1, 2, 3))), ("b.png", png((4, 5, 6)))],
    ).result
    assert result.created["general"] == 2
    task = session.exec(select(Task).order_by(Task.id)).first()
    media = session.get(MediaFile, task.media_id)
    assert task.image == f"/media/{media.sha256}.png" and media.width == 8
    with pytest.raises(UploadRejected) as exc:
        upload(
            session,
            requester,
            pool,
            "images",
            [("c.png", png((7, 8, 9))), ("notes.png", b"not an image at all")],
        )
    assert exc.value.file == "notes.png"
    assert count(session, pool) == 2


def test_decompression_bomb_image_is_refused(session, requester, pool, monkeypatch):
    monkeypatch.setenv("CROWDLAB_MAX_IMAGE_PIXELS", "1000")
    from app.settings import get_settings

    get_settings.cache_clear()
    with pytest.raises(UploadRejected, match="decompression bomb"):
        upload(session, requester, pool, "images", [("big.png", png(size=(100, 100)))])


def test_zip_of_class_folders_becomes_control_tasks_plus_chosen_general(session, requester, pool):
    data = make_zip(
        {
            "Dataset/cat/1.png": png((1, 1, 1)),
            "Dataset/cat/2.png": png((2, 2, 2)),
            "Dataset/dog/3.png": png((3, 3, 3)),
            "Dataset/dog/4.png": png((4, 4, 4)),
        }
    )
    result = upload(session, requester, pool, "zip", [("d.zip", data)], general_count=2).result
    assert result.created == {"general": 2, "control": 4, "training": 0}
    controls = session.exec(select(Task).where(Task.kind == TaskKind.CONTROL)).all()
    assert sorted(t.known_answer for t in controls) == ["cat", "cat", "dog", "dog"]
    general = session.exec(select(Task).where(Task.kind == TaskKind.GENERAL)).all()
    # one per class, round robin; general tasks carry no answer
    assert {t.known_answer for t in general} == {None}
    answers = {t.media_id: t.known_answer for t in controls}
    assert sorted(answers[t.media_id] for t in general) == ["cat", "dog"]


def test_zip_with_unknown_folder_is_refused_or_creates_options(session, requester):
    project = make_project(session, requester, options=("cat", "dog"))
    pool = make_pool(session, requester, project)
    data = make_zip({"cat/1.png": png((1, 1, 1)), "horse/2.png": png((2, 2, 2))})
    with pytest.raises(UploadRejected) as exc:
        upload(session, requester, pool, "zip", [("d.zip", data)])
    assert exc.value.payload["unknown_labels"] == ["horse"]
    result = upload(
        session, requester, pool, "zip", [("d.zip", data)], create_missing_options=True
    ).result
    assert result.created_options == ["horse"]
    values = [o.value for o in projects.list_options(session, project=project)]
    assert values == ["cat", "dog", "horse"]


@pytest.mark.parametrize(
    ("entries", "symlink", "message"),
    [
        ({"../evil/1.png": png()}, None, "path traversal"),
        ({"cat/inner.zip": b"PK"}, None, "Nested archives"),
        ({"cat/readme.txt": b"hello"}, None, "not an image"),
        ({"cat/1.png": png()}, "cat/link.png", "Symbolic links"),
        ({"cat/1.png": b"garbage that is not a png"}, None, "not a readable image"),
    ],
)
def test_unsafe_zips_are_refused(session, requester, pool, entries, symlink, message):
    with pytest.raises(UploadRejected, match=message):
        upload(session, requester, pool, "zip", [("d.zip", make_zip(entries, symlink=symlink))])
    assert count(session, pool) == 0


def test_zip_bomb_is_refused(session, requester, pool):
    data = make_zip({"cat/1.png": b"\0" * 5_000_000})
    with pytest.raises(UploadRejected, match="zip bomb"):
        upload(session, requester, pool, "zip", [("d.zip", data)])


def test_large_upload_runs_as_a_job_with_progress(session, requester, pool, monkeypatch):
    monkeypatch.setenv("CROWDLAB_UPLOAD_JOB_THRESHOLD", "2")
    from app.settings import get_settings

    get_settings.cache_clear()
    files = [(f"{i}.png", png((i, i, i))) for i in range(3)]
    outcome = upload(session, requester, pool, "images", files)
    session.expire_all()
    job = session.get(Job, outcome.job.id)
    assert job.status == JobStatus.SUCCEEDED and job.progress == 1.0
    assert job.result["created"]["general"] == 3
    assert count(session, pool) == 3
    assert not any((get_settings().data_dir / "uploads").iterdir())


def test_failed_upload_job_imports_nothing_and_says_why(session, requester, pool, monkeypatch):
    monkeypatch.setenv("CROWDLAB_UPLOAD_JOB_THRESHOLD", "1")
    from app.settings import get_settings

    get_settings.cache_clear()
    files = [("ok.png", png()), ("bad.png", b"nope")]
    outcome = upload(session, requester, pool, "images", files)
    session.expire_all()
    job = session.get(Job, outcome.job.id)
    assert job.status == JobStatus.FAILED and "bad.png" in job.message
    assert count(session, pool) == 0


def test_archived_pool_takes_no_tasks(session, requester, pool):
    add_tasks(session, pool, general=1)
    open_pool(session, requester, pool)
    from app.services.projects import pools

    pools.close_pool(session, requester=requester, pool_id=pool.id)
    pools.archive_pool(session, requester=requester, pool_id=pool.id)
    with pytest.raises(Conflict):
        upload(session, requester, pool, "tsv", [("t.tsv", b"INPUT:image\nhttps://a.b/c.png\n")])


def test_a_big_upload_refreshes_the_planner_statistics_on_postgresql(session, requester, pool):
    """Labelers arriving right after a big upload must not meet plans made for an empty
    table (PostgreSQL would scan every task until autovacuum ran)."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite plans without table statistics")
    from sqlalchemy import event, text

    from app.db.engine import BULK_ROWS
    from app.services.projects.upload_formats import TaskInput

    sent: list[str] = []
    engine = session.get_bind().engine

    def record(_conn, _cursor, statement, *_args):
        sent.append(statement)

    def upload_tasks(n: int) -> None:
        items = [TaskInput(image=f"https://img.example/{i}.png") for i in range(n)]
        event.listen(engine, "before_cursor_execute", record)
        try:
            uploads.add_tasks(session, requester=requester, pool_id=pool.id, items=items)
        finally:
            event.remove(engine, "before_cursor_execute", record)

    upload_tasks(BULK_ROWS - 1)
    assert not [s for s in sent if s.startswith("ANALYZE")]  # small uploads pay nothing
    upload_tasks(BULK_ROWS)
    assert [s for s in sent if s.startswith("ANALYZE")] == ['ANALYZE "task"']
    estimated = session.exec(text("SELECT reltuples FROM pg_class WHERE relname = 'task'")).one()
    assert estimated[0] >= session.exec(select(func.count(Task.id))).one() >= 2 * BULK_ROWS - 1
