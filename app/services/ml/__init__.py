"""Machine learning on labeled data: collections (from a ZIP or an aggregation run),
training runs and trained models, and inference. The training code itself lives in the
top-level ``model`` package."""
