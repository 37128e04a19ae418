"""The pool form sets the model's retraining; the pool page shows the model's confusion
matrix (truth × its answer, with each class's accuracy) and when it retrains next."""

from __future__ import annotations

from app.db.models import Pool
from app.services.projects import pool_model
from tests.builders.models import make_collection, make_trained_model
from tests.builders.pools import add_tasks, make_pool, make_project

FORM = {
    "name": "Digits",
    "price": "0.05",
    "overlap": "1",
    "general_per_suite": "4",
    "control_per_suite": "1",
    "time_limit_seconds": "600",
    "review_period_days": "7",
    "max_overlap": "3",
    "min_confidence": "0.9",
}


def test_the_pool_form_sets_retraining_and_refuses_it_without_dynamic_overlap(
    requester_client, session, requester
):
    project = make_project(session, requester, options=("0", "1", "2"))
    base = make_collection(session, requester, name="Base digits")
    refused = requester_client.post(
        f"/requester/projects/{project.id}/pools",
        data={**FORM, "max_overlap": "", "model_retrain_every": "50"},
    )
    assert refused.status_code == 422
    assert "set a maximum overlap and a minimum confidence first" in refused.text
    assert 'value="50"' in refused.text  # what was typed stays
    bad = requester_client.post(
        f"/requester/projects/{project.id}/pools", data={**FORM, "model_retrain_every": "0"}
    )
    assert bad.status_code == 422 and "At least 1." in bad.text
    ok = requester_client.post(
        f"/requester/projects/{project.id}/pools",
        data={**FORM, "model_retrain_every": "50", "model_retrain_collection_id": str(base.id)},
    )
    assert ok.status_code == 200
    pool = session.query(Pool).one()
    assert (pool.model_retrain_every, pool.model_retrain_collection_id) == (50, base.id)
    assert "Retrains every 50 confident tasks" in ok.text and "Base digits" in ok.text
    form = requester_client.get(f"/requester/pools/{pool.id}/edit").text
    assert 'name="model_retrain_every" type="number" value="50"' in form
    assert f'<option value="{base.id}" selected>' in form


def test_the_pool_page_shows_the_models_confusion_matrix(requester_client, session, requester):
    project = make_project(session, requester, options=("0", "1", "2"))
    pool = make_pool(session, requester, project, overlap=1, max_overlap=3, min_confidence=0.9)
    tasks = add_tasks(session, pool, control=["0", "0", "1", "1", "2"])
    model = make_trained_model(session, requester, published_name="digits")
    pool.model_id = model.id
    session.add(pool)
    session.commit()
    said = ["0", "0", "0", "1", "2"]  # one "1" called "0"
    pool_model.record_control_answers(
        session,
        pool_id=pool.id,
        answers=[(t.id, t.known_answer, s, 0.9) for t, s in zip(tasks, said, strict=True)],
    )
    session.commit()
    page = requester_client.get(f"/requester/pools/{pool.id}").text
    assert 'id="model-confusion"' in page
    table = page.split('id="model-confusion"')[1].split("</table>")[0]
    rows = table.split("<tr>")[2:]
    assert '<th scope="row">1</th>' in rows[1] and "50%" in rows[1]  # 1 of 2 ones right
    assert "100%" in rows[0] and "100%" in rows[2]
    assert "learned from 5 tasks" in page
