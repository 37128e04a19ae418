"""Aggregation runs of a pool: start one as a job, read its labels, export the TSV.
The algorithms themselves live in the top-level ``aggregation`` package."""
