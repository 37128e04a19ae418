"""Media files: verified images stored content-addressed in a local folder or any fsspec URL."""
