"""JSON REST routes under /api/v1: every module here with a ``router`` is mounted."""
