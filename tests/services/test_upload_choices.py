"""Uploads that map back to the requester's files, the "import the good ones" choice,
and image URLs checked by the upload job (issue 18, items 1 and 6)."""

from __future__ import annotations

import time

import pytest
from sqlmodel import select

from app.db.models import Job, MediaFile, Task
from app.errors import UploadRejected
from app.services.media import urls
from app.services.projects import progress, uploads
from tests.builders.answers import add_answers
from tests.builders.image_server import ImageServer, png_bytes
from tests.builders.pools import make_pool
from tests.builders.users import make_labeler

NOT_AN_IMAGE = b"just some notes, not a picture\n"


def _tasks(session, pool) -> list[Task]:
    session.expire_all()
    return list(session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.position)))


def _upload(session, requester, pool, kind, files, **kwargs):
    return uploads.submit_upload(
        session, requester=requester, pool_id=pool.id, kind=kind, files=files, **kwargs
    )


def _tsv(*rows: str, header: str = "INPUT:image") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _job(session, outcome) -> Job:
    assert outcome.job is not None, "a TSV naming image URLs is checked by a job"
    session.expire_all()
    return session.get(Job, outcome.job.id)


# ------------------------------------------------------------------ bad files


def test_a_text_file_named_png_is_refused_in_a_plain_sentence(session, requester):
    pool = make_pool(session, requester)
    files = [("good.png", png_bytes(10)), ("notes.png", NOT_AN_IMAGE)]

    with pytest.raises(UploadRejected) as refused:
        _upload(session, requester, pool, "images", files)

    message = refused.value.message
    assert message.startswith("Nothing was imported: notes.png: not a readable image")
    assert "Error" not in message and ".." not in message and message.endswith(".")
    assert refused.value.payload["failures"] == [
        {"row": None, "item": "notes.png", "reason": refused.value.payload["failures"][0]["reason"]}
    ]
    assert "JPEG, PNG or WebP" in refused.value.payload["failures"][0]["reason"]
    assert _tasks(session, pool) == []


def test_import_the_good_ones_and_list_the_bad(session, requester):
    pool = make_pool(session, requester)
    files = [
        ("good.png", png_bytes(10)),
        ("notes.png", NOT_AN_IMAGE),
        ("copy.png", png_bytes(10)),
        ("other.png", png_bytes(90)),
    ]

    result = _upload(session, requester, pool, "images", files, skip_bad=True).result

    assert result.created["general"] == 2
    notes, copy = result.skipped
    assert notes["item"] == "notes.png" and notes["reason"].startswith("not a readable image (")
    assert copy == {"row": None, "item": "copy.png", "reason": "the same image as good.png"}
    assert result.skipped_total == 2
    assert sorted(t.input_image for t in _tasks(session, pool)) == ["good.png", "other.png"]


def test_skipping_leaves_out_images_already_in_the_pool_but_refuses_when_none_is_left(
    session, requester
):
    pool = make_pool(session, requester)
    _upload(session, requester, pool, "images", [("a.png", png_bytes(10))])

    again = _upload(
        session,
        requester,
        pool,
        "images",
        [("a-again.png", png_bytes(10)), ("b.png", png_bytes(50))],
        skip_bad=True,
    ).result
    assert again.created["general"] == 1
    assert again.skipped == [
        {"row": None, "item": "a-again.png", "reason": "this image is already in the pool"}
    ]
    with pytest.raises(UploadRejected, match="Nothing was imported: notes.png"):
        _upload(session, requester, pool, "images", [("notes.png", NOT_AN_IMAGE)], skip_bad=True)


def test_a_tsv_with_bad_rows_imports_the_good_rows_when_chosen(session, requester):
    pool = make_pool(session, requester)
    data = _tsv(
        "https://img.example/1.png\tcat",
        "https://img.example/2.png\tunicorn",
        "https://img.example/1.png\t",
        "https://img.example/3.png\t",
        header="INPUT:image\tGOLDEN:result",
    )
    with pytest.raises(UploadRejected, match="row 3: GOLDEN:result 'unicorn'"):
        _upload(session, requester, pool, "tsv", [("t.tsv", data)])

    result = _upload(session, requester, pool, "tsv", [("t.tsv", data)], skip_bad=True).result

    assert result.created == {"general": 1, "control": 1, "training": 0}
    assert [(s["row"], s["item"]) for s in result.skipped] == [
        (3, "https://img.example/2.png"),
        (4, "https://img.example/1.png"),
    ]
    assert "duplicate of row 2" in result.skipped[1]["reason"]


def test_a_large_tsv_skips_repeated_rows_in_the_background(session, requester, settings):
    settings.upload_job_threshold = 3
    pool = make_pool(session, requester)
    rows = [f"https://img.example/{n}.png" for n in (1, 2, 3, 2, 4)]

    job = _job(
        session, _upload(session, requester, pool, "tsv", [("t.tsv", _tsv(*rows))], skip_bad=True)
    )

    assert job.status == "succeeded", job.message
    assert job.result["created"]["general"] == 4
    assert job.result["skipped"] == [
        {"row": 5, "item": "https://img.example/2.png", "reason": "duplicate of row 3 (same image)"}
    ]


# ------------------------------------------------- results map back to the files


def test_images_stored_only_are_named_by_a_tsv_in_the_same_pool(session, requester, settings):
    pool = make_pool(session, requester)
    stored = _upload(
        session,
        requester,
        pool,
        "media",
        [("red_0.png", png_bytes(200)), ("blue_1.png", png_bytes(20))],
    ).result
    assert stored.stored_images == 2 and stored.total == 0
    assert _tasks(session, pool) == []

    tsv = _tsv("red_0.png\tcat", "blue_1.png\t", header="INPUT:image\tGOLDEN:result")
    result = _upload(session, requester, pool, "tsv", [("tasks.tsv", tsv)]).result

    assert result.created == {"general": 1, "control": 1, "training": 0}
    tasks = {t.input_image: t for t in _tasks(session, pool)}
    assert set(tasks) == {"red_0.png", "blue_1.png"}
    red = tasks["red_0.png"]
    media = session.get(MediaFile, red.media_id)
    assert media.original_name == "red_0.png" and red.image == f"/media/{media.sha256}.png"
    assert red.known_answer == "cat"


def test_a_file_stored_again_under_another_name_is_found_by_the_new_name(session, requester):
    pool = make_pool(session, requester)
    _upload(session, requester, pool, "media", [("first.png", png_bytes(33))])
    _upload(session, requester, pool, "media", [("renamed.png", png_bytes(33))])

    _upload(session, requester, pool, "tsv", [("t.tsv", _tsv("renamed.png"))])

    assert [t.input_image for t in _tasks(session, pool)] == ["renamed.png"]


def test_raw_answers_name_the_uploaded_file_and_give_its_address(session, requester, settings):
    pool = make_pool(session, requester)
    _upload(session, requester, pool, "images", [("red_0.png", png_bytes(200))])
    (task,) = _tasks(session, pool)
    add_answers(session, pool, {task.id: [(make_labeler(session), "cat")]})

    text = progress.export_raw_answers(session, requester=requester, pool_id=pool.id)

    header, row = (line.split("\t") for line in text.strip().splitlines())
    assert header[0] == "INPUT:image" and header[-1] == "MEDIA:url"
    assert row[0] == "red_0.png" and row[1] == "cat"
    assert row[-1] == settings.base_url.rstrip("/") + task.image


# ------------------------------------------------------------- image URL checks


def test_unreachable_image_urls_refuse_the_tsv_naming_each_row(session, requester, settings):
    settings.check_image_urls = True
    pool = make_pool(session, requester)
    with ImageServer() as server:
        data = _tsv(server.url("/ok.png"), server.url("/missing.png"), server.url("/page.html"))
        job = _job(session, _upload(session, requester, pool, "tsv", [("t.tsv", data)]))

    assert job.status == "failed"
    assert job.message == ("Nothing was imported: row 3: the server answered HTTP 404 and 1 more.")
    assert job.result["failures"] == [
        {"row": 3, "item": server.url("/missing.png"), "reason": "the server answered HTTP 404"},
        {"row": 4, "item": server.url("/page.html"), "reason": "not an image (text/html)"},
    ]
    assert _tasks(session, pool) == []


def test_unreachable_image_urls_are_skipped_and_listed_when_chosen(session, requester, settings):
    settings.check_image_urls = True
    pool = make_pool(session, requester)
    with ImageServer() as server:
        data = _tsv(server.url("/ok.png"), server.url("/missing.png"), server.url("/b.png"))
        outcome = _upload(session, requester, pool, "tsv", [("t.tsv", data)], skip_bad=True)
        job = _job(session, outcome)

    assert job.status == "succeeded", job.message
    assert job.result["created"]["general"] == 2
    assert job.result["skipped"] == [
        {"row": 3, "item": server.url("/missing.png"), "reason": "the server answered HTTP 404"}
    ]
    assert [t.input_image for t in _tasks(session, pool)] == [
        server.url("/ok.png"),
        server.url("/b.png"),
    ]


def test_url_checks_go_through_the_private_address_guard(session, requester, settings):
    settings.check_image_urls = True
    settings.allow_private_image_urls = False
    pool = make_pool(session, requester)
    with ImageServer() as server:
        data = _tsv(server.url("/ok.png"), "http://10.0.0.5/x.png", "http://0x7f.1/y.png")
        job = _job(session, _upload(session, requester, pool, "tsv", [("t.tsv", data)]))
        assert server.requests == 0  # nothing was fetched from a local address

    reasons = {f["row"]: f["reason"] for f in job.result["failures"]}
    assert set(reasons) == {2, 3, 4}
    assert all("private or local address" in reason for reason in reasons.values())


def test_url_checks_run_with_bounded_concurrency_and_a_timeout():
    with ImageServer(delay=0.2, slow_seconds=3.0) as server:
        good = [server.url(f"/{n}.png") for n in range(12)]
        started = time.monotonic()
        problems = urls.check_image_urls(
            [*good, server.url("/slow.png")], concurrency=3, timeout=0.5
        )
        took = time.monotonic() - started

    assert problems == {server.url("/slow.png"): "the server did not answer in time"}
    assert server.peak <= 3
    assert took < 3.0  # the slow one was given up on, not waited for


def test_url_check_reasons_are_plain_sentences():
    with ImageServer() as server:
        closed = server.base  # nothing listens once the server is gone
    problems = urls.check_image_urls([closed + "/gone.png", "ftp://host/x.png"], timeout=2)
    assert problems == {
        closed + "/gone.png": "the server could not be reached",
        "ftp://host/x.png": "not a valid http(s) URL",
    }
