"""What the rules engine needs of a submitted suite and its pool, as the submit path read
them (no ORM load): any object with these attributes will do, the ORM rows included."""

from __future__ import annotations

from typing import Protocol


class SubmittedSuite(Protocol):
    """A suite just submitted: its id, pool and labeler."""

    id: int
    pool_id: int
    labeler_id: int


class SubmitTerms(Protocol):
    """What the submit read of the suite's pool."""

    id: int
    owner_id: int
    has_rules: bool  # the pool or its project has quality rules
