"""The Train page offers real architectures only, defaults that suit the machine and the
collection, and an estimated duration that follows the settings."""

from __future__ import annotations

import re

import pytest

from app.services.ml import train_defaults
from tests.browser.conftest import log_in
from tests.builders.models import make_collection
from tests.builders.users import make_requester


@pytest.fixture
def app(settings, monkeypatch):
    """The app as an instance runs it: test networks hidden, and no GPU (whatever this
    machine has), so the CPU defaults apply."""
    from tests.conftest import _clear_caches

    monkeypatch.setenv("CROWDLAB_SHOW_TEST_ARCHITECTURES", "false")
    monkeypatch.setattr(train_defaults, "cuda_available", lambda: False)
    _clear_caches()
    import model.factory  # noqa: F401  (torch and timm load once, before the page asks)
    from app.main import create_app

    return create_app(start_jobs=False)


def _minutes(text: str) -> float:
    if "under a minute" in text:
        return 0.5
    found = re.search(r"about ([\d.]+) (min|h)", text)
    return float(found.group(1)) * (60 if found.group(2) == "h" else 1)


def test_train_form_hides_test_networks_and_suits_a_cpu(page, session):
    requester = make_requester(session, email="form@example.com")
    collection = make_collection(session, requester, per_class=20)
    log_in(page, "form@example.com")
    page.goto("/requester/models/train", timeout=60_000)

    options = page.eval_on_selector_all("#f-arch option", "els => els.map(e => e.value)")
    assert "resnet18" in options and not [o for o in options if o.startswith("test_")]
    assert "tests only" not in page.inner_text("#f-arch")

    # One collection: chosen, with CPU defaults (a small network at a small size).
    assert page.input_value("#f-collection_id") == str(collection.id)
    assert page.input_value("#f-arch") == "resnet10t"
    assert page.input_value("#f-image_size") == "128"
    assert page.input_value("#f-epochs") == "10"
    assert "No GPU" in page.inner_text("#device-note")
    first = page.inner_text("#train-estimate")
    assert "Estimated duration" in first and "CPU" in first

    # The estimate follows heavier settings.
    page.select_option("#f-arch", "resnet50")
    page.fill("#f-image_size", "224")
    page.fill("#f-epochs", "100")
    heavier = page.inner_text("#train-estimate")
    assert _minutes(heavier) > _minutes(first)
    # choosing the collection again keeps what the user set
    page.select_option("#f-collection_id", "")
    page.select_option("#f-collection_id", str(collection.id))
    assert page.input_value("#f-arch") == "resnet50"
    assert page.input_value("#f-epochs") == "100"

    # A test network posted by name is still accepted by the service (API, tests).
    from app.services.ml import trained_models

    model = trained_models.start_training(
        session, requester=requester, collection_id=collection.id,
        settings={"arch": "test_resnet", "epochs": 1, "image_size": 16}, dispatch=False,
    )  # fmt: skip
    assert model.arch == "test_resnet"
