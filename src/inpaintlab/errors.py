"""One error type and one exit-code policy for every command.

Every command (the stage apps `python -m inpaintlab.<stage>`, `inpaintlab` and its subcommands,
`python -m inpaintlab.params`) reports a failure as one `error: ...` line on stderr and exits
with:

    0        done
    1        done, and the answer is "no": check-metrics found a regression, predict skipped
             inputs in folder mode, `params --check` found params.yaml stale; or the model failed
             to load or run (ModelError); or an unexpected error (INPAINTLAB_DEBUG=1 shows the
             traceback instead of one line)
    2        nothing was done: a bad argument, config value or input file (UserError), and
             argparse's usage errors
    130/143  interrupted by Ctrl-C / SIGTERM (128 + the signal number)

`command` wraps a `main(argv) -> int` (the code is returned), `stage` a Hydra task function (the
code is the process's exit status). Both go through `report`. Imports nothing heavy: every
command, `inpaintlab predict` and `serve` included, imports it.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEBUG_ENV = "INPAINTLAB_DEBUG"


class UserError(Exception):
    """A problem the user can fix (a bad argument, config value or input file): one `error:`
    line and `exit_code`. Subclasses that mean something else set their own exit_code."""

    exit_code = EXIT_USAGE


class ModelError(UserError):
    """The model could not be loaded, or failed while running."""

    exit_code = EXIT_FAILED


class Interrupted(BaseException):
    """A stage stopped by SIGINT/SIGTERM: its one-line message is printed and the process exits
    with 128 + the signal number (130, 143). A BaseException, so `except Exception` lets it by."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (for one-line errors)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def one_line(err: BaseException) -> str:
    """The innermost cause of an error as one line (Hydra wraps instantiation errors in
    several lines: 'Error in call to target ...', the cause, 'full_key: ...')."""
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = " ".join(str(inner).split()) or type(inner).__name__
    key = next(
        (
            line.split(":", 1)[1].strip()
            for line in str(err).splitlines()
            if line.startswith("full_key:")
        ),
        None,
    )
    return f"{key}: {text}" if key and key not in text else text


def report(err: BaseException) -> int:
    """Print err as one `error:` line on stderr; return the exit code the policy gives it."""
    if isinstance(err, UserError):
        message, code = " ".join(str(err).split()), err.exit_code
    elif isinstance(err, Interrupted):
        message, code = str(err), 128 + int(err.signum)
    elif isinstance(err, KeyboardInterrupt):
        message, code = "interrupted; nothing half-written was left behind", 128 + signal.SIGINT
    else:
        message = (
            f"unexpected {type(err).__name__}: {first_line(err)} "
            f"({DEBUG_ENV}=1 shows the traceback)"
        )
        code = EXIT_FAILED
    print(f"error: {message}", file=sys.stderr)
    return code


def _reported(err: BaseException) -> bool:
    """Whether err becomes one line (else it propagates: a traceback under INPAINTLAB_DEBUG)."""
    expected = isinstance(err, UserError | Interrupted | KeyboardInterrupt)
    return expected or not os.environ.get(DEBUG_ENV)


def command(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command's `main(argv) -> int`: errors become report()'s line and exit code, which
    is returned (cli.py and `python -m` hand it to sys.exit; tests read it). argparse's own exits
    (--help 0, usage errors 2) are returned too."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            return int(fn(*args, **kwargs) or 0)
        except SystemExit as exc:  # argparse: print_help / error
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        except (Exception, KeyboardInterrupt, Interrupted) as err:
            if not _reported(err):
                raise
            return report(err)

    return wrapper


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("interrupted by SIGTERM; outputs of this stage were not replaced", signum)


@contextmanager
def sigterm_as_interrupted() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises Interrupted, so a stage stops
    with its one line and 143 instead of dying mid-write."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def stage(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a stage app's task function (under @hydra.main): errors become report()'s line and
    the process exits with its code; SIGTERM is an Interrupted while it runs. The return value
    passes through (train's val_psnr is what Hydra sweepers optimise). Training installs its
    own signal handlers on top (it stops at a batch boundary and keeps a checkpoint)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sigterm_as_interrupted():
            try:
                return fn(*args, **kwargs)
            except (Exception, KeyboardInterrupt, Interrupted) as err:
                if not _reported(err):
                    raise
                sys.exit(report(err))

    return wrapper
