"""Quality rules editor: "If … then …" rows, Toloka JSON export/import, dry run."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import ValidationFailed
from app.services.quality import dry_run, pool_rules, skills
from app.services.quality.presets import image_classification_preset
from app.services.quality.rules import (
    COLLECTOR_KEYS,
    DURATION_UNITS,
    OPERATOR_SYMBOLS,
    SCOPES,
    ActionType,
    CollectorType,
)
from app.web.pool_nav import pool_nav
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

SLOTS = 3
COLLECTOR_LABELS = {
    "ASSIGNMENT_SUBMIT_TIME": "Fast responses",
    "MAJORITY_VOTE": "Majority vote",
    "GOLDEN_SET": "Control tasks",
    "SKIPPED_IN_ROW_ASSIGNMENTS": "Skipped suites in a row",
    "ANSWER_COUNT": "Submitted suites",
    "INCOME": "Earnings in 24 h",
    "ACCEPTANCE_RATE": "Review results",
    "USERS_ASSESSMENT": "Banned labeler's tasks",
    "CAPTCHA": "Captchas",
}
ACTION_LABELS = {
    "RESTRICTION_V2": "Ban",
    "SET_SKILL": "Set skill",
    "SET_SKILL_FROM_OUTPUT_FIELD": "Set skill from correct-answer rate",
    "REJECT_ALL_ASSIGNMENTS": "Reject all the labeler's suites",
    "APPROVE_ALL_ASSIGNMENTS": "Accept all the labeler's suites",
    "CHANGE_OVERLAP": "Raise overlap (re-issue tasks)",
}
ACTION_PARAMS = (
    "scope",
    "duration",
    "duration_unit",
    "private_comment",
    "public_comment",
    "skill_id",
    "skill_value",
    "from_field",
    "delta",
)
THRESHOLD_PARAM = {
    "ASSIGNMENT_SUBMIT_TIME": "fast_submit_threshold_seconds",
    "MAJORITY_VOTE": "answer_threshold",
}


def _new_token() -> str:
    return secrets.token_hex(4)


def blank_row() -> dict:
    return {
        "token": _new_token(),
        "collector": "ASSIGNMENT_SUBMIT_TIME",
        "history_size": "",
        "threshold": "",
        "conditions": [{"key": "", "operator": "GTE", "value": ""} for _ in range(SLOTS)],
        "action": "RESTRICTION_V2",
        "params": {"scope": "PROJECT", "duration": "1", "duration_unit": "DAYS"},
    }


def rows_from_configs(configs: list[dict]) -> list[dict]:
    """Toloka configs → one editor row per rule."""
    rows = []
    for config in configs:
        collector = config.get("collector_config", {})
        kind = collector.get("type", "")
        params = collector.get("parameters") or {}
        for rule in config.get("rules", []):
            conditions = [
                {
                    "key": c.get("key", ""),
                    "operator": c.get("operator", "GTE"),
                    "value": c.get("value"),
                }
                for c in rule.get("conditions", [])
            ]
            conditions += [{"key": "", "operator": "GTE", "value": ""}] * (SLOTS - len(conditions))
            action = rule.get("action", {})
            rows.append(
                {
                    "token": _new_token(),
                    "collector": kind,
                    "history_size": params.get("history_size", ""),
                    "threshold": params.get(THRESHOLD_PARAM.get(kind, ""), ""),
                    "conditions": conditions,
                    "action": action.get("type", ""),
                    "params": dict(action.get("parameters") or {}),
                }
            )
    return rows


def rows_from_form(form: FormData) -> list[dict]:
    """The editor's posted rows, in page order."""
    tokens: list[str] = []
    for key in form.keys():
        parts = key.split("-", 2)
        if len(parts) == 3 and parts[0] == "r" and parts[1] not in tokens:
            tokens.append(parts[1])

    def get(token: str, name: str) -> str:
        value = form.get(f"r-{token}-{name}")
        return value.strip() if isinstance(value, str) else ""

    rows = []
    for token in tokens:
        rows.append(
            {
                "token": token,
                "collector": get(token, "collector"),
                "history_size": get(token, "history_size"),
                "threshold": get(token, "threshold"),
                "conditions": [
                    {
                        "key": get(token, f"c{i}_key"),
                        "operator": get(token, f"c{i}_op") or "GTE",
                        "value": get(token, f"c{i}_value"),
                    }
                    for i in range(SLOTS)
                ],
                "action": get(token, "action"),
                "params": {name: get(token, name) for name in ACTION_PARAMS}
                | {"open_pool": get(token, "open_pool") == "on"},
            }
        )
    return rows


def _number(text: Any) -> Any:
    if isinstance(text, int | float):
        return text
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() else value


def configs_from_rows(rows: list[dict]) -> tuple[list[dict], list[list[int]]]:
    """Rows → Toloka configs, and per row which condition slot each condition came from."""
    configs, slots = [], []
    for row in rows:
        kind = row["collector"]
        parameters = {}
        if row["history_size"] not in ("", None):
            parameters["history_size"] = _number(row["history_size"])
        if kind in THRESHOLD_PARAM and row["threshold"] not in ("", None):
            parameters[THRESHOLD_PARAM[kind]] = _number(row["threshold"])
        used = [i for i, c in enumerate(row["conditions"]) if c["key"]]
        conditions = [
            {
                "key": row["conditions"][i]["key"],
                "operator": row["conditions"][i]["operator"],
                "value": row["conditions"][i]["value"]
                if kind == "USERS_ASSESSMENT"
                else _number(row["conditions"][i]["value"]),
            }
            for i in used
        ]
        params = {
            name: _number(value)
            if name in ("duration", "skill_id", "skill_value", "delta")
            else value
            for name, value in row["params"].items()
            if value not in ("", None)
        }
        action = {"type": row["action"], "parameters": _action_params(row["action"], params)}
        collector = {"type": kind, **({"parameters": parameters} if parameters else {})}
        configs.append(
            {"collector_config": collector, "rules": [{"conditions": conditions, "action": action}]}
        )
        slots.append(used)
    return configs, slots


def _action_params(kind: str, params: dict) -> dict:
    wanted = {
        "RESTRICTION_V2": (
            "scope",
            "duration",
            "duration_unit",
            "private_comment",
            "public_comment",
        ),
        "SET_SKILL": ("skill_id", "skill_value"),
        "SET_SKILL_FROM_OUTPUT_FIELD": ("skill_id", "from_field"),
        "REJECT_ALL_ASSIGNMENTS": ("public_comment",),
        "CHANGE_OVERLAP": ("delta", "open_pool"),
    }.get(kind, ())
    out = {k: params[k] for k in wanted if k in params}
    if kind == "RESTRICTION_V2" and out.get("duration_unit") == "PERMANENT":
        out.pop("duration", None)
    return out


def row_errors(errors: dict[str, str], rows: list[dict], slots: list[list[int]]) -> dict:
    """Service error keys (``configs.0.rules.0.conditions.1``) → {token: {field: message}}."""
    out: dict[str, dict[str, str]] = {}
    for key, message in errors.items():
        parts = key.split(".")
        if len(parts) < 2 or parts[0] != "configs" or not parts[1].isdigit():
            out.setdefault("_form", {})[key] = message
            continue
        index = int(parts[1])
        if index >= len(rows):
            continue
        rest = parts[2:]
        if rest[:2] == ["rules", "0"]:
            rest = rest[2:]
        if rest and rest[0] == "collector":
            rest = rest[1:]
        field = rest[0] if rest else "row"
        if field == "conditions" and len(rest) > 1:
            field = f"c{slots[index][int(rest[1])]}"
        elif field in THRESHOLD_PARAM.values():
            field = "threshold"
        out.setdefault(rows[index]["token"], {})[field] = message
    return out


def _context(session, user, pool, rows, errors=None, **extra) -> dict:
    return {
        **(pool_nav(session, user, pool, "quality") if pool is not None else {}),
        "pool": pool,
        "rows": rows,
        "errors": errors or {},
        "skills": skills.list_skills(session, requester=user),
        "collectors": [(c.value, COLLECTOR_LABELS[c.value]) for c in CollectorType],
        "actions": [(a.value, ACTION_LABELS[a.value]) for a in ActionType],
        "collector_keys": COLLECTOR_KEYS,
        "operators": OPERATOR_SYMBOLS,
        "scopes": SCOPES,
        "units": DURATION_UNITS,
        "values": {
            "captcha_frequency": (pool.captcha_frequency or "") if pool else "",
            "exclude_banned_answers": bool(pool and pool.exclude_banned_answers),
        },
        **extra,
    }


@router.get("/requester/pools/{pool_id}/quality", name="quality:rules")
def rules_page(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """The pool's rules as "If … then …" rows."""
    pool, configs = pool_rules.get_pool_rules(session, requester=user, pool_id=pool_id)
    return render(
        request,
        "requester/quality/rules.html",
        _context(session, user, pool, rows_from_configs(configs)),
    )


@router.get("/requester/quality/rule-row", name="quality:rule_row")
def rule_row(request: Request, session: SessionDep, user: CurrentRequester, preset: str = ""):
    """A new empty row (HTMX "add rule")."""
    rows = rows_from_configs(image_classification_preset()) if preset else [blank_row()]
    ctx = _context(session, user, None, rows)
    return render(request, "requester/quality/_rows.html", ctx)


@router.get("/requester/quality/nothing", name="quality:nothing")
def nothing(user: CurrentRequester) -> HTMLResponse:
    """An empty fragment: HTMX "remove rule" swaps the row with it."""
    return HTMLResponse("")


@router.post("/requester/pools/{pool_id}/quality", name="quality:save")
async def save_rules(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Validate and save the rows; on errors the page comes back with every input kept."""
    form = await request.form()
    rows = rows_from_form(form)
    configs, slots = configs_from_rows(rows)
    try:
        pool_rules.save_pool_rules(
            session,
            requester=user,
            pool_id=pool_id,
            raw=configs,
            exclude_banned_answers=form.get("exclude_banned_answers") == "on",
            **(
                {"captcha_frequency": form.get("captcha_frequency") or None}
                if "captcha_frequency" in form
                else {}
            ),
        )
    except ValidationFailed as exc:
        session.rollback()
        pool, _ = pool_rules.get_pool_rules(session, requester=user, pool_id=pool_id)
        errors = row_errors(exc.errors, rows, slots)
        ctx = _context(session, user, pool, rows, errors, message=exc.message)
        ctx["values"]["captcha_frequency"] = form.get("captcha_frequency") or ""
        ctx["values"]["exclude_banned_answers"] = form.get("exclude_banned_answers") == "on"
        return render(request, "requester/quality/rules.html", ctx, status_code=422)
    flash(request, f"Saved {len(configs)} quality rule(s).", "success")
    return RedirectResponse(request.url_for("quality:rules", pool_id=pool_id), status_code=303)


@router.post("/requester/pools/{pool_id}/quality/dry-run", name="quality:dry_run")
async def dry_run_rules(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int
):
    """What the rules in the form would have done on this pool's past answers."""
    rows = rows_from_form(await request.form())
    configs, _ = configs_from_rows(rows)
    try:
        parsed = pool_rules.validate_rules(session, requester=user, raw=configs)
    except ValidationFailed as exc:
        return render(request, "components/_error.html", {"message": exc.message}, status_code=422)
    results = dry_run.dry_run(session, requester=user, pool_id=pool_id, configs=parsed)
    return render(request, "requester/quality/_dry_run.html", {"results": results})


@router.get("/requester/pools/{pool_id}/quality/export.json", name="quality:export")
def export_rules(session: SessionDep, user: CurrentRequester, pool_id: int) -> Response:
    """The rules as Toloka ``quality_control`` JSON."""
    _, configs = pool_rules.get_pool_rules(session, requester=user, pool_id=pool_id)
    body = json.dumps({"quality_control": {"configs": configs}}, indent=2, ensure_ascii=False)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="pool-{pool_id}-quality.json"'},
    )


@router.post("/requester/pools/{pool_id}/quality/import", name="quality:import")
async def import_rules(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Replace the rules with Toloka JSON (a file or pasted text)."""
    form = await request.form()
    upload = form.get("file")
    text = form.get("json") or ""
    if isinstance(upload, UploadFile) and upload.filename:
        text = (await upload.read()).decode("utf-8", errors="replace")
    pool, configs = pool_rules.get_pool_rules(session, requester=user, pool_id=pool_id)
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raw = None
    try:
        if raw is None:
            raise ValidationFailed("That is not JSON.", errors={"json": "Not JSON."})
        saved = pool_rules.save_pool_rules(session, requester=user, pool_id=pool_id, raw=raw)
    except ValidationFailed as exc:
        ctx = _context(
            session, user, pool, rows_from_configs(configs), import_error=exc, import_text=text
        )
        return render(request, "requester/quality/rules.html", ctx, status_code=422)
    flash(request, f"Imported {len(saved)} quality rule config(s).", "success")
    return RedirectResponse(request.url_for("quality:rules", pool_id=pool_id), status_code=303)
