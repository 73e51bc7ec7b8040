"""The two ways inference fails, shared by every caller (predict, evaluate, benchmarks, serve)."""

from __future__ import annotations


class PredictError(Exception):
    """Bad input the user can fix: printed as one `error:` line, exit 2."""


class ModelError(Exception):
    """The model could not be loaded or failed while running: one `error:` line, exit 1."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (for one-line errors)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
