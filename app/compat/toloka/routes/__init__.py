"""Toloka-shaped routes; ``app.main`` mounts every module's ``router``."""
