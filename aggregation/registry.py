"""Method names and the one-call result helper :func:`aggregate`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregation.auto import Auto
from aggregation.base import Aggregator, ProgressFn
from aggregation.bayesian import BayesianDawidSkene
from aggregation.dawid_skene import DawidSkene, OneCoinDawidSkene
from aggregation.glad import GLAD
from aggregation.majority import MajorityVote, Wawa

if TYPE_CHECKING:
    import pandas as pd

METHODS: dict[str, type[Aggregator]] = {
    "auto": Auto,
    "mv": MajorityVote,
    "ds": DawidSkene,
    "one_coin_ds": OneCoinDawidSkene,
    "glad": GLAD,
    "wawa": Wawa,
    "bds": BayesianDawidSkene,
}
"""Canonical method names -> classes."""

ALIASES: dict[str, str] = {
    "majority_vote": "mv",
    "dawid_skene": "ds",
    "bayesian_ds": "bds",
    "bcc": "bds",
}
"""Other accepted names -> canonical names."""


def get_method_name(name: str) -> str:
    """The canonical name of a method name or alias (``Dawid-Skene`` -> ``ds``)."""
    key = name.strip().lower().replace("-", "_")
    return ALIASES.get(key, key)


def get_method(name: str) -> type[Aggregator]:
    """Returns the aggregation class for a method name.

    Args:
        name: One of ``auto``, ``mv``, ``ds``, ``one_coin_ds``, ``glad``, ``wawa``, ``bds`` or an
            alias (``majority_vote``, ``dawid_skene``, ``bayesian_ds``, ``bcc``); case and
            ``-``/``_`` do not matter.

    Raises:
        ValueError: Unknown name; the message lists the known ones.
    """
    key = get_method_name(name)
    if key not in METHODS:
        known = ", ".join([*METHODS, *ALIASES])
        raise ValueError(f"unknown aggregation method {name!r}; choose one of: {known}")
    return METHODS[key]


def aggregate(
    data: pd.DataFrame,
    method: str = "ds",
    known: pd.Series | None = None,
    on_progress: ProgressFn | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Aggregates answers into one label per task.

    Args:
        data: One row per answer with columns ``task``, ``worker``, ``label``.
        method: A name accepted by :func:`get_method`.
        known: Optional known answers (Series task -> label); those tasks get the known label
            with confidence 1 and, for the EM models, teach the worker models.
        on_progress: Called as ``on_progress(fraction, message)`` while fitting.
        **params: Hyper-parameters of the method's class (e.g. ``n_iter``, ``tol``).

    Returns:
        DataFrame with columns ``task, label, confidence`` (confidence in [0, 1]), one row per
        task in order of first appearance in ``data``.
    """
    model = get_method(method)(**params)
    return model.fit(data, known=known, on_progress=on_progress).result_frame()
