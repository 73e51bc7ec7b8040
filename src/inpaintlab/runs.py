"""Training runs on disk: one folder per run, resume after an interruption, and publishing the
stage's three outputs together.

    logs/train/                      (train.Outputs.work_dir; a sweep job has its own)
      runs/<key>/run.json            status, config fingerprint, MLflow run, process, epochs done
      runs/<key>/lock                flock held while the run's process lives (freed by the kernel
                                     when it dies, so a killed run is never mistaken for a live one)
      runs/<key>/checkpoints/        last.ckpt (every epoch end) and best-eNNNN.ckpt
      runs/<key>/train_history.csv   rewritten every epoch: a killed run's curves
      runs/<key>/publish/            the outputs, staged in full before they are published
      publish.lock, publish.json     one publisher at a time; the journal of a publish under way
      published.json                 which run the published outputs come from

Resume: a run that did not publish and whose process is gone is resumed by the next training
with the same fingerprint (the train params of dvc.yaml, the training code, data/prepared), from
its last checkpoint and into its MLflow run. A different fingerprint starts fresh and says why.

Publishing: models/model.ckpt, metrics/train.json and plots/train_history.csv are written from
one completed run only. They are staged in the run folder first; then, under publish.lock, a
journal names that run, each file is copied beside its target and renamed over it, and the
journal is removed. A publisher killed half way leaves the journal, and the next training (or
any publisher) repeats the copy from the staged files before doing anything else, so the three
files always come from one and the same run, even if DVC deleted some of them in between.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpaintlab.files import (
    Busy,
    FileLock,
    atomic_file,
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temps,
)
from inpaintlab.processes import process_identity

log = logging.getLogger(__name__)

RUNS = "runs"
RUN_FILE = "run.json"
LOCK = "lock"
JOURNAL = "publish.json"
PUBLISHED = "published.json"
PUBLISH_LOCK = "publish.lock"
# Keys of the train stage's params (dvc.yaml) that do not change what is trained.
COSMETIC = {
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
}
TRAIN_PARAMS = ("seed", "datamodule", "mask", "model", "loss", "optim", "trainer")
# The training code, as in dvc.yaml's train deps (relative to the package folder).
CODE = ("train.py", "inpaint_module.py", "models", "data/datamodule.py", "data/masks.py")

# --- fingerprint ---------------------------------------------------------------------------------


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out |= _flatten(value, f"{prefix}{key}.")
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): tree}


def train_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the resolved config that decides what is trained, flattened."""
    flat = _flatten({k: config[k] for k in TRAIN_PARAMS if k in config})
    return {k: v for k, v in sorted(flat.items()) if k not in COSMETIC}


def code_digest() -> dict[str, str]:
    """sha256 (16 hex) of each file of the training code."""
    package = Path(__file__).resolve().parent
    files: list[Path] = []
    for name in CODE:
        path = package / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return {
        f.relative_to(package).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        for f in files
        if f.is_file()
    }


def data_digest(prepared_dir: str | Path) -> str:
    """A digest of data/prepared: every file's relative path and size, and the manifest."""
    root = Path(prepared_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
    manifest = root / "manifest.json"
    if manifest.is_file():
        digest.update(manifest.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Fingerprint:
    config: dict[str, Any]
    code: dict[str, str]
    data: str

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "code": self.code, "data": self.data}

    def differences(self, other: Mapping[str, Any]) -> list[str]:
        """Why a run recorded with `other` cannot be continued under this fingerprint."""
        reasons: list[str] = []
        theirs = other.get("config", {})
        for key in sorted(set(self.config) | set(theirs)):
            if self.config.get(key, "<unset>") != theirs.get(key, "<unset>"):
                reasons.append(
                    f"{key} {theirs.get(key, '<unset>')} -> {self.config.get(key, '<unset>')}"
                )
        changed = sorted(
            k
            for k in set(self.code) | set(other.get("code", {}))
            if self.code.get(k) != other.get("code", {}).get(k)
        )
        if changed:
            reasons.append(
                "code changed: " + ", ".join(changed[:4]) + (" ..." if len(changed) > 4 else "")
            )
        if other.get("data") != self.data:
            reasons.append("data/prepared changed")
        return reasons


# --- run folders ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One training's folder, locked by this process while it lives."""

    dir: Path
    state: dict[str, Any]
    lock: FileLock
    resumed: bool = False  # continues an earlier process's run

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def resume_from(self) -> Path | None:
        """The checkpoint fit continues from: last.ckpt of a resumed run, if it was written."""
        return self.last if self.resumed and self.last.exists() else None

    @property
    def history(self) -> Path:
        return self.dir / "train_history.csv"

    @property
    def staged(self) -> Path:
        return self.dir / "publish"

    def update(self, **changes: Any) -> None:
        self.state.update(changes)
        self.state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_json(self.dir / RUN_FILE, self.state)

    def close(self) -> None:
        self.lock.release()


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None


EXITING_WAIT = 30.0  # seconds


def _acquire(lock: FileLock, patience: float) -> bool:
    """Take the lock, trying for up to `patience` seconds; False if another process keeps it."""
    deadline = time.monotonic() + patience
    while True:
        try:
            lock.acquire()
            return True
        except Busy:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def _new_key() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _describe(state: Mapping[str, Any]) -> str:
    done = state.get("epochs_done", 0)
    total = state.get("max_epochs")
    return f"{done}{f' of {total}' if total else ''} epochs done"


def open_run(
    work_dir: Path,
    fingerprint: Fingerprint,
    resume: bool,
    max_epochs: int | None,
    say: Callable[[str], None],
) -> Run:
    """This training's run: an unfinished run with the same fingerprint whose process is gone
    (resume), else a new folder. Explains, through `say`, why an unfinished run is not resumed."""
    runs_dir = work_dir / RUNS
    runs_dir.mkdir(parents=True, exist_ok=True)
    candidates: list[tuple[dict[str, Any], Path, FileLock]] = []
    busy: list[str] = []
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        state = read_state(run_dir)
        if state is None or state.get("status") == "published":
            continue
        lock = FileLock(run_dir / LOCK)
        # A run that recorded its stop is exiting (its MLflow run, the last lines): wait for it.
        patience = EXITING_WAIT if state.get("status") in ("interrupted", "failed") else 0.0
        if not _acquire(lock, patience):
            if state.get("fingerprint") and not fingerprint.differences(state["fingerprint"]):
                busy.append(run_dir.name)
            continue
        candidates.append((read_state(run_dir) or state, run_dir, lock))
    candidates.sort(key=lambda c: (c[0].get("created", ""), c[1].name))

    chosen: tuple[dict[str, Any], Path, FileLock] | None = None
    matching = [c for c in candidates if not fingerprint.differences(c[0].get("fingerprint", {}))]
    if matching and resume:
        chosen = matching[-1]
    elif matching:
        state, run_dir, _ = matching[-1]
        say(
            f"train.resume=false: starting fresh; the interrupted run {run_dir.name} "
            f"({_describe(state)}) stays in {run_dir}"
        )
    elif candidates and resume:
        state, run_dir, _ = candidates[-1]
        reasons = fingerprint.differences(state.get("fingerprint", {}))
        shown = "; ".join(reasons[:3]) + (
            f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        )
        say(f"not resuming run {run_dir.name} ({_describe(state)}): {shown}; starting fresh")
    if busy and not chosen:
        say(
            f"run {busy[-1]} with the same settings is still training (another process); this is a separate run"
        )
    for candidate in candidates:
        if candidate is not chosen:
            candidate[2].release()

    if chosen is not None:
        state, run_dir, lock = chosen
        run = Run(run_dir, state, lock, resumed=True)
        run.update(process=process_identity(), status="running")
        return run

    run_dir = runs_dir / _new_key()
    run_dir.mkdir()
    lock = FileLock(run_dir / LOCK).acquire()
    run = Run(run_dir, {}, lock)
    run.update(
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        status="running",
        fingerprint=fingerprint.as_dict(),
        process=process_identity(),
        epochs_done=0,
        max_epochs=max_epochs,
        seconds=0.0,
    )
    return run


# --- publishing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A published output and the name of its staged copy in the run folder."""

    path: Path
    staged_name: str


def stage(run: Run, files: Mapping[str, bytes | str]) -> None:
    """Write the run's outputs (name -> content) completely into its publish/ folder."""
    run.staged.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic_write_bytes(run.staged / name, data)
    _fsync_dir(run.staged)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _copy_into_place(source: Path, target: Path) -> None:
    """Copy source over target atomically (a flushed temp file renamed over it): a publisher
    killed mid-copy leaves target whole, old or new."""
    with source.open("rb") as src, atomic_file(target) as out:
        shutil.copyfileobj(src, out)


def _apply(work_dir: Path, run_dir: Path, targets: Iterable[Target]) -> None:
    for target in targets:
        remove_stale_temps(target.path)  # a killed publisher's half-copied temp files
        _copy_into_place(run_dir / "publish" / target.staged_name, target.path)
    for folder in {t.path.parent for t in targets}:
        _fsync_dir(folder)
    state = read_state(run_dir) or {}
    state |= {"status": "published", "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_json(run_dir / RUN_FILE, state)
    atomic_write_json(
        work_dir / PUBLISHED,
        {
            "run": run_dir.name,
            "mlflow_run_id": state.get("mlflow", {}).get("run_id"),
            "published": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "files": [str(t.path) for t in targets],
        },
    )
    (work_dir / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "publish", ignore_errors=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def _journal_targets(journal: Mapping[str, Any]) -> list[Target]:
    return [Target(Path(path), name) for path, name in journal["files"]]


def recover(work_dir: Path, lock_held: bool = False) -> str | None:
    """Finish a publish a killed process left half done (its journal); returns that run's key."""
    journal_path = work_dir / JOURNAL
    if not journal_path.exists():
        return None
    if not lock_held:
        with FileLock(work_dir / PUBLISH_LOCK).acquire(wait=True):
            return recover(work_dir, lock_held=True)
    try:
        journal = json.loads(journal_path.read_text())
        run_dir = work_dir / RUNS / journal["run"]
        targets = _journal_targets(journal)
    except (OSError, ValueError, KeyError, TypeError):
        journal_path.unlink(missing_ok=True)  # written atomically: unreadable means not ours
        return None
    if not all((run_dir / "publish" / t.staged_name).is_file() for t in targets):
        log.warning(
            "publish journal names run %s but its staged files are gone; dropped", run_dir.name
        )
        journal_path.unlink(missing_ok=True)
        return None
    _apply(work_dir, run_dir, targets)
    log.info("completed the publish of run %s that a killed process had begun", run_dir.name)
    return run_dir.name


def publish(work_dir: Path, run: Run, targets: list[Target]) -> dict[str, Any] | None:
    """Publish the run's staged outputs together; returns the previous publisher's record."""
    with FileLock(work_dir / PUBLISH_LOCK).acquire(wait=True):
        recover(work_dir, lock_held=True)
        try:
            previous = json.loads((work_dir / PUBLISHED).read_text())
        except (OSError, ValueError):
            previous = None
        atomic_write_json(
            work_dir / JOURNAL,
            {"run": run.key, "files": [[str(t.path), t.staged_name] for t in targets]},
        )
        _fsync_dir(work_dir)
        _apply(work_dir, run.dir, targets)
        run.state = read_state(run.dir) or run.state
        return previous
