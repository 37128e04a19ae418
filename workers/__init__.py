"""Background jobs: queue set-up, job functions and the runner."""
