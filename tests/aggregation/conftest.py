"""Small answer tables shared by the aggregation tests.

``aggregation/`` is pure (no database, no web), so its tests switch off the root conftest's
per-test database set-up by overriding its autouse ``settings`` fixture.
"""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def settings() -> None:
    """No application settings or database for the pure aggregation tests."""
    return None


def answers(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """``[(task, worker, label), ...]`` -> answer table."""
    return pd.DataFrame(rows, columns=["task", "worker", "label"])
