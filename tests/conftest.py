"""Shared fixtures: the repository root, Hydra composition, a temp copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIT_ID = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
# A small dataset for pipeline tests (48 px: no full-size test sets, so evaluate needs no export).
# .ci/ci-pipeline uses 256-px images of the same generator so its gate covers the full-size section.
CI_DATA = ["--count", "40", "--size", "48", "--seed", "3", "--quiet"]


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without MLflow/DVC/inpaintlab settings (each test decides where runs go), the test's
    venv first on PATH (DVC stages call `python`), a git identity for commits in temp repos."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "INPAINTLAB_"))
    }
    return env | GIT_ID | {"PATH": f"{BIN}{os.pathsep}{env['PATH']}"} | extra


def run_ok(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; fail the test with its output tail unless it succeeds."""
    result = subprocess.run(
        cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def compose_cfg():
    """compose_cfg(*overrides) -> the composed conf/ config, as the stage apps see it."""

    def _compose(*overrides: str):
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            return compose("config", overrides=list(overrides))

    return _compose


def project_files() -> list[str]:
    """Files a fresh clone would have (tracked plus not-yet-committed, minus ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def copy_project(dest: Path) -> Path:
    """Copy the repository to dest as its own git repository (DVC needs one)."""
    for name in project_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def ci_project(dest: Path, env: dict[str, str] | None = None) -> Path:
    """copy_project plus the CI dataset in data/raw, tracked by data.dvc."""
    copy_project(dest)
    run_ok([str(BIN / "inpaintlab"), "data", "synth", "--out", "data/raw", *CI_DATA], dest, env)
    run_ok([str(BIN / "dvc"), "add", "-q", "data/raw"], dest, env)
    return dest


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")
