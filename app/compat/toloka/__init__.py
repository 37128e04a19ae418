"""Toloka API v1 compatibility: the JSON shapes toloka-kit reads (assignments, trainings,
analytics, user bonuses and restrictions) and their routes under ``/api/v1``.

Owns only translation: every rule, lock and ledger movement lives in ``app.services``."""
