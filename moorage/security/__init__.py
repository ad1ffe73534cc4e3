"""Credentials: password hashing, API tokens, sessions and roles. No HTTP here."""
