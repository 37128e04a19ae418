"""Issue 18, items 1 and 6, in Chromium: images stored for a TSV to name, results that
name each image as the requester gave it, and uploads that report bad files and
unreachable image URLs row by row (with "import the good ones" as a choice)."""

from __future__ import annotations

import csv
import io

from sqlmodel import select

from app.db.models import Task
from tests.browser.conftest import log_in
from tests.builders.answers import add_answers
from tests.builders.image_server import ImageServer, png_bytes
from tests.builders.pools import make_pool
from tests.builders.users import make_labeler, make_requester


def _file(name: str, data: bytes, mime: str = "image/png") -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter="\t"))


def test_stored_images_named_by_a_tsv_come_back_by_file_name(page, session, settings, live_server):
    settings.base_url = live_server.url  # MEDIA:url is absolute
    requester = make_requester(session)
    pool = make_pool(session, requester)
    log_in(page, requester.email)
    page.goto(f"/requester/pools/{pool.id}")

    # Store the images only (no tasks yet) ...
    page.set_input_files(
        "input[aria-label='Image files']",
        files=[_file("red_0.png", png_bytes(200)), _file("blue_1.png", png_bytes(20))],
    )
    page.check("#images-store-only")
    page.click("button:has-text('Upload images')")
    page.get_by_text("Stored 2 images").wait_for()
    assert session.exec(select(Task).where(Task.pool_id == pool.id)).all() == []

    # ... then a TSV in the same pool names them, one as a control task.
    tsv = b"INPUT:image\tGOLDEN:result\nred_0.png\t\nblue_1.png\tdog\n"
    page.set_input_files(
        "input[aria-label='TSV file']", files=[_file("tasks.tsv", tsv, "text/plain")]
    )
    page.click("button:has-text('Upload TSV')")
    page.get_by_text("Imported 2 tasks: 1 general, 1 control").wait_for()

    # The tasks page names each image as uploaded.
    page.click("text=Tasks & control tasks")
    names = sorted(page.locator(".task-tile .task-input").all_inner_texts())
    assert names == ["blue_1.png", "red_0.png"]

    # Answers, an aggregation, and its TSV: INPUT:image is the file name.
    session.expire_all()
    red = session.exec(select(Task).where(Task.pool_id == pool.id, Task.kind == "general")).one()
    people = [make_labeler(session) for _ in range(2)]
    add_answers(session, pool, {red.id: [(people[0], "cat"), (people[1], "cat")]})
    page.goto(f"/requester/pools/{pool.id}/aggregations")
    page.click("button:has-text('Run aggregation')")
    link = page.locator("a:has-text('Download TSV')").first
    link.wait_for()
    results = _rows(page.request.get(link.get_attribute("href")).text())
    assert results[0] == ["INPUT:image", "OUTPUT:result", "CONFIDENCE:result", "MEDIA:url"]
    assert results[1][:2] == ["red_0.png", "cat"]
    stored = page.request.get(results[1][3])  # the stored address, for its owner
    assert stored.ok and stored.headers["content-type"] == "image/png"

    raw = _rows(page.request.get(f"/requester/pools/{pool.id}/results.tsv").text())
    assert {row[0] for row in raw[1:]} == {"red_0.png"}


def test_bad_files_and_unreachable_urls_are_reported_and_can_be_left_out(page, session, settings):
    requester = make_requester(session)
    pool = make_pool(session, requester)
    log_in(page, requester.email)
    page.goto(f"/requester/pools/{pool.id}")
    files = [_file("good.png", png_bytes(40)), _file("notes.png", b"just text, not a picture")]

    # One bad file: nothing imported, the file named in a plain sentence.
    page.set_input_files("input[aria-label='Image files']", files=files)
    page.click("button:has-text('Upload images')")
    alert = page.locator("#upload-result .flash-error")
    alert.wait_for()
    text = alert.inner_text()
    assert "notes.png: not a readable image" in text
    assert "UnidentifiedImageError" not in text and ".." not in text

    # The explicit choice: import the good ones and list the bad.
    page.set_input_files("input[aria-label='Image files']", files=files)
    page.check("#images-skip-bad")
    page.click("button:has-text('Upload images')")
    page.get_by_text("1 file was left out, as you chose").wait_for()
    assert "notes.png" in page.locator("#upload-result table").inner_text()
    assert "Imported 1 tasks" in page.locator("#upload-result").inner_text()

    # A TSV with an unreachable image URL: checked in the background, reported by row.
    settings.check_image_urls = True  # (the tests' default is off: their URLs are made up)
    with ImageServer() as server:
        ok, missing = server.url("/ok.png"), server.url("/missing.png")
        tsv = f"INPUT:image\n{ok}\n{missing}\n".encode()
        page.reload()
        page.set_input_files(
            "input[aria-label='TSV file']", files=[_file("urls.tsv", tsv, "text/plain")]
        )
        page.click("button:has-text('Upload TSV')")
        page.get_by_text("Nothing was imported: row 3: the server answered HTTP 404.").wait_for()
        page.click("#upload-result a:has-text('Upload report')")
        page.locator("h1:has-text('Upload')").wait_for()
        cells = page.locator("table.upload-failures tbody tr td").all_inner_texts()
        assert cells == ["3", missing, "the server answered HTTP 404"]

        page.goto(f"/requester/pools/{pool.id}")
        page.set_input_files(
            "input[aria-label='TSV file']", files=[_file("urls.tsv", tsv, "text/plain")]
        )
        page.check("#tsv-skip-bad")
        page.click("button:has-text('Upload TSV')")
        page.get_by_text("1 row was left out, as you chose").wait_for()

    page.goto(f"/requester/pools/{pool.id}/tasks")
    names = page.locator(".task-tile .task-input").all_inner_texts()
    assert sorted(names) == sorted(["good.png", ok])
