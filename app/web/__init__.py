"""HTML routes: every module here with a ``router`` is mounted by ``app.main``."""
