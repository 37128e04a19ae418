"""The demo: a small run end to end, its results seen through the console; the first-start
box on the home page; the ``crowdlab demo`` command."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from app.db.models import Ban, User
from app.services.demo import scenario as demo
from tests.builders.models import quiet_torch_threads
from tests.builders.users import csrf_of, login

SMALL = demo.DemoSize(
    per_class=3,
    control_per_class=1,
    general_per_suite=3,
    arch="test_resnet",
    epochs=1,
    train_image_size=16,
)


@pytest.fixture
def small_demo(monkeypatch):
    """Every demo run in these tests is the small one (30 digits, one epoch of a test net)."""
    quiet_torch_threads()
    monkeypatch.setattr(demo, "DemoSize", lambda: SMALL)


def _user(session, email):
    return session.exec(select(User).where(User.email == email)).one()


def test_demo_bans_the_fast_labeler_aggregates_and_publishes_a_model(session, make_client):
    quiet_torch_threads()
    result = demo.run_demo(session, labelers=6, size=SMALL)
    session.expire_all()

    fast = next(p for p in result.labelers if p.kind == "fast")
    banned = session.exec(select(Ban).where(Ban.labeler_id == _user(session, fast.email).id)).one()
    assert banned.source != "manual"
    assert "Fast responses" in banned.private_comment
    assert fast.suites == 4  # 4 of the last 5 suites under 15 s
    careful = [p for p in result.labelers if p.kind == "careful"]
    assert careful and not any(p.banned for p in careful)
    assert result.tasks == {"general": 30, "control": 10, "training": 0}
    assert result.tsv_rows == 30 and result.accuracy >= 0.8
    assert result.prediction_key.startswith("pk_")
    # the second pool: dynamic overlap with the model answering first buys fewer answers
    assert result.loop_tasks == 30
    assert 30 <= result.loop_answers < result.loop_fixed_answers == 90
    assert result.loop_accuracy >= 0.7

    requester = _user(session, demo.REQUESTER_EMAIL)
    client = login(make_client(), requester, password=demo.DEFAULT_PASSWORD)
    pool_page = client.get(f"/requester/pools/{result.pool_id}").text
    assert "Handwritten digits" in pool_page and "30 / 30 tasks done" in pool_page
    assert "closed · completed" in pool_page
    runs = client.get(f"/requester/pools/{result.pool_id}/aggregations").text
    assert "Dawid-Skene" in runs
    tsv = client.get(
        f"/requester/pools/{result.pool_id}/aggregations/{result.run_id}/results.tsv"
    ).text
    rows = tsv.strip().splitlines()
    assert rows[0] == "INPUT:image\tOUTPUT:result\tCONFIDENCE:result\tMEDIA:url"
    assert len(rows) == 31
    # INPUT:image names each image as it was uploaded; MEDIA:url is where it is stored
    first = rows[1].split("\t")
    assert first[0].startswith("digit-") and first[0].endswith(".png")
    assert "/media/" in first[3]
    with open(result.tsv_path, encoding="utf-8") as handle:
        assert handle.read() == tsv
    inference = client.get("/requester/inference").text
    assert "digits" in inference

    labeler = _user(session, fast.email)
    fast_client = login(make_client(), labeler, password=demo.DEFAULT_PASSWORD)
    assert "too fast" in fast_client.get("/labeler").text


def test_demo_refuses_an_instance_that_has_accounts(session, requester):
    with pytest.raises(demo.Conflict, match="already has accounts"):
        demo.run_demo(session, size=SMALL, train=False)


def test_first_start_offers_demo_data_and_shows_the_accounts(client, small_demo):
    offer = client.get("/demo/offer").text
    assert "Fill with demo data" in offer
    assert re.search(r'hx-get="[^"]*/demo/offer"', client.get("/").text)

    token = csrf_of(client, "/")
    response = client.post("/demo", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303  # jobs are immediate here: already done
    page = client.get(response.headers["location"]).text
    assert "Demo ready" in page
    assert demo.REQUESTER_EMAIL in page and "labeler1@demo.crowdlab.test" in page
    assert "banned" in page and "crowdlab-demo" in page
    assert "published" not in page  # the box was unticked: no model

    assert client.get("/demo/offer").text == ""  # accounts exist now: no more offer
    again = client.post("/demo", data={"csrf_token": token}, follow_redirects=False)
    assert again.status_code == 409
    assert client.get("/demo/999").status_code == 404


def test_cli_demo_prints_credentials_and_what_it_did(small_demo, capsys):
    from app.cli import main

    assert main(["demo", "--no-train", "--labelers", "5", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"requester  {demo.REQUESTER_EMAIL}  password: crowdlab-demo" in out
    assert re.search(r"labeler1@demo\.crowdlab\.test .*\(fast, 4 suites; banned: ", out)
    assert re.search(r"Dawid-Skene run \d+: 30 labels", out)
    assert "published" not in out

    assert main(["demo", "-q"]) == 2
    assert "already has accounts" in capsys.readouterr().err
