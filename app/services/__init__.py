"""Domain logic; no HTTP in here."""
