"""Files written whole or not at all (temp file or folder, then rename), and one writer at a time
(FileLock): what every stage uses to leave nothing half-written."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from inpaintlab.processes import pid_alive

log = logging.getLogger("inpaintlab")


def temp_name(path: str | Path, tag: str = "tmp") -> Path:
    """A unique hidden sibling of path: `.<name>.<pid>-<random>.<tag>`. The pid lets a later run
    tell a dead writer's leftover from a live writer's file (remove_stale_temps)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.{tag}")


def write_temp(path: str | Path, data: bytes | str) -> Path:
    """Write data to a unique temp file beside path (created with open(): it follows the umask,
    unlike mkstemp's 0600), flushed to disk; returns the temp file, for a later os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "xb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file to write path's new content into: a unique temp file beside path (created
    with open(), so it follows the umask), flushed to disk and renamed over path when the block
    ends, removed when it fails. Readers see the old file or the new one, never half of one.

        with atomic_file("out.png") as handle:
            image.save(handle, format="PNG")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes | str) -> None:
    """Write a file so readers see the old or the new content, never half of it."""
    with atomic_file(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _writer_pid(name: str, stem: str) -> int | None:
    """The pid in a temp_name() (or a fresh_temp_dir) left behind for `stem`, else None."""
    for prefix in (f".{stem}.", f"{stem}.tmp-", f"{stem}.old-"):
        if name.startswith(prefix):
            head = name[len(prefix) :].split("-", 1)[0]
            return int(head) if head.isdigit() else None
    return None


def remove_stale_temps(path: str | Path) -> None:
    """Delete temp files and folders of path left by writers that are no longer running
    (killed mid-write); a live writer's files stay."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for entry in path.parent.iterdir():
        pid = _writer_pid(entry.name, path.name)
        if pid is None and entry.name in (f"{path.name}.tmp", f"{path.name}.old"):
            pid = -1  # the fixed names of earlier versions
        if pid is None or (pid > 0 and pid_alive(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Swap a fully written temp folder into place (old content removed only after success)."""
    old = final_dir.with_name(f"{final_dir.name}.old-{os.getpid()}-{secrets.token_hex(3)}")
    if final_dir.exists():
        final_dir.rename(old)
    tmp_dir.rename(final_dir)
    shutil.rmtree(old, ignore_errors=True)


def fresh_temp_dir(final_dir: Path) -> Path:
    """An empty sibling folder of final_dir to build its new content in, unique to this process
    (two writers never share one); dead writers' leftovers are removed."""
    remove_stale_temps(final_dir)
    tmp = final_dir.with_name(f"{final_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    tmp.mkdir(parents=True)
    return tmp


@contextlib.contextmanager
def atomic_dir(final_dir: str | Path, keep_failed: bool = False) -> Iterator[Path]:
    """A fresh temp folder to build final_dir's new content in (fresh_temp_dir); when the block
    ends it replaces final_dir whole (replace_dir), when it fails it is removed, or kept for a
    look with keep_failed (a later writer's remove_stale_temps clears it).

        with atomic_dir("models/export") as tmp:
            write(tmp / "model.onnx")
    """
    final_dir = Path(final_dir)
    tmp = fresh_temp_dir(final_dir)
    try:
        yield tmp
    except BaseException:
        if not keep_failed:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final_dir)


class Busy(Exception):
    """A lock is held by another live process (its pid, if it wrote one)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path, self.holder = path, holder


class FileLock:
    """An flock on a file: released by the kernel when the process dies, so a killed holder
    never leaves a stale lock. The holder writes `pid N on HOST` into it for error messages.

        with FileLock(path).acquire(): ...        # raises Busy if another process holds it
        with FileLock(path).acquire(wait=True): ...
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def acquire(self, wait: bool = False) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (kept while held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise Busy(self.path, holder) from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the flock
            self._handle = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
