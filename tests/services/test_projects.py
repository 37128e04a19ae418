"""Projects: fields, answer options (2..20, unique values, hotkeys), editing and archiving."""

from __future__ import annotations

import json

import pytest

from app.db.models import ProjectStatus
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.projects import projects
from app.services.projects.projects import OptionInput
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_requester

THREE = [OptionInput("Cat", "cat"), OptionInput("Dog", "dog"), OptionInput("Other", "other")]


def test_project_keeps_options_in_order_with_hotkeys(session, requester):
    project = projects.create_project(
        session, requester=requester, name="Pets", question="What is it?", options=THREE
    )
    options = projects.list_options(session, project=project)
    assert [(o.label, o.value, o.hotkey) for o in options] == [
        ("Cat", "cat", "1"),
        ("Dog", "dog", "2"),
        ("Other", "other", "3"),
    ]
    spec = project.task_spec
    assert spec["input_spec"]["image"]["type"] == "url"
    assert spec["output_spec"]["result"]["allowed_values"] == ["cat", "dog", "other"]
    config = json.loads(spec["view_spec"]["config"])
    assert config["plugins"][1]["3"]["payload"] == "other"
    assert "lock" in spec["view_spec"]


def test_options_get_keys_1_to_9_then_0_and_the_rest_none(session, requester):
    options = [OptionInput(f"L{i}", f"v{i}") for i in range(12)]
    project = projects.create_project(session, requester=requester, name="Many", options=options)
    hotkeys = [o.hotkey for o in projects.list_options(session, project=project)]
    assert hotkeys == [str(i) for i in range(1, 10)] + ["0", None, None]


def test_a_one_character_value_is_its_own_key(session, requester):
    """The digits project: pressing 3 answers "3" (not the fourth option)."""
    options = [OptionInput(f"Digit {i}", str(i)) for i in range(10)]
    project = projects.create_project(session, requester=requester, name="Digits", options=options)
    keys = {o.value: o.hotkey for o in projects.list_options(session, project=project)}
    assert keys == {str(i): str(i) for i in range(10)}
    mixed = [OptionInput("Cat", "c"), OptionInput("Dog", "dog"), OptionInput("Yes", "1")]
    assert projects.assign_hotkeys(mixed) == ["c", "2", "1"]


def test_hotkeys_are_editable_and_must_be_unique(session, requester):
    chosen = [OptionInput("Cat", "cat", "c"), OptionInput("Dog", "dog", "D")]
    project = projects.create_project(session, requester=requester, name="Keys", options=chosen)
    assert [o.hotkey for o in projects.list_options(session, project=project)] == ["c", "d"]
    for bad, message in (
        ([OptionInput("Cat", "cat", "x"), OptionInput("Dog", "dog", "x")], "repeated: x"),
        ([OptionInput("Cat", "cat", "!"), OptionInput("Dog", "dog")], "one digit or letter"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            projects.create_project(session, requester=requester, name="Bad", options=bad)
        assert message in refused.value.errors["options"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([OptionInput("Cat", "cat")], "at least 2"),
        ([OptionInput(f"{i}", f"{i}") for i in range(21)], "at most 20"),
        ([OptionInput("Cat", "cat"), OptionInput("Kitty", "cat")], "repeated: cat"),
        ([OptionInput("Cat", "cat"), OptionInput("Dog", "")], "needs a value"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_saved(session, requester, options, message):
    with pytest.raises(ValidationFailed) as exc:
        projects.create_project(session, requester=requester, name="P", options=options)
    assert message in exc.value.errors["options"]
    assert projects.list_projects(session, requester=requester) == []


def test_name_is_required(session, requester):
    with pytest.raises(ValidationFailed) as exc:
        projects.create_project(session, requester=requester, name="  ", options=THREE)
    assert "name" in exc.value.errors


def test_options_read_from_a_toloka_task_spec(session):
    spec = projects.build_task_spec("Q", THREE)
    assert projects.options_from_task_spec(spec) == THREE
    spec["view_spec"] = {"type": "classic"}
    assert [o.value for o in projects.options_from_task_spec(spec)] == ["cat", "dog", "other"]


def test_options_frozen_while_a_pool_is_open_but_other_fields_editable(session, requester):
    project = make_project(session, requester)
    pool = make_pool(session, requester, project)
    add_tasks(session, pool, general=3)
    open_pool(session, requester, pool)
    with pytest.raises(ValidationFailed) as exc:
        projects.update_project(
            session,
            requester=requester,
            project_id=project.id,
            name="Animals",
            options=[OptionInput("Cat", "cat"), OptionInput("Dog", "dog")],
        )
    assert "close it first" in exc.value.message
    updated = projects.update_project(
        session,
        requester=requester,
        project_id=project.id,
        name="Animals v2",
        instructions="Look **carefully**.",
        options=[OptionInput("Cat", "cat"), OptionInput("Dog", "dog"), OptionInput("Bird", "bird")],
    )
    assert updated.name == "Animals v2"
    with pytest.raises(Conflict):
        projects.archive_project(session, requester=requester, project_id=project.id)


def test_options_can_change_on_a_draft_project(session, requester):
    project = make_project(session, requester)
    projects.update_project(
        session,
        requester=requester,
        project_id=project.id,
        name="Animals",
        options=[OptionInput("Yes", "yes"), OptionInput("No", "no")],
    )
    values = [o.value for o in projects.list_options(session, project=project)]
    assert values == ["yes", "no"]
    assert project.task_spec["output_spec"]["result"]["allowed_values"] == ["yes", "no"]


def test_archive_and_another_requesters_project_is_not_found(session, requester):
    project = make_project(session, requester)
    assert (
        projects.archive_project(session, requester=requester, project_id=project.id).status
        == ProjectStatus.ARCHIVED
    )
    with pytest.raises(Conflict):
        projects.update_project(session, requester=requester, project_id=project.id, name="x")
    other = make_requester(session)
    with pytest.raises(NotFound):
        projects.get_project(session, requester=other, project_id=project.id)
