"""Which code and which data a run used: the git commit and the data version recorded by DVC,
tagged on every run so two runs' results can be told apart by what they trained on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml


def git_commit(root: str | Path = ".") -> str:
    """Current commit (with -dirty), or 'unknown' outside git."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_version(root: str | Path = ".") -> str:
    """The md5 of data/raw that `dvc add` recorded in data.dvc (`outs[0].md5`, a `<hash>.dir` for a
    folder): which data the run trained on. 'untracked' without data.dvc, 'unknown' when it does
    not say."""
    path = Path(root) / "data.dvc"
    if not path.exists():
        return "untracked"
    try:
        record = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return "unknown"
    outs = record.get("outs") if isinstance(record, dict) else None
    first = outs[0] if isinstance(outs, list) and outs else None
    md5 = first.get("md5") if isinstance(first, dict) else None
    return str(md5) if md5 else "unknown"
