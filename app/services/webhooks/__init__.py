"""Webhooks (Toloka's subscriptions): a requester's receiver hears about its pools' events.

``events.emit`` queues a signed delivery per matching subscription inside the caller's
transaction; a job sends it once that commits, and a periodic step retries failures with
exponential backoff until ``webhook_max_attempts``.
"""
