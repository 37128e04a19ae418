"""The whole loop the way people do it, in one browser session per person.

A requester signs up, creates a project with three options, a pool (overlap 3, suites of
3 general + 1 control task, the image-classification quality preset), uploads a ZIP of
class folders, marks one more control task, tops up and launches. Four labelers work in
their own browser contexts with the keyboard only: one answers instantly and is banned by
the fast-responses rule after four suites (its answers are excluded, so its slots go back
to the pool), and three careful ones then label every task. The requester watches the
pool reach 100 %, runs Dawid-Skene, downloads the TSV, builds a collection from it, trains
a tiny model, publishes it and classifies an uploaded image on the Inference page.

How "fast" and "careful" are told apart reliably: the preset calls a suite fast under
15 s, and a browser that answers at once is fast; so the requester lowers that threshold
to 3 s on the pool's quality page (the same edit a requester makes), and the careful
labelers keep each suite open for at least 3.5 s. The three careful labelers take their
suites side by side and wait once per round, so the waiting costs ~4 rounds × 3.5 s.
The fast labeler submits within a few hundred milliseconds, far under 3 s.

Jobs run immediately here (aggregation and training finish inside their POST request).
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import zipfile

from tests.browser.conftest import sign_up
from tests.builders.models import digit_pngs, quiet_torch_threads

CLASSES = ("0", "1", "2")
PER_CLASS = 5
GENERAL_FROM_ZIP = 12
FAST_THRESHOLD = 3
CAREFUL_SECONDS = 3.5


def _dataset() -> tuple[bytes, dict[str, str]]:
    """A ZIP of class folders of digit PNGs, and each image's digit by SHA-256."""
    truth: dict[str, str] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in CLASSES:
            for n, png in enumerate(digit_pngs()[label][:PER_CLASS]):
                archive.writestr(f"digits/{label}/{label}-{n}.png", png)
                truth[hashlib.sha256(png).hexdigest()] = label
    return buffer.getvalue(), truth


def _set_up_pool(page, zip_data: bytes, truth: dict[str, str]) -> str:
    """Project, pool, quality threshold, upload, one more control task, top-up, launch."""
    sign_up(page, "requester", "requester@journey.test")
    page.click("text=New project")
    page.fill("#f-name", "Digits")
    page.fill("#f-question", "Which digit is this?")
    labels = page.locator("input[name=option_label]")
    values = page.locator("input[name=option_value]")
    for i, (label, value) in enumerate((("Zero", "0"), ("One", "1"), ("Two", "2"))):
        if i >= labels.count():
            page.click("#add-option")
        labels.nth(i).fill(label)
        values.nth(i).fill(value)
    page.click("button:has-text('Create project')")

    page.click("text=New pool")
    page.fill("#f-name", "Digits batch")
    page.fill("#f-price", "0.05")
    page.fill("#f-overlap", "3")
    page.fill("#f-general_per_suite", "3")
    page.fill("#f-control_per_suite", "1")
    page.check("input[name=quality_preset]")
    page.click("button:has-text('Create pool')")
    pool_url = page.url.split("?")[0]
    assert re.search(r"/requester/pools/\d+$", pool_url)

    page.goto(pool_url + "/quality")
    fast_rule = page.locator(".rule-row[data-collector=ASSIGNMENT_SUBMIT_TIME]")
    assert fast_rule.locator("input[name$='-threshold']").input_value() == "15"
    fast_rule.locator("input[name$='-threshold']").fill(str(FAST_THRESHOLD))
    page.click("button:has-text('Save rules')")
    page.goto(pool_url + "/quality")
    assert fast_rule.locator("input[name$='-threshold']").input_value() == str(FAST_THRESHOLD)

    page.goto(pool_url)
    page.set_input_files(
        "#zip-file",
        files=[{"name": "digits.zip", "mimeType": "application/zip", "buffer": zip_data}],
    )
    page.fill("#f-general_count", str(GENERAL_FROM_ZIP))
    page.click("button:has-text('Upload ZIP')")
    page.get_by_text("Imported 27 tasks: 12 general, 15 control").wait_for()

    page.goto(pool_url + "/tasks?kind=general")
    page.locator(".task-tile").first.click()
    src = page.locator("main img").first.get_attribute("src")
    page.check(f"input[name=answer][value='{truth[_sha_of(page, src)]}']")
    page.click("button:has-text('Save and go to next')")
    page.goto(pool_url + "/tasks?kind=control")
    assert "16 tasks" in page.content()

    page.goto(pool_url)
    page.click("text=Launch…")
    assert "11 × $0.05 = $0.55" in page.locator("#budget").inner_text()
    page.click("button:has-text('Launch pool')")
    page.click("a:has-text('Top up')")
    page.fill("#f-amount", "1.00")
    page.click("button:has-text('Top up')")
    page.click("button:has-text('Launch pool')")
    assert "open" in page.locator("h1 .badge").inner_text()
    return pool_url


def _sha_of(page, src: str) -> str:
    """The image's content hash: its address is opaque, so fetch it as the labeler would."""
    response = page.request.get(src)
    assert response.ok, src
    return hashlib.sha256(response.body()).hexdigest()


def _start(page, email: str) -> None:
    sign_up(page, "labeler", email)
    page.goto("/labeler")
    page.click("button:has-text('Start labeling')")
    page.wait_for_selector("#task-0:focus")


def _answer_and_submit(page, truth: dict[str, str] | None) -> str:
    """Answer every task with the keyboard ("0" for all without ``truth``), press Enter;
    returns what came back: ``suite``, ``banned`` or ``done``."""
    tasks = page.locator(".suite-task")
    for i in range(tasks.count()):
        page.wait_for_selector(f"#task-{i}:focus")
        value = "0"
        if truth is not None:
            value = truth[_sha_of(page, tasks.nth(i).locator("img").get_attribute("src"))]
        page.keyboard.press(value)  # a one-digit option's key is that digit
    page.evaluate("document.getElementById('suite').dataset.old = '1'")
    page.keyboard.press("Enter")
    page.wait_for_selector(
        ".ban-notice, #suite:not([data-old]) .empty, #suite:not([data-old]) #task-0"
    )
    if page.locator(".ban-notice").count():
        return "banned"
    if page.locator(".suite-task").count():
        page.wait_for_selector("#task-0:focus")
        return "suite"
    return "done"


def test_requester_and_labelers_go_through_the_whole_loop(new_page, tmp_path):
    quiet_torch_threads()
    import model.factory  # noqa: F401  (timm loads once, not while the Train page waits)

    zip_data, truth = _dataset()
    requester = new_page()
    pool_url = _set_up_pool(requester, zip_data, truth)

    # The fast labeler: four instant suites (right answers, so the control-task rule stays
    # quiet), then the fast-responses rule bans it.
    fast = new_page()
    _start(fast, "fast@journey.test")
    outcomes = [_answer_and_submit(fast, truth) for _ in range(4)]
    assert outcomes == ["suite", "suite", "suite", "banned"]
    assert "came too fast" in fast.inner_text(".ban-notice")

    # Three careful labelers take every task (the fast one's slots came back).
    careful = [new_page() for _ in range(3)]
    opened = {}
    for n, page in enumerate(careful):
        _start(page, f"careful{n}@journey.test")
        opened[n] = time.monotonic()
    suites = dict.fromkeys(range(3), 0)
    while opened:
        time.sleep(max(0.0, max(opened.values()) + CAREFUL_SECONDS - time.monotonic()))
        for n in list(opened):
            outcome = _answer_and_submit(careful[n], truth)
            suites[n] += 1
            assert outcome != "banned"
            if outcome == "done":
                del opened[n]
            else:
                opened[n] = time.monotonic()
    # The fast labeler's four paid suites were re-issued: the pool needs more than the
    # reservation (11 suites + 30 % margin for the rules' re-issues), stops handing out
    # suites, and asks the requester, who adds what finishes the work.
    requester.goto(pool_url)
    notice = requester.inner_text("#reservation-used-up")
    assert "More money needed: labelers get no new suites" in notice
    requester.click("#add-reservation")
    assert "to the reservation: labelers can take suites again" in requester.content()
    for page in careful:
        page.goto("/labeler")
        if not page.locator("button:has-text('Start labeling')").count():
            continue
        page.click("button:has-text('Start labeling')")
        page.wait_for_selector("#task-0:focus, .empty")
        while page.locator(".suite-task").count():
            suites[careful.index(page)] += 1
            _answer_and_submit(page, truth)
    assert sum(suites.values()) == 12  # 11 general tasks × 3 / 3 per suite (+ one short)

    # The requester watches the pool complete.
    requester.goto(pool_url)
    requester.wait_for_selector("#pool-progress:has-text('11 / 11 tasks done')")
    assert requester.get_attribute("#pool-progress .progress", "aria-valuenow") == "100"
    assert "completed" in requester.inner_text("#pool-progress .badge")

    # Dawid-Skene and its TSV.
    requester.goto(pool_url + "/aggregations")
    requester.select_option("#f-method", "ds")
    requester.click("button:has-text('Run aggregation')")
    requester.goto(pool_url + "/aggregations")
    with requester.expect_download() as download:
        requester.click("a:has-text('Download TSV')")
    rows = download.value.path().read_text(encoding="utf-8").strip().splitlines()
    assert rows[0] == "INPUT:image\tOUTPUT:result\tCONFIDENCE:result\tMEDIA:url"
    assert len(rows) == 1 + 11
    # each image named by its path in the uploaded ZIP; MEDIA:url is where it is stored
    assert all(row.split("\t")[0].endswith(".png") for row in rows[1:])
    assert all("/media/" in row.split("\t")[3] for row in rows[1:])
    assert all(row.split("\t")[1] in CLASSES for row in rows[1:])

    # A collection from it, a tiny model, published, then the Inference page.
    requester.goto("/requester/collections/from-aggregation")
    requester.fill("#f-min_confidence", "0.5")
    requester.fill("#f-name", "digits-journey")
    requester.check("input[name=include_control]")
    requester.click("button:has-text('Create collection')")
    requester.wait_for_url(re.compile(r"/requester/collections/\d+$"))
    collection_id = requester.url.rsplit("/", 1)[1]

    requester.goto("/requester/models/train")
    requester.select_option("#f-arch", "test_resnet")
    requester.select_option("#f-collection_id", collection_id)
    requester.fill("#f-epochs", "2")
    requester.fill("#f-batch_size", "8")
    requester.fill("#f-lr", "0.01")
    requester.fill("#f-image_size", "16")
    requester.select_option("#f-augmentation", "none")
    requester.select_option("#f-device", "cpu")
    requester.click("#start-training")
    requester.wait_for_selector("#accuracy", timeout=90_000)
    requester.fill("#publish input[name=name]", "digits-journey")
    requester.click("#publish button[type=submit]")
    assert requester.inner_text("#prediction-key").startswith("pk_")

    image = tmp_path / "two.png"
    image.write_bytes(digit_pngs()["2"][40])
    requester.goto("/requester/inference")
    assert "digits-journey" in requester.inner_text("#f-model_id")
    requester.set_input_files("#f-files", str(image))
    requester.click("#predict")
    requester.wait_for_selector("#results")
    prediction = requester.locator(".prediction")
    assert prediction.count() == 1
    assert re.fullmatch(r"[012] \d+(\.\d)?%", prediction.locator(".top-class").inner_text().strip())
