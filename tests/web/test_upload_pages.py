"""Upload pages: the "import the good ones" choice, images stored for a TSV, the upload
report of a background job with each failing row, and the file names on the tasks page."""

from __future__ import annotations

import html

from sqlmodel import select

from app.db.models import Job, Task
from tests.builders.image_server import ImageServer, png_bytes
from tests.builders.pools import make_pool
from tests.builders.users import login, make_requester

HTMX = {"HX-Request": "true"}
NOT_AN_IMAGE = b"plain text, not a picture"


def _post(client, pool, kind, files, **data):
    return client.post(
        f"/requester/pools/{pool.id}/upload",
        data={"kind": kind, **data},
        files=[("files", f) for f in files],
        headers=HTMX,
    )


def test_a_bad_file_is_named_in_a_plain_sentence(requester_client, session, requester):
    pool = make_pool(session, requester)
    files = [("good.png", png_bytes(5), "image/png"), ("notes.png", NOT_AN_IMAGE, "image/png")]

    response = _post(requester_client, pool, "images", files)

    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Nothing was imported: notes.png: not a readable image" in text
    assert "UnidentifiedImageError" not in text and ".." not in text.replace("…", "")
    assert "Import the good ones and list the bad ones" in text
    assert session.exec(select(Task)).all() == []


def test_import_the_good_files_lists_the_bad_ones(requester_client, session, requester):
    pool = make_pool(session, requester)
    files = [("good.png", png_bytes(5), "image/png"), ("notes.png", NOT_AN_IMAGE, "image/png")]

    response = _post(requester_client, pool, "images", files, skip_bad="on")

    assert response.status_code == 200
    text = html.unescape(response.text)
    assert "Imported 1 tasks: 1 general, 0 control" in text
    assert "1 file was left out, as you chose" in text
    assert "<td>notes.png</td>" in text.replace(' class="task-input" title="notes.png"', "")
    assert len(session.exec(select(Task)).all()) == 1


def test_stored_images_then_a_tsv_naming_them_show_names_on_the_tasks_page(
    requester_client, session, requester
):
    pool = make_pool(session, requester)
    stored = _post(
        requester_client,
        pool,
        "images",
        [("red_0.png", png_bytes(200), "image/png")],
        store_only="on",
    )
    assert stored.status_code == 200
    detail = requester_client.get(f"/requester/pools/{pool.id}").text
    assert "Stored 1 images: a task TSV can now name them." in detail
    assert session.exec(select(Task)).all() == []

    tsv = b"INPUT:image\tGOLDEN:result\nred_0.png\tcat\n"
    response = _post(requester_client, pool, "tsv", [("tasks.tsv", tsv, "text/plain")])
    assert response.status_code == 200, response.text

    page = requester_client.get(f"/requester/pools/{pool.id}/tasks").text
    assert 'title="red_0.png">red_0.png</span>' in page
    task = session.exec(select(Task)).one()
    assert f'src="{task.image}"' in page and task.image.startswith("/media/")


def test_the_upload_report_lists_each_failing_url_row(
    requester_client, session, requester, settings
):
    settings.check_image_urls = True
    pool = make_pool(session, requester)
    with ImageServer() as server:
        tsv = "\n".join(
            ["INPUT:image", server.url("/ok.png"), server.url("/missing.png"), ""]
        ).encode()
        response = _post(requester_client, pool, "tsv", [("urls.tsv", tsv, "text/plain")])
    assert response.status_code == 200
    job = session.exec(select(Job).where(Job.kind == "upload")).one()
    assert f"/requester/pools/{pool.id}/uploads/{job.id}" in response.text

    report = html.unescape(
        requester_client.get(f"/requester/pools/{pool.id}/uploads/{job.id}").text
    )

    assert "Nothing was imported: row 3: the server answered HTTP 404." in report
    row = f'<tr><td>3</td><td class="task-input" title="{server.url("/missing.png")}">'
    assert row in report and "the server answered HTTP 404</td>" in report
    assert session.exec(select(Task)).all() == []


def test_the_upload_report_after_skipping_shows_created_and_left_out_rows(
    requester_client, session, requester, settings
):
    settings.check_image_urls = True
    pool = make_pool(session, requester)
    with ImageServer() as server:
        tsv = "\n".join(["INPUT:image", server.url("/missing.png"), server.url("/ok.png")])
        _post(requester_client, pool, "tsv", [("u.tsv", tsv.encode(), "text/plain")], skip_bad="1")
    job = session.exec(select(Job).where(Job.kind == "upload")).one()

    report = html.unescape(
        requester_client.get(f"/requester/pools/{pool.id}/uploads/{job.id}").text
    )

    assert "Imported 1 tasks: 1 general, 0 control" in report
    assert "1 row was left out, as you chose" in report
    assert "<td>2</td>" in report and server.url("/missing.png") in report


def test_another_requester_cannot_open_an_upload_report(
    requester_client, make_client, session, requester, settings
):
    settings.upload_job_threshold = 1
    pool = make_pool(session, requester)
    tsv = b"INPUT:image\nhttps://img.example/1.png\nhttps://img.example/2.png\n"
    _post(requester_client, pool, "tsv", [("t.tsv", tsv, "text/plain")])
    job = session.exec(select(Job).where(Job.kind == "upload")).one()
    other = login(make_client(), make_requester(session))

    assert other.get(f"/requester/pools/{pool.id}/uploads/{job.id}").status_code == 404
    own = requester_client.get(f"/requester/pools/{pool.id}/uploads/{job.id}")
    assert own.status_code == 200 and "Imported 2 tasks" in own.text
