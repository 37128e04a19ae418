"""Crowdlab aggregation: pure functions and classes over answer tables.

No database and no web here (``tests/test_layering.py`` checks it). Answers come in as a
``task, worker, label`` DataFrame (crowd-kit's layout), are integer-coded once by
:func:`encode`, and every method works on the codes.

>>> import pandas as pd
>>> df = pd.DataFrame({"task": ["a", "a", "a"], "worker": ["x", "y", "z"],
...                    "label": ["cat", "cat", "dog"]})
>>> aggregate(df, method="mv")
  task label  confidence
0    a   cat    0.666667
"""

from aggregation.auto import Auto
from aggregation.base import Aggregator, ProgressFn
from aggregation.bayesian import BayesianDawidSkene
from aggregation.calibration import PlattCalibrator, expected_calibration_error, reliability_bins
from aggregation.dawid_skene import DawidSkene, OneCoinDawidSkene
from aggregation.glad import GLAD
from aggregation.majority import MajorityVote, Wawa
from aggregation.matrix import AnswerMatrix, KnownCodes, encode
from aggregation.registry import ALIASES, METHODS, aggregate, get_method
from aggregation.simulate import Crowd, simulate_crowd
from aggregation.tsv import TsvError, known_answers, read_assignments_tsv, write_aggregated_tsv

__all__ = [
    "ALIASES",
    "METHODS",
    "GLAD",
    "Aggregator",
    "Auto",
    "BayesianDawidSkene",
    "PlattCalibrator",
    "AnswerMatrix",
    "Crowd",
    "DawidSkene",
    "KnownCodes",
    "MajorityVote",
    "OneCoinDawidSkene",
    "ProgressFn",
    "TsvError",
    "Wawa",
    "aggregate",
    "encode",
    "expected_calibration_error",
    "get_method",
    "known_answers",
    "read_assignments_tsv",
    "reliability_bins",
    "simulate_crowd",
    "write_aggregated_tsv",
]
