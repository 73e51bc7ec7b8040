"""MLflow plumbing: one place decides the tracking URI, the experiment and the run's tags."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DEFAULT_DB = "mlflow.db"


def tracking_uri(configured: str | None = None, root: str | Path = ".") -> str:
    """Config value, else $MLFLOW_TRACKING_URI, else sqlite:///<root>/mlflow.db (absolute path,
    so a run started from another working directory still lands in the project's store)."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path(root).resolve() / DEFAULT_DB).as_posix()}"


def artifact_location(uri: str, root: str | Path = ".") -> str | None:
    """Artifacts beside a local SQLite store (mlartifacts/); a server decides for itself."""
    if uri.startswith("sqlite:"):
        return (Path(root).resolve() / "mlartifacts").as_uri()
    return None


def ensure_experiment(name: str, uri: str, root: str | Path = ".") -> str:
    """Create the store and experiment if missing and return its id.

    Done once before a run (or a parallel sweep) starts: parallel jobs racing to create the
    SQLite tables or the same experiment is a known failure, so a lost race is retried as a lookup.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for _ in range(5):
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(name, artifact_location=artifact_location(uri, root))
        except MlflowException:
            continue  # another job created it first
    raise RuntimeError(f"could not create or find MLflow experiment {name!r} at {uri}")


def git_commit(root: str | Path = ".") -> str:
    """Current commit (with -dirty), or 'unknown' outside git."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_version(root: str | Path = ".") -> str:
    """The md5 recorded in data.dvc: which data the run trained on."""
    path = Path(root) / "data.dvc"
    if not path.exists():
        return "untracked"
    for line in path.read_text().splitlines():
        if line.strip().startswith("- md5:") or line.strip().startswith("md5:"):
            return line.split(":", 1)[1].strip()
    return "unknown"
