"""Quality-rule presets, in Toloka's ``quality_control.configs`` shape.

A pool's ``quality_rules`` is a list of such configs: ``collector_config`` (type and
parameters) + ``rules`` (each with AND-ed ``conditions`` and one ``action``).
"""

from __future__ import annotations

import copy

IMAGE_CLASSIFICATION_PRESET: list[dict] = [
    {
        "collector_config": {
            "type": "ASSIGNMENT_SUBMIT_TIME",
            "parameters": {"history_size": 5, "fast_submit_threshold_seconds": 15},
        },
        "rules": [
            {
                "conditions": [{"key": "fast_submitted_count", "operator": "GTE", "value": 4}],
                "action": {
                    "type": "RESTRICTION_V2",
                    "parameters": {
                        "scope": "PROJECT",
                        "duration": 1,
                        "duration_unit": "DAYS",
                        "private_comment": "Fast responses: 4 of the last 5 suites under 15 s",
                        "public_comment": "Your answers came too fast to be careful.",
                    },
                },
            }
        ],
    },
    {
        "collector_config": {
            "type": "MAJORITY_VOTE",
            "parameters": {"answer_threshold": 2, "history_size": 10},
        },
        "rules": [
            {
                "conditions": [
                    {"key": "total_answers_count", "operator": "GTE", "value": 3},
                    {"key": "correct_answers_rate", "operator": "LT", "value": 40},
                ],
                "action": {
                    "type": "RESTRICTION_V2",
                    "parameters": {
                        "scope": "PROJECT",
                        "duration": 1,
                        "duration_unit": "DAYS",
                        "private_comment": "Majority vote: under 40% agreement",
                        "public_comment": "Too many of your answers disagreed with other labelers.",
                    },
                },
            }
        ],
    },
    {  # control tasks, as Toloka's image-classification tutorial sets them
        "collector_config": {"type": "GOLDEN_SET", "parameters": {"history_size": 10}},
        "rules": [
            {
                "conditions": [
                    {"key": "total_answers_count", "operator": "GTE", "value": 3},
                    {"key": "correct_answers_rate", "operator": "LT", "value": 60},
                ],
                "action": {
                    "type": "RESTRICTION_V2",
                    "parameters": {
                        "scope": "PROJECT",
                        "duration": 1,
                        "duration_unit": "DAYS",
                        "private_comment": "Control tasks: under 60% correct",
                        "public_comment": "Too many of your answers to control tasks were wrong.",
                    },
                },
            }
        ],
    },
]


def image_classification_preset() -> list[dict]:
    """A fresh copy of the image-classification preset (Toloka's defaults)."""
    return copy.deepcopy(IMAGE_CLASSIFICATION_PRESET)
