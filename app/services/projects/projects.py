"""Projects: the question, instructions and answer options labelers work with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, select

from app.db.models import AnswerOption, Pool, PoolStatus, Project, ProjectStatus, User
from app.errors import Conflict, NotFound, ValidationFailed
from app.services import answer_sets
from app.services.text import check_values, control_problem

MIN_OPTIONS = 2
MAX_OPTIONS = 20


@dataclass(frozen=True)
class OptionInput:
    """One answer option as entered: ``label`` is shown, ``value`` is written to results,
    ``hotkey`` (optional) is the key that picks it on the labeler's page."""

    label: str
    value: str
    hotkey: str = ""


# keys a labeler may press for an option: digits and letters (Enter submits, Escape closes)
HOTKEY_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
# what options without a hotkey of their own get, in order
DEFAULT_HOTKEYS = "1234567890"


def assign_hotkeys(
    options: Sequence[OptionInput | AnswerOption], *, taken: Sequence[str] = ()
) -> list[str | None]:
    """Each option's hotkey: the one given; else the option's value when it is one digit or
    letter (the digits project's "3" is key 3); else the next free of 1–9, 0. Unique;
    ``ValidationFailed`` names a bad or repeated key."""
    given = [(getattr(o, "hotkey", None) or "").strip().lower() for o in options]
    bad = sorted({key for key in given if key and (len(key) != 1 or key not in HOTKEY_CHARS)})
    if bad:
        message = f"A hotkey is one digit or letter; not: {', '.join(bad)}."
        raise ValidationFailed(message, errors={"options": message})
    repeated = sorted({key for key in given if key and (given.count(key) > 1 or key in taken)})
    if repeated:
        message = f"Hotkeys must be unique; repeated: {', '.join(repeated)}."
        raise ValidationFailed(message, errors={"options": message})
    used = set(taken) | {key for key in given if key}
    keys: list[str | None] = list(given)
    for i, option in enumerate(options):  # a one-character value keys itself when free
        value = option.value.strip().lower()
        if not keys[i] and len(value) == 1 and value in HOTKEY_CHARS and value not in used:
            keys[i] = value
            used.add(value)
    free = [key for key in DEFAULT_HOTKEYS if key not in used]
    for i in range(len(keys)):
        if not keys[i]:
            keys[i] = free.pop(0) if free else None
    return keys


def _clean_options(options: Sequence[OptionInput | tuple[str, str] | dict]) -> list[OptionInput]:
    cleaned: list[OptionInput] = []
    for item in options:
        hotkey = ""
        if isinstance(item, dict):
            label, value = str(item.get("label") or ""), str(item.get("value") or "")
            hotkey = str(item.get("hotkey") or "")
        elif isinstance(item, OptionInput):
            label, value, hotkey = item.label, item.value, item.hotkey
        else:
            label, value = item[0], item[1]
        label, value = label.strip(), value.strip()
        if not label and not value:
            continue
        cleaned.append(OptionInput(label=label or value, value=value, hotkey=hotkey.strip()))
    return cleaned


def validate_options(options: Sequence[OptionInput | tuple[str, str] | dict]) -> list[OptionInput]:
    """Check 2..20 options with unique, non-empty values; returns the cleaned list."""
    cleaned = _clean_options(options)
    errors: list[str] = []
    if any(not option.value for option in cleaned):
        errors.append("Every option needs a value (written to results).")
    values = [option.value for option in cleaned if option.value]
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        errors.append(f"Option values must be unique; repeated: {', '.join(duplicates)}.")
    if any(len(option.value) > 200 or len(option.label) > 200 for option in cleaned):
        errors.append("Labels and values have at most 200 characters.")
    if any(option.value.startswith("[") for option in cleaned):
        errors.append("Option values may not start with “[” (a JSON list is a set of answers).")
    if any(control_problem(o.value + o.label, name=True) for o in cleaned):
        errors.append("Labels and values may not contain NUL or other control characters.")
    if len(cleaned) < MIN_OPTIONS:
        errors.append(f"Give at least {MIN_OPTIONS} answer options.")
    if len(cleaned) > MAX_OPTIONS:
        errors.append(f"Give at most {MAX_OPTIONS} answer options.")
    if errors:
        raise ValidationFailed(" ".join(errors), errors={"options": " ".join(errors)})
    assign_hotkeys(cleaned)  # raises on a bad or repeated key
    return cleaned


def _validate_fields(name: str, question: str, **texts: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if problem := control_problem(name or "", name=True):
        errors["name"] = problem
    for field, value in {"question": question, **texts}.items():
        if problem := control_problem(value or ""):
            errors[field] = problem
    if errors:
        return errors
    if not name.strip():
        errors["name"] = "Give the project a name."
    elif len(name.strip()) > 200:
        errors["name"] = "At most 200 characters."
    if len(question) > 1000:
        errors["question"] = "At most 1000 characters."
    return errors


def _validate_project(
    name: str,
    question: str,
    options,
    task_spec: dict | None,
    answer_type: str = answer_sets.SINGLE,
    **texts: str,
) -> tuple[dict[str, str], list[OptionInput] | None]:
    """Every field's problem at once, and the cleaned options (None when not given)."""
    errors = _validate_fields(name, question, **texts)
    if answer_type not in answer_sets.ANSWER_TYPES:
        errors["answer_type"] = "Choose “single” (one answer) or “multiple” (several answers)."
    try:
        check_values(task_spec, field="task_spec")
    except ValidationFailed as exc:
        errors.update(exc.errors)
    cleaned = None
    if options is not None:
        try:
            cleaned = validate_options(options)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if cleaned and answer_type == answer_sets.MULTIPLE:
        if problem := answer_sets.check_fits([o.value for o in cleaned]):
            errors["options"] = problem
    return errors, cleaned


def normalize_answer(project: Project, values: Sequence[str], raw) -> str:
    """An answer (or known answer) to ``project`` as stored: one option's value, or for
    several answers the canonical JSON list of the chosen values (a list, a JSON list, a
    Toloka checkbox-group dict ``{value: true}`` or one value is accepted).
    ``answer_sets.BadAnswer`` says what is wrong."""
    if project.answer_type == answer_sets.MULTIPLE:
        if isinstance(raw, dict):  # field.checkbox-group's native output
            raw = [key for key, chosen in raw.items() if chosen]
        return answer_sets.normalize(raw, values, allow_none=project.allow_none)
    value = "" if raw is None else str(raw).strip()
    if value not in values:
        raise answer_sets.BadAnswer(f"“{value}” is not an answer option (use {', '.join(values)})")
    return value


def answer_output(project: Project, stored: str | None):
    """A stored answer as Toloka's ``output_values.result``: the value, or for several
    answers the list of chosen values."""
    if stored is not None and project.answer_type == answer_sets.MULTIPLE:
        values = answer_sets.decode(stored)
        return values if values is not None else stored
    return stored


def build_task_spec(
    question: str,
    options: Sequence[OptionInput | AnswerOption],
    answer_type: str = answer_sets.SINGLE,
) -> dict:
    """A Toloka task spec (image in, ``result`` out) with a Template Builder view: a
    radio group (``result`` a string), or for several answers a checkbox group (``result``
    an ``array_string`` of the chosen values)."""
    if answer_type == answer_sets.MULTIPLE:
        return _checkbox_task_spec(question, options)
    option_list = [{"value": option.value, "label": option.label} for option in options]
    output = {"type": "data.output", "path": "result"}
    items: list[dict] = []
    if question:
        items.append({"type": "view.text", "content": question})
    items.append(
        {
            "type": "view.image",
            "url": {"type": "data.input", "path": "image"},
            "ratio": [1, 1],
            "rotatable": True,
        }
    )
    items.append(
        {
            "type": "field.button-radio-group",
            "data": output,
            "options": option_list,
            "validation": {"type": "condition.required", "hint": "choose one of the options"},
        }
    )
    hotkeys: dict = {"type": "plugin.hotkeys"}
    for option, key in zip(options, assign_hotkeys(options), strict=True):
        if key:
            hotkeys[key] = {"type": "action.set", "data": output, "payload": option.value}
    config = {
        "view": {"type": "view.list", "items": items},
        "plugins": [
            {"type": "plugin.toloka", "layout": {"kind": "scroll", "taskWidth": 500}},
            hotkeys,
        ],
    }
    lock = dict.fromkeys(
        (
            "core",
            "view.list",
            "view.text",
            "view.image",
            "field.button-radio-group",
            "condition.required",
            "plugin.toloka",
            "plugin.hotkeys",
            "action.set",
        ),
        "1.0.0",
    )
    return _task_spec("string", option_list, config, lock)


def _checkbox_task_spec(question: str, options: Sequence[OptionInput | AnswerOption]) -> dict:
    option_list = [{"value": option.value, "label": option.label} for option in options]
    output = {"type": "data.output", "path": "result"}
    items: list[dict] = []
    if question:
        items.append({"type": "view.text", "content": question})
    items.append({"type": "view.image", "url": {"type": "data.input", "path": "image"}})
    items.append({"type": "field.checkbox-group", "data": output, "options": option_list})
    hotkeys: dict = {"type": "plugin.hotkeys"}
    for option, key in zip(options, assign_hotkeys(options), strict=True):
        if key:
            hotkeys[key] = {
                "type": "action.toggle",
                "data": {**output, "path": f"result.{option.value}"},
            }
    config = {
        "view": {"type": "view.list", "items": items},
        "plugins": [{"type": "plugin.toloka", "layout": {"kind": "scroll"}}, hotkeys],
    }
    lock = dict.fromkeys(
        ("core", "view.list", "view.text", "view.image", "field.checkbox-group",
         "plugin.toloka", "plugin.hotkeys", "action.toggle"),
        "1.0.0",
    )  # fmt: skip
    return _task_spec("array_string", option_list, config, lock)


def _task_spec(output_type: str, option_list: list[dict], config: dict, lock: dict) -> dict:
    """A Template Builder task spec: an image in, ``result`` of ``output_type`` out."""
    return {
        "input_spec": {"image": {"type": "url", "required": True, "hidden": False}},
        "output_spec": {
            "result": {
                "type": output_type,
                "required": True,
                "hidden": False,
                "allowed_values": [option["value"] for option in option_list],
            }
        },
        "view_spec": {
            "type": "tb",
            "inferDataSpec": False,
            "config": json.dumps(config, indent=4),
            "lock": lock,
        },
    }


def answer_type_from_task_spec(task_spec: dict | None) -> str:
    """ "multiple" when the spec's ``result`` is a list or a JSON object (Toloka's checkbox
    outputs: ``array_string``, ``json``) or its view has a checkbox group; else "single"."""
    output = ((task_spec or {}).get("output_spec") or {}).get("result") or {}
    if str(output.get("type", "")).lower() in ("array_string", "json"):
        return answer_sets.MULTIPLE
    config = ((task_spec or {}).get("view_spec") or {}).get("config")
    if isinstance(config, str) and '"field.checkbox-group"' in config:
        return answer_sets.MULTIPLE
    return answer_sets.SINGLE


def options_from_task_spec(task_spec: dict) -> list[OptionInput]:
    """Answer options read from a Toloka task spec (TB radio/button group, or allowed values)."""
    view = (task_spec or {}).get("view_spec") or {}
    config = view.get("config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            config = None
    found: list[OptionInput] = []

    def walk(node) -> None:
        if found:
            return
        if isinstance(node, dict):
            options = node.get("options")
            data = node.get("data")
            if (
                isinstance(options, list)
                and isinstance(data, dict)
                and data.get("type") == "data.output"
            ):
                for option in options:
                    if isinstance(option, dict) and "value" in option:
                        value = str(option["value"])
                        found.append(
                            OptionInput(label=str(option.get("label") or value), value=value)
                        )
                return
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(config)
    if found:
        return found
    output = ((task_spec or {}).get("output_spec") or {}).get("result") or {}
    return [OptionInput(label=str(v), value=str(v)) for v in output.get("allowed_values") or []]


def list_options(session: Session, *, project: Project) -> list[AnswerOption]:
    """The project's answer options in order."""
    return list(
        session.exec(
            select(AnswerOption)
            .where(AnswerOption.project_id == project.id)
            .order_by(AnswerOption.position, AnswerOption.id)
        )
    )


def _write_options(session: Session, project: Project, options: list[OptionInput]) -> None:
    for old in list_options(session, project=project):
        session.delete(old)
    session.flush()
    keys = assign_hotkeys(options)
    for position, option in enumerate(options):
        session.add(
            AnswerOption(
                project_id=project.id,
                label=option.label,
                value=option.value,
                position=position,
                hotkey=keys[position],
            )
        )
    session.flush()


def create_project(
    session: Session,
    *,
    requester: User,
    name: str,
    options: Sequence[OptionInput | tuple[str, str] | dict],
    question: str = "",
    public_description: str = "",
    instructions: str = "",
    private_comment: str = "",
    task_spec: dict | None = None,
    answer_type: str = answer_sets.SINGLE,
    allow_none: bool = False,
) -> Project:
    """Create a project with its answer options (validated; nothing saved on error).

    ``answer_type`` "multiple" asks for several answers (checkboxes); ``allow_none`` then
    offers "none of these" (an empty set)."""
    errors, cleaned = _validate_project(
        name, question, options, task_spec, answer_type,
        public_description=public_description, instructions=instructions,
        private_comment=private_comment,
    )  # fmt: skip
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", errors=errors)
    project = Project(
        owner_id=requester.id,
        name=name.strip(),
        question=question.strip(),
        public_description=public_description.strip(),
        instructions=instructions,
        private_comment=private_comment,
        task_spec=task_spec or build_task_spec(question.strip(), cleaned, answer_type),
        answer_type=answer_type,
        allow_none=bool(allow_none) and answer_type == answer_sets.MULTIPLE,
    )
    session.add(project)
    session.flush()
    _write_options(session, project, cleaned)
    session.commit()
    session.refresh(project)
    return project


def get_project(session: Session, *, requester: User, project_id: int) -> Project:
    """One of the requester's projects (someone else's id → ``NotFound``)."""
    project = session.get(Project, project_id)
    if project is None or project.owner_id != requester.id:
        raise NotFound("No such project.")
    return project


def list_projects(
    session: Session,
    *,
    requester: User,
    include_archived: bool = True,
    id_gt: int | None = None,
    limit: int | None = None,
) -> list[Project]:
    """The requester's projects, oldest first (newest first on the console is the caller's call)."""
    query = select(Project).where(Project.owner_id == requester.id)
    if not include_archived:
        query = query.where(Project.status == ProjectStatus.ACTIVE)
    if id_gt is not None:
        query = query.where(Project.id > id_gt)
    query = query.order_by(Project.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def has_open_pool(session: Session, *, project: Project) -> bool:
    """Whether a pool of the project is open (answer options are then frozen)."""
    return (
        session.exec(
            select(Pool.id).where(Pool.project_id == project.id, Pool.status == PoolStatus.OPEN)
        ).first()
        is not None
    )


def update_project(
    session: Session,
    *,
    requester: User,
    project_id: int,
    name: str,
    question: str = "",
    public_description: str = "",
    instructions: str = "",
    private_comment: str = "",
    options: Sequence[OptionInput | tuple[str, str] | dict] | None = None,
    task_spec: dict | None = None,
    answer_type: str | None = None,
    allow_none: bool | None = None,
) -> Project:
    """Edit a project; options and the answer type cannot change while one of its pools
    is open (None keeps the answer type / "none of these" as they are)."""
    project = get_project(session, requester=requester, project_id=project_id)
    if project.status == ProjectStatus.ARCHIVED:
        raise Conflict("This project is archived; it can no longer be edited.")
    answer_type = answer_type or project.answer_type
    allow_none = project.allow_none if allow_none is None else bool(allow_none)
    allow_none = allow_none and answer_type == answer_sets.MULTIPLE
    if options is None and answer_type == answer_sets.MULTIPLE:
        options = [OptionInput(o.label, o.value, o.hotkey or "")
                   for o in list_options(session, project=project)]  # fmt: skip
    errors, cleaned = _validate_project(
        name, question, options, task_spec, answer_type,
        public_description=public_description, instructions=instructions,
        private_comment=private_comment,
    )  # fmt: skip
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", errors=errors)
    current = [(o.label, o.value) for o in list_options(session, project=project)]
    options_changed = cleaned is not None and [(o.label, o.value) for o in cleaned] != current
    type_changed = (answer_type, allow_none) != (project.answer_type, project.allow_none)
    if (options_changed or type_changed) and has_open_pool(session, project=project):
        what = "Answer options" if options_changed else "The answer type"
        raise ValidationFailed(
            f"{what} cannot change while a pool of this project is open; close it first.",
            errors={
                "answer_type" if not options_changed else "options": "Frozen while a pool is open."
            },
        )
    project.answer_type = answer_type
    project.allow_none = allow_none
    project.name = name.strip()
    project.question = question.strip()
    project.public_description = public_description.strip()
    project.instructions = instructions
    project.private_comment = private_comment
    if options_changed:
        _write_options(session, project, cleaned)
    if task_spec is not None:
        project.task_spec = task_spec
    elif options_changed or type_changed or not project.task_spec:
        project.task_spec = build_task_spec(
            project.question, cleaned or list_options(session, project=project), answer_type
        )
    session.add(project)
    session.commit()
    session.refresh(project)
    return project


def add_options(session: Session, *, project: Project, values: Sequence[str]) -> None:
    """Append options (label = value) for new values (flush only)."""
    existing = list_options(session, project=project)
    if len(existing) + len(values) > MAX_OPTIONS:
        raise ValidationFailed(
            f"That would make {len(existing) + len(values)} options; the limit is {MAX_OPTIONS}.",
            errors={"options": "Too many options."},
        )
    keys = assign_hotkeys(
        [OptionInput(value, value) for value in values],
        taken=[o.hotkey for o in existing if o.hotkey],
    )
    for offset, value in enumerate(values):
        session.add(
            AnswerOption(
                project_id=project.id,
                label=value,
                value=value,
                position=len(existing) + offset,
                hotkey=keys[offset],
            )
        )
    session.flush()
    every = list_options(session, project=project)
    if project.answer_type == answer_sets.MULTIPLE and (
        problem := answer_sets.check_fits([o.value for o in every])
    ):
        raise ValidationFailed(problem, errors={"options": problem})
    project.task_spec = build_task_spec(project.question, every, project.answer_type)
    session.add(project)
    session.flush()


def archive_project(session: Session, *, requester: User, project_id: int) -> Project:
    """Archive a project; refused while one of its pools is open."""
    project = get_project(session, requester=requester, project_id=project_id)
    if project.status == ProjectStatus.ARCHIVED:
        return project
    if has_open_pool(session, project=project):
        raise Conflict("Close the project's open pools before archiving it.")
    project.status = ProjectStatus.ARCHIVED
    session.add(project)
    session.commit()
    session.refresh(project)
    return project
