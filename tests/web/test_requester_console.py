"""The requester console pages: projects, pools, uploads, control tasks, budget, progress."""

from __future__ import annotations

import io
import zipfile

from PIL import Image
from sqlmodel import select

from app.db.models import Pool, PoolStatus, Project, Task, TaskKind
from app.services.money import ledger
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler, make_requester


def png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), color).save(buffer, "PNG")
    return buffer.getvalue()


def project_form(**overrides):
    data = {
        "name": "Pets",
        "question": "What is it?",
        "instructions": "Look **closely**. <script>alert(1)</script>",
        "option_label": ["Cat", "Dog", "Other"],
        "option_value": ["cat", "dog", "other"],
    }
    data.update(overrides)
    return data


def test_create_project_then_see_it_with_preview(requester_client, session):
    response = requester_client.post("/requester/projects", data=project_form())
    assert response.status_code == 200
    assert "Pets" in response.text and "<strong>closely</strong>" in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert "<kbd>3</kbd> Other" in response.text
    assert session.exec(select(Project)).one().name == "Pets"
    assert "Pets" in requester_client.get("/requester").text


def test_project_form_shows_inline_errors_and_keeps_values(requester_client, session):
    response = requester_client.post(
        "/requester/projects",
        data=project_form(name="", option_label=["Cat", "Kitty"], option_value=["cat", "cat"]),
    )
    assert response.status_code == 422
    assert "Give the project a name." in response.text
    assert "repeated: cat" in response.text
    assert 'value="Kitty"' in response.text
    assert session.exec(select(Project)).all() == []


def test_nul_bytes_in_the_project_form_are_shown_inline_not_a_500(requester_client, session):
    response = requester_client.post(
        "/requester/projects",
        data=project_form(
            name="Pe\x00ts", instructions="Look\x00", option_value=["c\x00", "d", "o"]
        ),
    )
    assert response.status_code == 422
    assert response.text.count("Contains a NUL byte; remove it.") == 2
    assert "may not contain NUL or other control characters" in response.text
    assert session.exec(select(Project)).all() == []


def test_live_preview_renders_options_with_hotkeys(requester_client):
    response = requester_client.post(
        "/requester/projects/preview",
        data=project_form(question="Which pet?"),
        headers={"HX-Request": "true"},
    )
    assert "Which pet?" in response.text and "<kbd>1</kbd> Cat" in response.text
    assert "<html" not in response.text


def test_create_pool_with_preset_and_errors(requester_client, session, requester):
    project = make_project(session, requester)
    form = {
        "name": "Batch 1",
        "price": "0.005",
        "overlap": "0",
        "general_per_suite": "9",
        "control_per_suite": "1",
        "time_limit_seconds": "600",
        "review_period_days": "7",
        "quality_preset": "on",
    }
    bad = requester_client.post(f"/requester/projects/{project.id}/pools", data=form)
    assert bad.status_code == 422
    assert "Two decimals at most." in bad.text and "At least 1." in bad.text
    assert 'value="Batch 1"' in bad.text
    form.update(price="0.05", overlap="3", languages="en, de", min_rating="40")
    form.update(captcha_frequency="LOW")
    ok = requester_client.post(f"/requester/projects/{project.id}/pools", data=form)
    assert ok.status_code == 200 and "Batch 1" in ok.text and "one per 20 tasks" in ok.text
    pool = session.exec(select(Pool)).one()
    assert (pool.reward_cents, pool.overlap, pool.filter_languages) == (5, 3, ["EN", "DE"])
    assert pool.min_rating == 40 and pool.auto_accept and pool.captcha_frequency == "LOW"
    assert [c["collector_config"]["type"] for c in pool.quality_rules] == [
        "ASSIGNMENT_SUBMIT_TIME",
        "MAJORITY_VOTE",
        "GOLDEN_SET",
    ]


def test_zip_upload_via_htmx_then_counts_by_kind(requester_client, session, requester):
    pool = make_pool(session, requester)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Data/cat/a.png", png((1, 1, 1)))
        archive.writestr("Data/dog/b.png", png((2, 2, 2)))
    response = requester_client.post(
        f"/requester/pools/{pool.id}/upload",
        data={"kind": "zip", "general_count": "1"},
        files={"files": ("d.zip", buffer.getvalue(), "application/zip")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and response.headers["HX-Redirect"].endswith(
        f"/requester/pools/{pool.id}"
    )
    page = requester_client.get(f"/requester/pools/{pool.id}").text
    assert "Imported 3 tasks: 1 general, 2 control" in page


def test_bad_tsv_upload_shows_rows_inline(requester_client, session, requester):
    pool = make_pool(session, requester)
    tsv = "INPUT:image\tGOLDEN:result\nhttps://a.example/1.png\tcow\n\tcat\n"
    response = requester_client.post(
        f"/requester/pools/{pool.id}/upload",
        data={"kind": "tsv"},
        files={"files": ("t.tsv", tsv.encode(), "text/tab-separated-values")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert "row 2: GOLDEN:result &#39;cow&#39;" in response.text
    assert "row 3: INPUT:image is empty" in response.text
    assert session.exec(select(Task)).all() == []


def test_mark_control_save_and_next_and_distribution(requester_client, session, requester):
    pool = make_pool(session, requester)
    first, second = add_tasks(session, pool, general=2)
    response = requester_client.post(
        f"/requester/pools/{pool.id}/tasks/{first.id}/control",
        data={"answer": "dog", "go_next": "1"},
        follow_redirects=False,
    )
    assert response.headers["location"].endswith(f"/tasks/{second.id}")
    page = requester_client.get(f"/requester/pools/{pool.id}/tasks").text
    assert "Distribution of correct responses" in page
    assert "Unbalanced control tasks" in page
    session.expire_all()
    assert session.get(Task, first.id).kind == TaskKind.CONTROL
    requester_client.post(f"/requester/pools/{pool.id}/tasks/{first.id}/unmark")
    session.expire_all()
    assert session.get(Task, first.id).kind == TaskKind.GENERAL


def test_launch_refused_with_shortfall_then_top_up_and_launch(requester_client, session, requester):
    pool = make_pool(session, requester, reward_cents=100, overlap=1, general_per_suite=1)
    add_tasks(session, pool, general=3, control=["cat"])
    review = requester_client.get(f"/requester/pools/{pool.id}/launch").text
    assert "3 × $1.00 = $3.00" in review and "Top up $3.00" in review
    refused = requester_client.post(f"/requester/pools/{pool.id}/launch")
    assert refused.status_code == 409 and "Top up at least $3.00" in refused.text
    topped = requester_client.post(
        "/requester/balance/top-up",
        data={"amount": "5", "next": f"/requester/pools/{pool.id}/launch"},
    )
    assert "Added $5.00" in topped.text
    launched = requester_client.post(f"/requester/pools/{pool.id}/launch")
    assert launched.status_code == 200 and "is open" in launched.text
    session.expire_all()
    assert session.get(Pool, pool.id).status == PoolStatus.OPEN
    assert ledger.get_balance(session, user=requester) == 200
    closed = requester_client.post(f"/requester/pools/{pool.id}/close")
    assert "$3.00" in closed.text or "3.00 USD" in closed.text
    assert ledger.get_balance(session, user=requester) == 500


def test_balance_page_validates_and_lists_history(requester_client, session, requester):
    bad = requester_client.post("/requester/balance/top-up", data={"amount": "abc"})
    assert bad.status_code == 422 and "Not a number." in bad.text
    requester_client.post("/requester/balance/top-up", data={"amount": "12.50"})
    page = requester_client.get("/requester/balance").text
    assert "$12.50" in page and "topup" in page


def test_progress_partial_and_raw_tsv(requester_client, session, requester):
    pool = make_pool(session, requester, overlap=2)
    general, control = add_tasks(session, pool, general=1, control=["cat"])
    open_pool(session, requester, pool)
    ann, bob = make_labeler(session, name="Ann"), make_labeler(session, name="Bob")
    add_answers(
        session,
        pool,
        {general.id: [(ann, "dog"), (bob, "dog")], control.id: [(ann, "cat"), (bob, "dog")]},
        status="submitted",
    )
    html = requester_client.get(
        f"/requester/pools/{pool.id}/progress", headers={"HX-Request": "true"}
    ).text
    assert 'hx-trigger="every 3s"' in html
    assert '4</span><span class="label">answers collected' in html
    assert "Ann" in html and "100% of 1" in html and "0% of 1" in html
    tsv = requester_client.get(f"/requester/pools/{pool.id}/results.tsv").text
    lines = tsv.strip().split("\n")
    assert lines[0].split("\t") == [
        "INPUT:image",
        "OUTPUT:result",
        "GOLDEN:result",
        "ASSIGNMENT:worker_id",
        "ASSIGNMENT:assignment_id",
        "ASSIGNMENT:started",
        "ASSIGNMENT:submitted",
    ]
    assert len(lines) == 5
    assert any(line.split("\t")[1:3] == ["dog", "cat"] for line in lines[1:])


def test_another_requesters_pages_are_not_found(requester_client, session):
    other = make_requester(session)
    pool = make_pool(session, other)
    for path in (
        f"/requester/projects/{pool.project_id}",
        f"/requester/pools/{pool.id}",
        f"/requester/pools/{pool.id}/tasks",
        f"/requester/pools/{pool.id}/results.tsv",
    ):
        assert requester_client.get(path).status_code == 404, path
    assert requester_client.post(f"/requester/pools/{pool.id}/launch").status_code == 404


def test_clone_project_from_its_page(requester_client, session, requester):
    project = make_project(session, requester, name="Pets", instructions="Be quick.")
    make_pool(session, requester, project, name="Batch A", captcha_frequency="LOW")
    page = requester_client.get(f"/requester/projects/{project.id}")
    assert "Clone project" in page.text
    response = requester_client.post(
        f"/requester/projects/{project.id}/clone", data={"with_pools": "on"}
    )
    assert response.status_code == 200
    assert "Cloned into “Pets (copy)” with 1 draft pool(s), no tasks." in response.text
    clone = session.exec(select(Project).where(Project.name == "Pets (copy)")).one()
    assert clone.instructions == "Be quick." and str(clone.id) in str(response.url)
    (pool,) = session.exec(select(Pool).where(Pool.project_id == clone.id)).all()
    assert (pool.name, pool.captcha_frequency, pool.status) == ("Batch A", "LOW", "draft")
    bare = requester_client.post(f"/requester/projects/{project.id}/clone", data={})
    assert "Cloned into “Pets (copy)”." in bare.text
    other = make_requester(session)
    foreign = make_project(session, other)
    assert requester_client.post(f"/requester/projects/{foreign.id}/clone").status_code == 404
