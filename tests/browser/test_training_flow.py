"""Train a model in the browser: live progress by polling, cancel, evaluation, inference.

Jobs run on a real queue here (an in-process consumer thread), so the page really polls a
running training job.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import log_in
from tests.builders.models import digit_pngs, make_collection, quiet_torch_threads
from tests.builders.users import make_requester


@pytest.fixture
def app(settings, monkeypatch):
    """The app with a queued (not immediate) job runner inside the server process."""
    from tests.conftest import _clear_caches

    monkeypatch.setenv("CROWDLAB_JOBS_IMMEDIATE", "false")
    monkeypatch.setenv("CROWDLAB_WORKER_THREADS", "1")
    _clear_caches()
    quiet_torch_threads()
    import model.factory  # noqa: F401  (torch and timm load once, before any page asks)
    import model.train  # noqa: F401
    from app.main import create_app

    return create_app(start_jobs=True)


def _start_training(page, collection_id: int, epochs: int) -> None:
    page.goto("/requester/models/train")
    page.select_option("#f-arch", "test_resnet")
    assert page.locator('.arch-detail[data-arch="test_resnet"]').is_visible()
    assert not page.locator('.arch-detail[data-arch="resnet18"]').is_visible()
    page.select_option("#f-collection_id", str(collection_id))
    page.fill("#f-epochs", str(epochs))
    page.fill("#f-batch_size", "8")
    page.fill("#f-lr", "0.01")
    page.fill("#f-image_size", "16")
    page.select_option("#f-augmentation", "none")
    page.select_option("#f-device", "cpu")
    page.click("#start-training")
    page.wait_for_url(re.compile(r"/requester/models/\d+$"))


def _wait_for_epoch_progress(page, epochs: int) -> None:
    """Wait until the polled progress bar shows epoch, step and loss."""
    page.wait_for_function(
        "document.querySelector('.job-progress') && "
        f"/Epoch \\d+\\/{epochs} · step \\d+\\/\\d+ · loss/.test("
        "document.querySelector('.job-progress').innerText)",
        timeout=60_000,
    )


def test_train_watch_progress_evaluate_publish_and_predict(page, session, tmp_path):
    requester = make_requester(session, email="trainer@example.com")
    collection = make_collection(session, requester, per_class=20)
    log_in(page, "trainer@example.com")

    # A long run is cancelled from its page once it is running.
    _start_training(page, collection.id, epochs=200)
    _wait_for_epoch_progress(page, 200)
    page.click("#cancel-training")
    page.wait_for_selector("#model-status:text('cancelled')", timeout=60_000)
    assert "Cancelled by its owner" in page.inner_text("#model-message")

    # A short run: it may finish between two polls of its progress bar (the long run
    # above showed the bar), so only the evaluation that replaces the bar is awaited.
    _start_training(page, collection.id, epochs=12)
    page.wait_for_selector("#accuracy", timeout=180_000)  # reloaded when the job ended
    assert "training from scratch" in page.inner_text("#model-message")
    assert page.locator("#per-class tbody tr").count() == 3
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img.figure')).every(i => i.complete)"
    )
    image_ok = page.evaluate(
        "Array.from(document.querySelectorAll('img.figure')).every(i => i.naturalWidth > 0)"
    )
    assert image_ok
    page.evaluate(
        "const s = document.getElementById('threshold-slider'); s.value = '0.9';"
        "s.dispatchEvent(new Event('input'))"
    )
    assert page.inner_text("#threshold-value") == "90%"
    assert re.fullmatch(r"\d+\.\d%", page.inner_text("#threshold-precision"))

    page.fill("#f-name", "digits-browser")
    page.click("#publish button[type=submit]")
    assert page.inner_text("#prediction-key").startswith("pk_")

    files = []
    for label in ("0", "1"):
        path = tmp_path / f"digit-{label}.png"
        path.write_bytes(digit_pngs()[label][60])
        files.append(str(path))
    page.goto("/requester/inference")
    assert "digits-browser" in page.inner_text("#f-model_id")
    page.set_input_files("#f-files", files)
    page.click("#predict")
    page.wait_for_selector("#results")
    assert page.locator(".prediction .top-class").count() == 2
    assert page.locator(".prediction .bar-row").count() == 6  # 3 classes each
    assert page.locator(".prediction img.prediction-image").count() == 2
