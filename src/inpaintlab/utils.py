"""Small shared pieces: user-facing errors, atomic writes, the project root."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("inpaintlab")


class UserError(Exception):
    """A mistake the user can fix (bad config value, missing input): printed as one line, exit 1."""


def user_errors_as_one_line(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a stage's entry so a UserError prints `error: ...` and exits 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("error: interrupted; outputs of this stage were not replaced", file=sys.stderr)
            sys.exit(130)

    return wrapper


def available_cpus() -> int:
    """CPUs this process may use (affinity and cgroup-pinned sets count, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so readers see the old or the new content, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Swap a fully written temp folder into place (old content removed only after success)."""
    old = final_dir.with_name(final_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final_dir.exists():
        final_dir.rename(old)
    tmp_dir.rename(final_dir)
    shutil.rmtree(old, ignore_errors=True)


def fresh_temp_dir(final_dir: Path) -> Path:
    """An empty sibling folder of final_dir to build its new content in."""
    tmp = final_dir.with_name(final_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp
