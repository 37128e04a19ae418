"""Crowdlab aggregation: pure functions and classes over answer tables.

No database and no web here (``tests/test_layering.py`` checks it). Answers come in as a
``task, worker, label`` DataFrame (crowd-kit's layout), are integer-coded once by
:func:`encode`, and every method works on the codes.

Importing this package is free: the names below are loaded on first use (PEP 562), so a
command that only needs the TSV reader does not pay for pandas, scipy or every method.

>>> import pandas as pd
>>> df = pd.DataFrame({"task": ["a", "a", "a"], "worker": ["x", "y", "z"],
...                    "label": ["cat", "cat", "dog"]})
>>> aggregate(df, method="mv")
  task label  confidence
0    a   cat    0.666667
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Auto": "auto",
    "Aggregator": "base",
    "ProgressFn": "base",
    "BayesianDawidSkene": "bayesian",
    "PlattCalibrator": "calibration",
    "expected_calibration_error": "calibration",
    "reliability_bins": "calibration",
    "DawidSkene": "dawid_skene",
    "OneCoinDawidSkene": "dawid_skene",
    "GLAD": "glad",
    "MajorityVote": "majority",
    "Wawa": "majority",
    "AnswerMatrix": "matrix",
    "KnownCodes": "matrix",
    "encode": "matrix",
    "encode_arrays": "matrix",
    "encode_lists": "matrix",
    "ALIASES": "registry",
    "METHODS": "registry",
    "aggregate": "registry",
    "get_method": "registry",
    "get_method_name": "registry",
    "quality_report": "report",
    "wilson_interval": "report",
    "Crowd": "simulate",
    "simulate_crowd": "simulate",
    "TsvError": "tsv",
    "known_answers": "tsv",
    "read_assignments_tsv": "tsv",
    "write_aggregated_tsv": "tsv",
}

__all__ = [
    "ALIASES",
    "Aggregator",
    "AnswerMatrix",
    "Auto",
    "BayesianDawidSkene",
    "Crowd",
    "DawidSkene",
    "GLAD",
    "KnownCodes",
    "METHODS",
    "MajorityVote",
    "OneCoinDawidSkene",
    "PlattCalibrator",
    "ProgressFn",
    "TsvError",
    "Wawa",
    "aggregate",
    "encode",
    "encode_arrays",
    "encode_lists",
    "expected_calibration_error",
    "get_method",
    "get_method_name",
    "known_answers",
    "quality_report",
    "read_assignments_tsv",
    "reliability_bins",
    "simulate_crowd",
    "wilson_interval",
    "write_aggregated_tsv",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f"aggregation.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aggregation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


if TYPE_CHECKING:
    from aggregation.auto import Auto
    from aggregation.base import Aggregator, ProgressFn
    from aggregation.bayesian import BayesianDawidSkene
    from aggregation.calibration import (
        PlattCalibrator,
        expected_calibration_error,
        reliability_bins,
    )
    from aggregation.dawid_skene import DawidSkene, OneCoinDawidSkene
    from aggregation.glad import GLAD
    from aggregation.majority import MajorityVote, Wawa
    from aggregation.matrix import AnswerMatrix, KnownCodes, encode, encode_arrays, encode_lists
    from aggregation.registry import ALIASES, METHODS, aggregate, get_method, get_method_name
    from aggregation.report import quality_report, wilson_interval
    from aggregation.simulate import Crowd, simulate_crowd
    from aggregation.tsv import TsvError, known_answers, read_assignments_tsv, write_aggregated_tsv
