"""Accounts: users, sign-up and log-in, API tokens."""
