"""The team server on a real database: `mlflow server` on PostgreSQL with its artifacts in a
shared folder (docs/ci-and-teams.md), and four team members training at once against it.

Each member has their own copy of the project (as on their own machine) and runs
`python -m inpaintlab.train experiment=ci seed=K logger.tracking_uri=http://...`; the four
processes run in parallel, then every run, its full metric history, its validation grids and its
history CSV are read back over HTTP, and found where they should be: the runs in PostgreSQL's
tables, the artifacts in the shared folder. Skipped without PostgreSQL unless
INPAINTLAB_REQUIRE_POSTGRES=1 (what .ci/run sets, after installing Debian's `postgresql`).
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ci_project, clean_env, run_ok
from helpers.mlflow_server import mlflow_server
from helpers.postgres import Postgres, postgres_missing, postgres_server
from mlflow.tracking import MlflowClient
from PIL import Image

pytestmark = pytest.mark.slow

SEEDS = [1, 2, 3, 4]  # one per team member
EPOCHS = 3
METRICS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_psnr"]
IMAGE = re.compile(r"^val_samples\+step\+(\d+)\+.*\.png$")  # MlflowClient.log_image's file names


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if reason := postgres_missing():
        if os.environ.get("INPAINTLAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"INPAINTLAB_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    with postgres_server() as server:
        yield server


def train_cmd(seed: int, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "inpaintlab.train",
        "experiment=ci",
        f"seed={seed}",
        f"trainer.max_epochs={EPOCHS}",
        "trainer.enable_progress_bar=false",
        f"logger.tracking_uri={url}",
        "hydra.run.dir=logs/hydra/train",
    ]


def run_all(cmds: list[list[str]], cwds: list[Path], timeout: float = 900) -> list[str]:
    """Start every command at once (output to <cwd>/train.log, so none waits on a full pipe), wait
    for all; fail with the output of any that did not exit 0 (the others are killed if one hangs)."""
    env = clean_env(OMP_NUM_THREADS="1")
    logs = [cwd / "train.log" for cwd in cwds]
    procs = []
    for cmd, cwd, log in zip(cmds, cwds, logs, strict=True):
        with open(log, "w") as handle:
            procs.append(
                subprocess.Popen(cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
            )
    try:
        for proc in procs:
            proc.wait(timeout=timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outputs = [log.read_text() for log in logs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (
            f"{' '.join(proc.args)} exited {proc.returncode}:\n{output[-3000:]}"
        )
    return outputs


@pytest.fixture(scope="module")
def team(postgres: Postgres, tmp_path_factory) -> Iterator[dict]:
    """A database and role for MLflow, `mlflow server` on it (two worker processes: a database
    server, unlike SQLite, takes writers from several processes), the artifacts proxied to a shared
    folder; four prepared project copies, trained at once against the server."""
    base = tmp_path_factory.mktemp("pgteam")
    db_url = postgres.create_database("mlflow", "mlflow", secrets.token_hex(12))
    shared = base / "shared" / "mlflow-artifacts"
    (base / "server").mkdir()

    first = ci_project(base / "member1")
    run_ok([sys.executable, "-m", "inpaintlab.prepare", "experiment=ci"], first)
    members = [first] + [shutil.copytree(first, base / f"member{k}") for k in SEEDS[1:]]

    with mlflow_server(
        base / "server", db_url, "--artifacts-destination", str(shared), workers=2
    ) as url:
        outputs = run_all([train_cmd(seed, url) for seed in SEEDS], members)
        client = MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name("inpaintlab")
        found = client.search_runs([experiment.experiment_id], max_results=100)
        runs = {int(r.data.params["seed"]): r for r in found}
        yield {
            "url": url,
            "client": client,
            "db_url": db_url,
            "shared": shared,
            "server_dir": base / "server",
            "experiment_id": experiment.experiment_id,
            "members": dict(zip(SEEDS, members, strict=True)),
            "outputs": dict(zip(SEEDS, outputs, strict=True)),
            "found": found,
            "runs": runs,
        }


def history_rows(member: Path) -> list[dict[str, str]]:
    """The member's published plots/train_history.csv."""
    with open(member / "plots/train_history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_four_parallel_trainings_each_finish_one_run(team):
    assert len(team["found"]) == len(SEEDS), [r.info.run_name for r in team["found"]]
    assert sorted(team["runs"]) == SEEDS
    for seed, found in team["runs"].items():
        assert found.info.status == "FINISHED", (seed, found.info.status)
        assert found.info.run_name.startswith(f"unet-32px-s{seed}"), found.info.run_name
        assert found.info.run_id in team["outputs"][seed]  # the run this process published
    # they really ran at the same time: every run started before any of them ended
    starts = [r.info.start_time for r in team["found"]]
    ends = [r.info.end_time for r in team["found"]]
    assert max(starts) < min(ends), (starts, ends)


def test_every_run_has_its_own_full_metric_history(team):
    client = team["client"]
    for seed, found in team["runs"].items():
        rows = history_rows(team["members"][seed])
        assert [int(row["epoch"]) for row in rows] == list(range(EPOCHS))
        for key in METRICS:
            history = sorted(
                client.get_metric_history(found.info.run_id, key), key=lambda m: m.step
            )
            assert [m.step for m in history] == list(range(EPOCHS)), (seed, key)
            # the values this member's training computed, not another member's
            assert [m.value for m in history] == pytest.approx(
                [float(row[key]) for row in rows], rel=1e-12
            ), (seed, key)
    final_psnr = {seed: r.data.metrics["val_psnr"] for seed, r in team["runs"].items()}
    assert len(set(final_psnr.values())) == len(SEEDS), final_psnr  # four different trainings


def test_every_run_has_its_images_and_history_through_the_server(team, tmp_path):
    client = team["client"]
    for seed, found in team["runs"].items():
        run_id = found.info.run_id
        assert found.info.artifact_uri.startswith("mlflow-artifacts:"), found.info.artifact_uri
        steps = sorted(
            int(match.group(1))
            for a in client.list_artifacts(run_id, "images")
            if (match := IMAGE.match(Path(a.path).name))
        )
        assert steps == list(range(EPOCHS)), (seed, steps)  # one validation grid per epoch
        images = [
            a.path
            for a in client.list_artifacts(run_id, "images")
            if IMAGE.match(Path(a.path).name)
        ]
        local = client.download_artifacts(run_id, images[-1], str(tmp_path / str(seed)))
        with Image.open(local) as grid:
            assert grid.width > 0 and grid.height > 0
        history = client.download_artifacts(run_id, "train_history.csv", str(tmp_path / str(seed)))
        member = team["members"][seed]
        assert Path(history).read_bytes() == (member / "plots/train_history.csv").read_bytes()


def test_artifacts_are_in_the_shared_folder_and_nowhere_local(team):
    for seed, found in team["runs"].items():
        folder = team["shared"] / team["experiment_id"] / found.info.run_id / "artifacts"
        member = team["members"][seed]
        assert (folder / "train_history.csv").read_bytes() == (
            member / "plots/train_history.csv"
        ).read_bytes()
        assert len([p for p in (folder / "images").iterdir() if IMAGE.match(p.name)]) == EPOCHS
        for name in ["mlflow.db", "mlartifacts", "mlruns"]:  # no local store on the members' side
            assert not (member / name).exists(), (seed, name)
    server_dir = team["server_dir"]
    assert not list(server_dir.glob("*.db")) and not (server_dir / "mlartifacts").exists()


def test_the_runs_and_metrics_are_rows_in_postgresql(team):
    import psycopg

    with psycopg.connect(team["db_url"]) as connection:
        rows = connection.execute("SELECT run_uuid, status, experiment_id FROM runs").fetchall()
        expected = {r.info.run_id: ("FINISHED", team["experiment_id"]) for r in team["found"]}
        assert {run_uuid: (status, str(exp)) for run_uuid, status, exp in rows} == expected
        for found in team["found"]:
            steps = connection.execute(
                "SELECT step FROM metrics WHERE run_uuid = %s AND key = 'val_psnr' ORDER BY step",
                (found.info.run_id,),
            ).fetchall()
            assert [step for (step,) in steps] == list(range(EPOCHS))
