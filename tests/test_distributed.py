"""Data-parallel training (trainer=ddp, distributed.py) for real: two gloo processes on this CPU,
started by Lightning's launcher, by torchrun and by `dvc exp run`; a sweep of DDP jobs; SIGTERM
and resume. Rank 0 alone logs and publishes: one MLflow run, one run folder, one checkpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIN, ci_project, clean_env, run_ok
from mlflow.tracking import MlflowClient

from inpaintlab.checkpoints import load_checkpoint

pytestmark = pytest.mark.slow
ENV = clean_env(OMP_NUM_THREADS="1")
DDP = ["experiment=ci", "trainer=ddp", "trainer.devices=2", "datamodule.batch_size=4"]


def train(project: Path, *overrides: str, launcher: list[str] | None = None) -> str:
    cmd = [*(launcher or [sys.executable]), "-m", "inpaintlab.train", *overrides]
    return run_ok(cmd, project, ENV)


def store(project: Path, name: str) -> tuple[str, MlflowClient]:
    uri = f"sqlite:///{project / name}"
    return uri, MlflowClient(tracking_uri=uri)


def all_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("inpaintlab")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def train_json(project: Path) -> dict:
    return json.loads((project / "metrics/train.json").read_text())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    path = ci_project(tmp_path_factory.mktemp("ddp") / "project", ENV)
    run_ok([sys.executable, "-m", "inpaintlab.prepare", "experiment=ci"], path, ENV)
    return path


def hydra_dirs(project: Path) -> set[Path]:
    """Folders under logs/ other than the training runs' (Hydra's run and sweep dirs)."""
    train_dir = project / "logs/train"
    return {
        p for p in (project / "logs").rglob("*") if p.is_dir() and train_dir not in (p, *p.parents)
    }


def test_two_processes_make_one_run_close_to_one_process_with_the_same_global_batch(project):
    uri, client = store(project, "ddp.db")
    before = hydra_dirs(project)
    out = train(project, *DDP, f"logger.tracking_uri={uri}", "hydra.run.dir=logs/h/ddp")
    assert "GLOBAL_RANK: 1" in out  # Lightning started a second process
    assert out.count(" dB after ") == 1  # rank 0 reports, rank 1 does not
    ddp = train_json(project)
    runs = all_runs(client)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = client.get_metric_history(runs[0].info.run_id, "val_psnr")
    assert sorted(m.step for m in history) == [0, 1]
    checkpoint = load_checkpoint(project / "models/model.ckpt")
    assert checkpoint["inpaintlab"]["mlflow_run_id"] == runs[0].info.run_id
    assert len(list((project / "logs/train/runs").iterdir())) == 1
    assert not list((project / "logs/train").glob("launch/*.json"))
    assert {p.name for p in hydra_dirs(project) - before} == {"h", "ddp", ".hydra"}  # one dir

    uri1, client1 = store(project, "single.db")
    train(project, "experiment=ci", "datamodule.batch_size=8", f"logger.tracking_uri={uri1}")
    single = train_json(project)
    # The same 800 crops per epoch (each fixed by seed, epoch and index) in other batches.
    assert ddp["epochs"] == single["epochs"]
    assert abs(ddp["best_val_psnr"] - single["best_val_psnr"]) < 1.0, (ddp, single)


def test_torchrun_gives_the_same_training_as_lightnings_launcher(project):
    uri, client = store(project, "torchrun.db")
    launcher = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2"]
    train(project, *DDP, f"logger.tracking_uri={uri}", launcher=launcher)
    by_torchrun = train_json(project)
    assert len(all_runs(client)) == 1
    assert not list((project / "logs/train").glob("launch/*.json"))
    uri2, _ = store(project, "lightning.db")
    train(project, *DDP, f"logger.tracking_uri={uri2}")
    assert train_json(project) == by_torchrun  # deterministic, whoever starts the ranks


def test_sweep_of_ddp_jobs_creates_no_extra_runs_or_folders(project):
    uri, client = store(project, "sweep.db")
    sweep_dir = project / "logs/ddp-sweep"
    before = hydra_dirs(project)
    train(
        project, "-m", *DDP, "seed=1,2", f"logger.tracking_uri={uri}",
        f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    runs = all_runs(client)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2, [r.info.run_name for r in runs]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    new = {p for p in hydra_dirs(project) - before if sweep_dir not in (p, *p.parents)}
    assert not new  # no rank started a run or a sweep of its own
    for job in ("0", "1"):
        assert (sweep_dir / job / "models/model.ckpt").is_file()


def test_dvc_exp_run_trains_data_parallel(project):
    run_ok(["git", "add", "-A"], project, ENV)
    run_ok(["git", "commit", "-qm", "project"], project, ENV)
    overrides = [x for o in DDP for x in ("-S", o)]
    out = run_ok([str(BIN / "dvc"), "exp", "run", *overrides], project, ENV)
    assert "GLOBAL_RANK: 1" in out
    params = json.loads(
        run_ok([str(BIN / "dvc"), "exp", "show", "--json"], project, ENV)
    )  # the experiment recorded the DDP trainer
    assert "DDPStrategy" in json.dumps(params)
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    dvc_runs = [r for r in all_runs(client) if r.data.tags.get("dvc_exp")]
    assert len(dvc_runs) == 1 and dvc_runs[0].info.status == "FINISHED"


def test_sigterm_stops_both_ranks_and_the_same_command_resumes(project, tmp_path):
    uri, client = store(project, "resume.db")
    cmd = [
        sys.executable, "-m", "inpaintlab.train", *DDP, "trainer.max_epochs=6",
        f"logger.tracking_uri={uri}", f"hydra.run.dir={tmp_path / 'h'}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=project, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    runs_dir = project / "logs/train/runs"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        states = [json.loads(p.read_text()) for p in runs_dir.glob("*/run.json")]
        if any(s.get("epochs_done", 0) >= 1 and s.get("status") == "running" for s in states):
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)  # as a scheduler or Ctrl-C would: every rank
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:]
    assert "training interrupted by SIGTERM" in out
    assert not re.search(r"Traceback", out), out[-3000:]
    (run,) = all_runs(client)
    assert run.info.status == "KILLED"

    out = run_ok(cmd, project, ENV)
    assert "resuming from epoch" in out
    (resumed,) = all_runs(client)
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_psnr")]
    assert sorted(set(steps)) == list(range(6))
    assert train_json(project)["epochs"] == 6
