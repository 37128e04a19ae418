"""A requester sets up a pool in a real browser: project with 3 options, pool, ZIP upload,
control tasks, top-up, launch."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from tests.browser.conftest import sign_up


def dataset_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label_index, label in enumerate(("cat", "dog", "other")):
            for i in range(2):
                image = io.BytesIO()
                Image.new("RGB", (32, 32), (80 * label_index, 40 * i, 200)).save(image, "PNG")
                archive.writestr(f"Dataset/{label}/{label}{i}.png", image.getvalue())
    return buffer.getvalue()


def test_requester_creates_project_pool_uploads_marks_tops_up_and_launches(page):
    sign_up(page, "requester", "req@example.com")
    page.click("text=New project")

    page.fill("#f-name", "Pets")
    page.fill("#f-question", "What is in the picture?")
    page.fill("#f-instructions", "Pick the **animal** you see.")
    labels = page.locator("input[name=option_label]")
    values = page.locator("input[name=option_value]")
    for i, (label, value) in enumerate((("Cat", "cat"), ("Dog", "dog"), ("Other", "other"))):
        if i >= labels.count():
            page.click("#add-option")
        labels.nth(i).fill(label)
        values.nth(i).fill(value)
    # The live preview follows the form (htmx).
    page.locator("#preview").get_by_text("Other").wait_for()
    assert "What is in the picture?" in page.locator("#preview").inner_text()
    page.click("button:has-text('Create project')")
    assert page.locator("h1").first.inner_text().startswith("Pets")

    page.click("text=New pool")
    page.fill("#f-name", "Batch 1")
    page.fill("#f-price", "0.10")
    page.fill("#f-overlap", "3")
    page.fill("#f-general_per_suite", "3")
    page.fill("#f-control_per_suite", "1")
    page.click("button:has-text('Create pool')")
    assert "Batch 1" in page.locator("h1").first.inner_text()

    # ZIP of class folders: 6 images → 6 control tasks, 3 of them also general tasks.
    page.set_input_files(
        "#zip-file",
        files=[{"name": "pets.zip", "mimeType": "application/zip", "buffer": dataset_zip()}],
    )
    page.fill("#f-general_count", "3")
    page.click("button:has-text('Upload ZIP')")
    page.get_by_text("Imported 9 tasks: 3 general, 6 control").wait_for()

    # Mark a general task as a control task with "Save and go to next".
    page.click("text=Tasks & control tasks")
    page.goto(page.url + "?kind=general")
    page.locator(".task-tile").first.click()
    page.check("input[name=answer][value=dog]")
    page.click("button:has-text('Save and go to next')")
    assert page.locator("h1").first.inner_text().startswith("Task")
    page.goto(page.url.rsplit("/tasks/", 1)[0] + "/tasks?kind=control")
    assert "7 tasks" in page.content()
    chart = page.locator("#distribution .bar-row")
    assert chart.count() == 3
    assert "3" in chart.nth(1).inner_text()  # dog: 2 from the ZIP + 1 marked

    # Launch: 2 general left × overlap 3 / 3 per suite = 2 suites × $0.10 = $0.20, plus the
    # preset's 30 % margin for re-issued tasks (1 suite) = $0.30 reserved; balance $0.
    page.goto(page.url.split("/tasks")[0])
    page.click("text=Launch…")
    assert "2 × $0.10 = $0.20" in page.locator("#budget").inner_text()
    assert "$0.20 and $0.30" in page.inner_text("#budget-range")
    page.click("button:has-text('Launch pool')")
    assert "Top up at least $0.30" in page.content()
    page.click("a:has-text('Top up $0.30')")
    page.fill("#f-amount", "1.00")
    page.click("button:has-text('Top up')")
    assert "Added $1.00" in page.content()
    page.click("button:has-text('Launch pool')")
    assert "is open" in page.content()
    assert "open" in page.locator("h1 .badge").inner_text()
    page.goto("/requester/balance")
    assert "$0.70" in page.locator("#balance").inner_text()
