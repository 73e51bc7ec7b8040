"""Shared test helpers: one module per system a test starts (e.g. postgres.py)."""
