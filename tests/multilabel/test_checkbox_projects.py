"""Several answers (checkboxes): projects, control sets, submitting sets, the labeler page,
per-option control accuracy, and the Toloka shapes (``result`` a list of values)."""

from __future__ import annotations

import json

import pytest

from app.db.models import Answer, AnswerOption, Task, TaskKind
from app.errors import ValidationFailed
from app.services.labeling import assignments, submissions
from app.services.projects import control_tasks, progress, projects
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler

HTMX = {"HX-Request": "true"}


def _project(session, requester, **fields):
    fields.setdefault("answer_type", "multiple")
    return make_project(session, requester, options=("cat", "dog", "bird"), **fields)


def _pool(session, requester, *, control=('["cat","dog"]',), general=3, **project_fields):
    project = _project(session, requester, **project_fields)
    pool = make_pool(session, requester, project, general_per_suite=3, control_per_suite=1)
    add_tasks(session, pool, general=general, control=control)
    return open_pool(session, requester, pool)


def _answers(session, assignment_id):
    return [a.value for a in session.query(Answer).filter_by(assignment_id=assignment_id)]


def test_several_answers_project_has_a_checkbox_task_spec(session, requester):
    project = _project(session, requester, allow_none=True)
    assert (project.answer_type, project.allow_none) == ("multiple", True)
    output = project.task_spec["output_spec"]["result"]
    assert output["type"] == "array_string" and output["allowed_values"] == ["cat", "dog", "bird"]
    config = json.loads(project.task_spec["view_spec"]["config"])
    assert '"field.checkbox-group"' in json.dumps(config)
    assert projects.answer_type_from_task_spec(project.task_spec) == "multiple"
    single = make_project(session, requester, name="One")
    assert single.answer_type == "single" and not single.allow_none


def test_project_validation_refuses_bad_answer_types_and_overlong_sets(session, requester):
    with pytest.raises(ValidationFailed) as bad:
        _project(session, requester, answer_type="several")
    assert "answer_type" in bad.value.errors
    long_values = [f"{c}" * 60 for c in "abcd"]  # 4 x 60 chars: the JSON list > 200
    with pytest.raises(ValidationFailed) as long:
        make_project(session, requester, options=long_values, answer_type="multiple")
    assert "200 characters" in long.value.errors["options"]
    with pytest.raises(ValidationFailed) as bracket:
        make_project(session, requester, options=("[a]", "b"))
    assert "“[”" in bracket.value.errors["options"]


def test_control_answers_are_sets_in_option_order(session, requester):
    pool = _pool(session, requester, control=('["dog", "cat"]', '["bird"]'))
    known = sorted(t.known_answer for t in session.query(Task).filter_by(kind=TaskKind.CONTROL))
    assert known == ['["bird"]', '["cat","dog"]']
    with pytest.raises(ValidationFailed) as bad:
        add_tasks(session, pool, control=('["cat","horse"]',))
    assert "horse" in str(bad.value.errors)
    with pytest.raises(ValidationFailed) as empty:  # no "none of these" in this project
        add_tasks(session, pool, control=("[]",))
    assert "at least one" in str(empty.value.errors)


def test_submitting_sets_stores_canonical_lists_and_checks_each(session, requester, labeler):
    pool = _pool(session, requester)
    view = assignments.assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert view.multiple and [o.value for o in view.options] == ["cat", "dog", "bird"]
    positions = [t.position for t in view.tasks]
    bad = {positions[0]: ["cat", "horse"], positions[1]: [], positions[2]: "dog"}
    with pytest.raises(ValidationFailed) as exc:
        submissions.submit_assignment(
            session, labeler=labeler, assignment_id=view.assignment_id, answers=bad,
            by_position=True,
        )  # fmt: skip
    session.rollback()
    errors = exc.value.errors
    assert "horse" in errors[f"answers.{positions[0]}"]
    assert "at least one option" in errors[f"answers.{positions[1]}"]
    assert f"answers.{positions[3]}" in errors  # no answer at all
    good = {
        positions[0]: ["dog", "cat"],  # any order: stored in option order
        positions[1]: '["bird"]',  # a JSON list
        positions[2]: {"cat": True, "bird": False},  # Toloka's checkbox-group dict
        positions[3]: ["cat", "dog", "bird"],
    }
    submissions.submit_assignment(
        session, labeler=labeler, assignment_id=view.assignment_id, answers=good, by_position=True
    )
    assert sorted(_answers(session, view.assignment_id)) == sorted(
        ['["cat","dog"]', '["bird"]', '["cat"]', '["cat","dog","bird"]']
    )


def test_none_of_these_is_the_empty_set_when_offered(session, requester, labeler):
    pool = _pool(session, requester, allow_none=True, control=("[]",))
    view = assignments.assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    answers = {t.position: [] for t in view.tasks}
    submissions.submit_assignment(
        session, labeler=labeler, assignment_id=view.assignment_id, answers=answers,
        by_position=True,
    )  # fmt: skip
    assert set(_answers(session, view.assignment_id)) == {"[]"}


def test_control_accuracy_is_exact_match_and_per_option_is_shown(session, requester):
    pool = _pool(session, requester, control=('["cat","dog"]',), general=3)
    exact, partial = make_labeler(session, name="exact"), make_labeler(session, name="partial")
    for labeler, control_answer in ((exact, ["dog", "cat"]), (partial, ["cat"])):
        view = assignments.assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        control = next(
            t.position for t in view.tasks if session.get(Task, t.task_id).kind == "control"
        )
        answers = {t.position: ["bird"] for t in view.tasks}
        answers[control] = control_answer
        submissions.submit_assignment(
            session, labeler=labeler, assignment_id=view.assignment_id, answers=answers,
            by_position=True,
        )  # fmt: skip
    figures = progress.get_pool_progress(session, requester=requester, pool_id=pool.id)
    by_name = {row.name: row.control_accuracy for row in figures.labelers}
    assert by_name == {"exact": 1.0, "partial": 0.0}  # a subset is not the set
    per_option = {value: (acc, n) for value, _label, acc, n in figures.option_accuracy}
    # cat: both right; dog: exact right, partial missed it; bird: both right (left unticked)
    assert per_option == {"cat": (1.0, 2), "dog": (0.5, 2), "bird": (1.0, 2)}


def test_labeler_page_shows_checkboxes_and_submits_ticked_sets(
    session, requester, labeler, labeler_client
):
    pool = _pool(session, requester, allow_none=True)
    taken = labeler_client.post(f"/labeler/pools/{pool.id}/take", follow_redirects=False)
    assignment_id = int(taken.headers["location"].rsplit("/", 1)[1])
    html = labeler_client.get(f"/labeler/assignments/{assignment_id}").text
    assert html.count('type="checkbox"') == 4 * 4  # 3 options + "none of these", 4 tasks
    assert "None of these" in html and 'name="answer_type" value="multiple"' in html
    assert 'type="radio"' not in html
    csrf = _csrf(html)
    # task 0: cat + dog; task 1: none of these; task 2: bird; task 3: nothing ticked
    form = {"csrf_token": csrf, "answer_type": "multiple", "a0": ["cat", "dog"], "n1": "1",
            "a2": "bird"}  # fmt: skip
    refused = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit", data=form, headers=HTMX
    )
    assert refused.status_code == 422 and "1 task(s) have no answer yet." in refused.text
    # what was ticked stays ticked on the page sent back
    assert 'value="cat" checked' in refused.text and 'value="dog" checked' in refused.text
    form["a3"] = "cat"
    done = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/submit", data=form, headers=HTMX
    )
    assert done.status_code == 200, done.text
    assert sorted(_answers(session, assignment_id)) == sorted(
        ['["cat","dog"]', "[]", '["bird"]', '["cat"]']
    )


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def test_draft_keeps_ticked_sets(session, requester, labeler, labeler_client):
    pool = _pool(session, requester)
    taken = labeler_client.post(f"/labeler/pools/{pool.id}/take", follow_redirects=False)
    assignment_id = int(taken.headers["location"].rsplit("/", 1)[1])
    html = labeler_client.get(f"/labeler/assignments/{assignment_id}").text
    saved = labeler_client.post(
        f"/labeler/assignments/{assignment_id}/draft",
        data={"answer_type": "multiple", "a1": ["bird", "cat"]},
        headers={"X-CSRF-Token": _csrf(html)},
    )
    assert saved.status_code == 204
    again = labeler_client.get(f"/labeler/assignments/{assignment_id}").text
    assert again.count(" checked>") == 2


def test_labeler_api_takes_lists(session, requester, labeler, labeler_api):
    pool = _pool(session, requester)
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites")
    assert suite.status_code in (200, 201), suite.text
    body = suite.json()
    assert body["answer_type"] == "multiple" and "known_answer" not in json.dumps(body)
    answers = {str(t["position"]): ["cat", "bird"] for t in body["tasks"]}
    answers["0"] = ["horse"]
    bad = labeler_api.post(f"/api/v1/labeler/assignments/{body['id']}/submit",
                           json={"answers": answers})  # fmt: skip
    assert bad.status_code == 422 and "horse" in bad.text
    answers["0"] = ["dog"]
    ok = labeler_api.post(f"/api/v1/labeler/assignments/{body['id']}/submit",
                          json={"answers": answers})  # fmt: skip
    assert ok.status_code == 200, ok.text


def test_control_task_page_marks_a_set(session, requester, requester_client):
    pool = make_pool(session, requester, _project(session, requester))
    (task,) = add_tasks(session, pool, general=1)
    page = requester_client.get(f"/requester/pools/{pool.id}/tasks/{task.id}")
    assert page.text.count('type="checkbox" name="answer"') == 3
    saved = requester_client.post(
        f"/requester/pools/{pool.id}/tasks/{task.id}/control",
        data={
            "csrf_token": _csrf(page.text),
            "answer_type": "multiple",
            "answer": ["bird", "cat"],
        },  # fmt: skip
        follow_redirects=False,
    )
    assert saved.status_code == 303
    session.refresh(task)
    assert (task.kind, task.known_answer) == ("control", '["cat","bird"]')
    with pytest.raises(ValidationFailed):
        control_tasks.mark_control(session, requester=requester, task_id=task.id, answer=[])


def test_requester_form_creates_a_checkbox_project(session, requester, requester_client):
    page = requester_client.get("/requester/projects/new")
    assert 'name="answer_type" value="multiple"' in page.text
    created = requester_client.post(
        "/requester/projects",
        data={
            "csrf_token": _csrf(page.text),
            "name": "Tags",
            "question": "What is there?",
            "option_label": ["Cat", "Dog"],
            "option_value": ["cat", "dog"],
            "answer_type": "multiple",
            "allow_none": "1",
        },  # fmt: skip
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    detail = requester_client.get(created.headers["location"]).text
    assert "Several answers (checkboxes), with “None of these”" in detail
    options = session.query(AnswerOption).filter_by(value="cat").all()
    assert options


def test_uploads_give_control_sets_from_tsv_and_class_folders(session, requester):
    from app.services.projects import uploads
    from tests.builders.models import zip_bytes
    from tests.multilabel.builders import colour_png

    pool = make_pool(session, requester, _project(session, requester, allow_none=True))
    tsv = (
        b"INPUT:image\tGOLDEN:result\n"
        b'https://img.example/a.png\t"[""dog"",""cat""]"\n'
        b"https://img.example/b.png\t[]\n"
    )
    uploads.submit_upload(session, requester=requester, pool_id=pool.id, kind="tsv",
                          files=[("t.tsv", tsv)])  # fmt: skip
    folders = zip_bytes({"Set/bird/1.png": colour_png(["red"], 1),
                         "Set/bird/2.png": colour_png(["red"], 2)})  # fmt: skip
    uploads.submit_upload(session, requester=requester, pool_id=pool.id, kind="zip",
                          files=[("z.zip", folders.getvalue())])  # fmt: skip
    known = sorted(t.known_answer for t in session.query(Task).filter_by(pool_id=pool.id))
    assert known == sorted(["[]", '["bird"]', '["bird"]', '["cat","dog"]'])
    bad = b'INPUT:image\tGOLDEN:result\nhttps://img.example/c.png\t["cow"]\n'
    with pytest.raises(Exception, match="cow"):
        uploads.submit_upload(session, requester=requester, pool_id=pool.id, kind="tsv",
                              files=[("t.tsv", bad)])  # fmt: skip
