"""Rule configs: Toloka's JSON in and out, and the checks Toloka lacks."""

from __future__ import annotations

import pytest

from app.errors import ValidationFailed
from app.services.quality.presets import image_classification_preset
from app.services.quality.rules import dump_configs, parse_configs

from .helpers import ban_rule

FAST = {
    "type": "ASSIGNMENT_SUBMIT_TIME",
    "parameters": {"history_size": 5, "fast_submit_threshold_seconds": 15},
}
MAJORITY = {"type": "MAJORITY_VOTE", "parameters": {"answer_threshold": 2, "history_size": 10}}


def _errors(raw) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        parse_configs(raw)
    return caught.value.errors


def test_preset_and_toloka_kit_rules_load_and_round_trip():
    cinic = [
        {
            "collector_config": {"type": "INCOME"},
            "rules": [
                {
                    "conditions": [
                        {"key": "income_sum_for_last_24_hours", "operator": "GTE", "value": 20}
                    ],
                    "action": {
                        "type": "RESTRICTION_V2",
                        "parameters": {
                            "scope": "PROJECT",
                            "duration": 1,
                            "duration_unit": "DAYS",
                            "private_comment": "No need more answers",
                        },
                    },
                }
            ],
        },
        {
            "collector_config": {"type": "GOLDEN_SET"},
            "rules": [
                {
                    "conditions": [
                        {"key": "golden_set_correct_answers_rate", "operator": "LT", "value": 60.0},
                        {"key": "golden_set_answers_count", "operator": "GTE", "value": 3},
                    ],
                    "action": {
                        "type": "RESTRICTION_V2",
                        "parameters": {
                            "scope": "ALL_PROJECTS",
                            "duration_unit": "PERMANENT",
                            "private_comment": "controls",
                        },
                    },
                }
            ],
        },
    ]
    for raw in (image_classification_preset(), cinic):
        dumped = dump_configs(parse_configs(raw))
        assert dump_configs(parse_configs(dumped)) == dumped
        assert [c["collector_config"]["type"] for c in dumped] == [
            c["collector_config"]["type"] for c in raw
        ]


def test_count_condition_above_history_size_can_never_fire():
    errors = _errors([ban_rule(FAST, [("fast_submitted_count", "GTE", 6)])])
    assert "never fire" in errors["configs.0.rules.0.conditions.0"]
    errors = _errors([ban_rule(FAST, [("total_submitted_count", "GT", 5)])])
    assert "never fire" in errors["configs.0.rules.0.conditions.0"]
    # exactly the window is fine
    parse_configs([ban_rule(FAST, [("fast_submitted_count", "GTE", 5)])])


def test_rate_condition_without_count_fires_too_eagerly():
    errors = _errors([ban_rule(MAJORITY, [("correct_answers_rate", "LT", 40)])])
    assert "count condition" in errors["configs.0.rules.0.conditions.0"]
    parse_configs(
        [
            ban_rule(
                MAJORITY, [("correct_answers_rate", "LT", 40), ("total_answers_count", "GTE", 3)]
            )
        ]
    )


def test_ban_needs_a_private_reason_and_known_keys():
    errors = _errors([ban_rule(FAST, [("fast_submitted_count", "GTE", 4)], private_comment="")])
    assert "private reason" in errors["configs.0.rules.0.private_comment"]
    errors = _errors([ban_rule(FAST, [("golden_set_answers_count", "GTE", 4)])])
    assert "not a figure" in errors["configs.0.rules.0.conditions.0"]
    errors = _errors([ban_rule({"type": "MAJORITY_VOTE"}, [("total_answers_count", "GTE", 3)])])
    assert "answer_threshold" in errors["configs.0.collector.answer_threshold"]
    errors = _errors([ban_rule(FAST, [("fast_submitted_count", "GTE", 4)], scope="GALAXY")])
    assert "configs.0.rules.0.scope" in errors
    errors = _errors([{"collector_config": {"type": "NOPE"}, "rules": []}])
    assert "configs.0" in errors
