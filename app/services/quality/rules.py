"""Quality-rule configs in Toloka's ``quality_control.configs`` shape, validated.

A config is ``{"collector_config": {"type", "parameters"}, "rules": [{"conditions":
[{"key", "operator", "value"}], "action": {"type", "parameters"}}]}``. Besides Toloka's own
checks, ``parse_configs`` refuses rules that can never fire (a count condition above
``history_size``), that fire too eagerly (a rate condition without a count condition) and
bans without a private reason.
"""

from __future__ import annotations

import hashlib
import json
import operator as op
import uuid as uuidlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import ValidationFailed


class CollectorType(StrEnum):
    ASSIGNMENT_SUBMIT_TIME = "ASSIGNMENT_SUBMIT_TIME"
    MAJORITY_VOTE = "MAJORITY_VOTE"
    GOLDEN_SET = "GOLDEN_SET"
    SKIPPED_IN_ROW_ASSIGNMENTS = "SKIPPED_IN_ROW_ASSIGNMENTS"
    ANSWER_COUNT = "ANSWER_COUNT"
    INCOME = "INCOME"
    ACCEPTANCE_RATE = "ACCEPTANCE_RATE"
    USERS_ASSESSMENT = "USERS_ASSESSMENT"
    CAPTCHA = "CAPTCHA"


class ActionType(StrEnum):
    RESTRICTION_V2 = "RESTRICTION_V2"
    SET_SKILL = "SET_SKILL"
    SET_SKILL_FROM_OUTPUT_FIELD = "SET_SKILL_FROM_OUTPUT_FIELD"
    REJECT_ALL_ASSIGNMENTS = "REJECT_ALL_ASSIGNMENTS"
    APPROVE_ALL_ASSIGNMENTS = "APPROVE_ALL_ASSIGNMENTS"
    CHANGE_OVERLAP = "CHANGE_OVERLAP"


class Operator(StrEnum):
    EQ = "EQ"
    NE = "NE"
    GT = "GT"
    LT = "LT"
    GTE = "GTE"
    LTE = "LTE"


OPERATOR_FUNCS = {
    Operator.EQ: op.eq,
    Operator.NE: op.ne,
    Operator.GT: op.gt,
    Operator.LT: op.lt,
    Operator.GTE: op.ge,
    Operator.LTE: op.le,
}
OPERATOR_SYMBOLS = {"EQ": "=", "NE": "≠", "GT": ">", "LT": "<", "GTE": "≥", "LTE": "≤"}

# Condition keys per collector, and which of them count items bounded by history_size.
COLLECTOR_KEYS: dict[str, tuple[str, ...]] = {
    "ASSIGNMENT_SUBMIT_TIME": ("total_submitted_count", "fast_submitted_count"),
    "MAJORITY_VOTE": ("total_answers_count", "correct_answers_rate", "incorrect_answers_rate"),
    "GOLDEN_SET": (
        "total_answers_count",
        "correct_answers_rate",
        "incorrect_answers_rate",
        "golden_set_answers_count",
        "golden_set_correct_answers_rate",
        "golden_set_incorrect_answers_rate",
    ),
    "SKIPPED_IN_ROW_ASSIGNMENTS": ("skipped_in_row_count",),
    "ANSWER_COUNT": ("assignments_accepted_count",),
    "INCOME": ("income_sum_for_last_24_hours",),
    "ACCEPTANCE_RATE": (
        "total_assignments_count",
        "accepted_assignments_rate",
        "rejected_assignments_rate",
    ),
    "USERS_ASSESSMENT": ("pool_access_revoked_reason",),
    "CAPTCHA": ("stored_results_count", "success_rate", "fail_rate"),
}
WINDOWED_COUNT_KEYS = {
    "total_submitted_count",
    "fast_submitted_count",
    "total_answers_count",
    "golden_set_answers_count",
    "total_assignments_count",
    "stored_results_count",
}
# Which count condition makes a rate meaningful.
RATE_COUNTS = {
    "correct_answers_rate": ("total_answers_count", "golden_set_answers_count"),
    "incorrect_answers_rate": ("total_answers_count", "golden_set_answers_count"),
    "golden_set_correct_answers_rate": ("golden_set_answers_count", "total_answers_count"),
    "golden_set_incorrect_answers_rate": ("golden_set_answers_count", "total_answers_count"),
    "accepted_assignments_rate": ("total_assignments_count",),
    "rejected_assignments_rate": ("total_assignments_count",),
    "success_rate": ("stored_results_count",),
    "fail_rate": ("stored_results_count",),
}
SKILL_SOURCE_FIELDS = ("correct_answers_rate", "incorrect_answers_rate")
DURATION_UNITS = ("MINUTES", "HOURS", "DAYS", "PERMANENT")
SCOPES = ("POOL", "PROJECT", "ALL_PROJECTS")
# Collectors that use history_size.
WINDOWED_COLLECTORS = {
    "ASSIGNMENT_SUBMIT_TIME",
    "MAJORITY_VOTE",
    "GOLDEN_SET",
    "ACCEPTANCE_RATE",
    "CAPTCHA",
}
# Toloka's pool ``quality_control.captcha_frequency``: one captcha per this many tasks.
# Toloka documents LOW as 1 per 20 tasks and both MEDIUM and HIGH as 1 per 10; Crowdlab
# makes HIGH 1 per 5 so that the three levels differ.
CAPTCHA_EVERY = {"LOW": 20, "MEDIUM": 10, "HIGH": 5}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CollectorConfig(_Model):
    type: CollectorType
    parameters: dict[str, Any] = Field(default_factory=dict)
    uuid: str | None = None

    @field_validator("uuid")
    @classmethod
    def _valid_uuid(cls, value: str | None) -> str | None:
        if value is not None:
            uuidlib.UUID(str(value))
        return value

    @property
    def history_size(self) -> int | None:
        value = self.parameters.get("history_size")
        return int(value) if value not in (None, "") else None


class Condition(_Model):
    key: str
    operator: Operator
    value: Any


class Action(_Model):
    type: ActionType
    parameters: dict[str, Any] = Field(default_factory=dict)


class Rule(_Model):
    conditions: list[Condition] = Field(default_factory=list)
    action: Action


class QualityConfig(_Model):
    collector_config: CollectorConfig
    rules: list[Rule] = Field(default_factory=list)


def rule_key(config: QualityConfig, rule: Rule, *, prefix: str = "") -> str:
    """A stable key of one rule (its content), for its per-labeler history resets."""
    blob = json.dumps(
        [config.collector_config.model_dump(mode="json"), rule.model_dump(mode="json")],
        sort_keys=True,
    )
    digest = hashlib.sha1(blob.encode()).hexdigest()[:16]
    return f"{prefix}{config.collector_config.type.value[:24]}:{digest}"


def _int_param(params: dict, name: str, *, minimum: int, maximum: int, required: bool) -> str:
    value = params.get(name)
    if value in (None, ""):
        return f"{name} is required." if required else ""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        return f"{name} must be a whole number."
    try:
        number = int(value)
    except (TypeError, ValueError):
        return f"{name} must be a whole number."
    if not minimum <= number <= maximum:
        return f"{name} must be between {minimum} and {maximum}."
    params[name] = number
    return ""


def _check_collector(collector: CollectorConfig) -> dict[str, str]:
    errors: dict[str, str] = {}
    params = collector.parameters
    kind = collector.type.value
    if kind in WINDOWED_COLLECTORS:
        if message := _int_param(params, "history_size", minimum=1, maximum=10_000, required=False):
            errors["history_size"] = message
    if kind == "ASSIGNMENT_SUBMIT_TIME":
        if message := _int_param(
            params, "fast_submit_threshold_seconds", minimum=1, maximum=86_400, required=True
        ):
            errors["fast_submit_threshold_seconds"] = message
    if kind == "MAJORITY_VOTE":
        if message := _int_param(
            params, "answer_threshold", minimum=1, maximum=1000, required=True
        ):
            errors["answer_threshold"] = message
    return errors


def _check_conditions(collector: CollectorConfig, rule: Rule) -> dict[str, str]:
    errors: dict[str, str] = {}
    kind = collector.type.value
    allowed = COLLECTOR_KEYS[kind]
    if not rule.conditions:
        errors["conditions"] = "Add at least one condition."
    history = collector.history_size
    keys = {c.key for c in rule.conditions}
    for i, cond in enumerate(rule.conditions):
        field = f"conditions.{i}"
        if cond.key not in allowed:
            errors[field] = (
                f"{cond.key!r} is not a figure of {kind}; use one of {', '.join(allowed)}."
            )
            continue
        if kind == "USERS_ASSESSMENT":
            if str(cond.value) not in ("RESTRICTION", "SKILL_CHANGE"):
                errors[field] = "pool_access_revoked_reason is RESTRICTION or SKILL_CHANGE."
            continue
        try:
            value = float(cond.value)
        except (TypeError, ValueError):
            errors[field] = f"{cond.key} needs a number."
            continue
        cond.value = int(value) if value.is_integer() else value
        if cond.key.endswith("_rate") and not 0 <= value <= 100:
            errors[field] = "A rate is a percentage between 0 and 100."
        elif value < 0:
            errors[field] = "Counts and sums cannot be negative."
        elif history and cond.key in WINDOWED_COUNT_KEYS and _needs_more_than(cond, history):
            errors[field] = (
                f"This rule can never fire: {cond.key} counts at most the last {history} "
                f"items (history_size), so it never reaches {OPERATOR_SYMBOLS[cond.operator]} "
                f"{cond.value}."
            )
        elif cond.key in RATE_COUNTS and not keys.intersection(RATE_COUNTS[cond.key]):
            errors[field] = (
                f"Add a count condition (e.g. {RATE_COUNTS[cond.key][0]} ≥ 3) next to "
                f"{cond.key}: without it the rule fires on the very first answer."
            )
    return errors


def _needs_more_than(cond: Condition, history: int) -> bool:
    """Whether the condition requires a windowed count above what the window can hold."""
    value = float(cond.value)
    return (cond.operator in (Operator.GTE, Operator.EQ) and value > history) or (
        cond.operator == Operator.GT and value >= history
    )


def _check_action(action: Action) -> dict[str, str]:
    errors: dict[str, str] = {}
    params = action.parameters
    kind = action.type.value
    if kind == "RESTRICTION_V2":
        if params.get("scope") not in SCOPES:
            errors["scope"] = "Scope is POOL, PROJECT or ALL_PROJECTS."
        unit = params.get("duration_unit") or "DAYS"
        params["duration_unit"] = unit
        if unit not in DURATION_UNITS:
            errors["duration_unit"] = "Unit is MINUTES, HOURS, DAYS or PERMANENT."
        elif unit != "PERMANENT":
            if message := _int_param(params, "duration", minimum=1, maximum=100_000, required=True):
                errors["duration"] = message
        if not str(params.get("private_comment") or "").strip():
            errors["private_comment"] = (
                "Give a private reason, or nobody can tell later why the labeler was banned."
            )
        if len(str(params.get("public_comment") or "")) > 2000:
            errors["public_comment"] = "2000 characters at most."
    elif kind in ("SET_SKILL", "SET_SKILL_FROM_OUTPUT_FIELD"):
        if message := _int_param(params, "skill_id", minimum=1, maximum=2**31, required=True):
            errors["skill_id"] = "Choose a skill." if "required" in message else message
        if kind == "SET_SKILL":
            if message := _int_param(params, "skill_value", minimum=0, maximum=100, required=True):
                errors["skill_value"] = message
        elif params.get("from_field") not in SKILL_SOURCE_FIELDS:
            errors["from_field"] = "from_field is correct_answers_rate or incorrect_answers_rate."
    elif kind == "CHANGE_OVERLAP":
        if message := _int_param(params, "delta", minimum=1, maximum=100, required=True):
            errors["delta"] = message
        params["open_pool"] = bool(params.get("open_pool", False))
    elif kind == "REJECT_ALL_ASSIGNMENTS" and not str(params.get("public_comment") or "").strip():
        errors["public_comment"] = "Rejected labelers must see why: give a public comment."
    return errors


def _check_combination(config: QualityConfig, rule: Rule) -> dict[str, str]:
    kind = config.collector_config.type.value
    action = rule.action.type.value
    if action == "SET_SKILL_FROM_OUTPUT_FIELD" and kind not in ("MAJORITY_VOTE", "GOLDEN_SET"):
        return {"action": "Only majority vote and control tasks give a correct-answer rate."}
    if kind == "USERS_ASSESSMENT" and action != "CHANGE_OVERLAP":
        return {"action": "A banned labeler's tasks are re-issued with CHANGE_OVERLAP."}
    return {}


def parse_configs(raw: Any) -> list[QualityConfig]:
    """Validate Toloka-style configs; raise ValidationFailed naming each bad field.

    Error keys look like ``configs.0.rules.1.conditions.0`` (or ``...collector.history_size``).
    """
    if isinstance(raw, dict):
        raw = raw.get("configs", raw.get("quality_control", {}).get("configs"))
    if not isinstance(raw, list):
        raise ValidationFailed(
            "Quality rules must be a list of configs.", errors={"configs": "Expected a list."}
        )
    configs: list[QualityConfig] = []
    errors: dict[str, str] = {}
    for ci, item in enumerate(raw):
        try:
            config = QualityConfig.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            errors[f"configs.{ci}"] = f"{loc}: {first['msg']}"
            continue
        base = f"configs.{ci}"
        for name, message in _check_collector(config.collector_config).items():
            errors[f"{base}.collector.{name}"] = message
        if not config.rules:
            errors[f"{base}.rules"] = "A collector needs at least one rule."
        for ri, rule in enumerate(config.rules):
            prefix = f"{base}.rules.{ri}"
            for checks in (
                _check_conditions(config.collector_config, rule),
                _check_action(rule.action),
                _check_combination(config, rule),
            ):
                for name, message in checks.items():
                    errors[f"{prefix}.{name}"] = message
        configs.append(config)
    if errors:
        first = next(iter(errors.values()))
        raise ValidationFailed(f"Check the quality rules: {first}", errors=errors)
    return configs


def parse_captcha_frequency(value: Any) -> str | None:
    """LOW, MEDIUM or HIGH (any case), or None for no captchas; else ValidationFailed."""
    frequency = str(value or "").strip().upper() or None
    if frequency is not None and frequency not in CAPTCHA_EVERY:
        message = "Captcha frequency is LOW, MEDIUM or HIGH (or none)."
        raise ValidationFailed(message, errors={"captcha_frequency": message})
    return frequency


def check_captcha_rules(configs: list | None, frequency: str | None) -> None:
    """A captcha rule on a pool that shows no captchas could never fire: refuse it."""
    if frequency:
        return
    if any(
        (config.get("collector_config") or {}).get("type") == "CAPTCHA" for config in configs or []
    ):
        message = (
            "A captcha rule needs captchas: set the pool's captcha frequency "
            "(LOW, MEDIUM or HIGH) or remove the rule."
        )
        raise ValidationFailed(message, errors={"captcha_frequency": message})


def load_configs(raw: Any) -> list[QualityConfig]:
    """Configs stored on a pool or project; invalid ones are skipped (never break submit)."""
    configs = []
    for item in raw or []:
        try:
            configs.extend(parse_configs([item]))
        except ValidationFailed:
            continue
    return configs


def dump_configs(configs: list[QualityConfig]) -> list[dict]:
    """Configs as Toloka JSON (``quality_control.configs``)."""
    out = []
    for config in configs:
        collector = {"type": config.collector_config.type.value}
        if config.collector_config.parameters:
            collector["parameters"] = dict(config.collector_config.parameters)
        if config.collector_config.uuid:
            collector["uuid"] = config.collector_config.uuid
        rules = [
            {
                "conditions": [
                    {"key": c.key, "operator": c.operator.value, "value": c.value}
                    for c in rule.conditions
                ],
                "action": {
                    "type": rule.action.type.value,
                    "parameters": dict(rule.action.parameters),
                },
            }
            for rule in config.rules
        ]
        out.append({"collector_config": collector, "rules": rules})
    return out


def conditions_hold(rule: Rule, figures: dict[str, Any]) -> bool:
    """Whether every condition of the rule holds for the collector's figures."""
    for cond in rule.conditions:
        actual = figures.get(cond.key)
        if actual is None:
            return False
        expected = cond.value
        if not isinstance(actual, str):
            try:
                expected = float(expected)
            except (TypeError, ValueError):
                return False
        if not OPERATOR_FUNCS[cond.operator](actual, expected):
            return False
    return True


def describe_rule(config: QualityConfig, rule: Rule) -> str:
    """A one-line "If … then …" reading of a rule."""
    conds = " and ".join(
        f"{c.key} {OPERATOR_SYMBOLS[c.operator]} {c.value}" for c in rule.conditions
    )
    return f"If {config.collector_config.type.value}: {conds} then {rule.action.type.value}"
