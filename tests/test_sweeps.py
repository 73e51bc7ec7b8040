"""Hydra sweeps: every job its own MLflow run under one parent run per sweep, outputs in the job
dirs; the configs for parallel sweeps and hyperparameter searches compose.

The end-to-end tests run real multiruns (`python -m inpaintlab.train -m experiment=ci ...`) on a
tiny prepared dataset in a temp copy of the project and read the runs back with MlflowClient.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import ROOT, ci_project, clean_env, run_ok
from helpers.sweeps import check_sweep
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from inpaintlab import tracking
from inpaintlab.processes import available_cpus


def run(cmd: list[str], cwd: Path, omp: str | None = "1") -> str:
    """Run with the test's venv, no inherited MLflow settings, one torch thread per process unless
    told otherwise (the machine is shared; these tiny models train faster single-threaded)."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(("OMP_", "MKL_"))}
    return run_ok(cmd, cwd, env | ({"OMP_NUM_THREADS": omp} if omp else {}))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A project copy with 40 tiny images prepared at experiment=ci."""
    project = ci_project(tmp_path_factory.mktemp("sweeps") / "project")
    run([sys.executable, "-m", "inpaintlab.prepare", "experiment=ci"], project)
    return project


SINGLE_RUN_OUTPUTS = ["models/model.ckpt", "metrics/train.json", "plots/train_history.csv"]


def snapshot(project: Path) -> dict[str, bytes | None]:
    return {
        n: (project / n).read_bytes() if (project / n).exists() else None
        for n in SINGLE_RUN_OUTPUTS
    }


def test_multirun_logs_each_job_as_a_child_run_and_writes_into_job_dirs(prepared):
    before = snapshot(prepared)
    run(
        [
            sys.executable,
            "-m",
            "inpaintlab.train",
            "-m",
            "experiment=ci",
            "seed=1,2",
            "trainer.enable_progress_bar=false",
        ],
        prepared,
    )
    check_sweep(f"sqlite:///{prepared / 'mlflow.db'}", [1, 2])
    # the single-run (DVC) outputs, some committed, stay exactly as they were
    assert snapshot(prepared) == before


def test_joblib_multirun_runs_in_parallel_on_a_fresh_store(prepared, tmp_path):
    db = tmp_path / "fresh.db"  # a fresh SQLite file: jobs must not race creating its tables
    out = run(
        [
            sys.executable,
            "-m",
            "inpaintlab.train",
            "-m",
            "hydra/launcher=parallel",
            "experiment=ci",
            "seed=3,4",
            f"logger.tracking_uri=sqlite:///{db}",
            "trainer.enable_progress_bar=false",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        prepared,
        omp=None,
    )
    assert "Joblib.Parallel(n_jobs=2" in out
    parent, children = check_sweep(f"sqlite:///{db}", [3, 4])
    assert parent.data.tags["launcher"] == "parallel"
    threads = max(1, available_cpus() // 2)  # the CPUs shared by the 2 jobs
    for job in ["0", "1"]:
        assert (
            f"torch threads: {threads} (OMP_NUM_THREADS={threads})"
            in (tmp_path / "sweep" / job / "train.log").read_text()
        )


# --- units: names, threads, configs ---------------------------------------------------------------


def test_run_name_shows_what_varies_between_jobs():
    sweep = ["experiment=ci", "seed=1,2", "trainer.enable_progress_bar=false"]
    job = [
        "experiment=ci",
        "seed=2",
        "trainer.enable_progress_bar=False",
    ]  # basic sweeper rewrites bools
    assert tracking.varying_overrides(job, sweep) == ["seed=2"]
    optuna = ["optim.lr=0.0022694720080878735", "loss.hole_l2=1.0", "hparams_search=psnr_optuna"]
    assert tracking.varying_overrides(optuna, ["hparams_search=psnr_optuna"]) == optuna[:2]
    cfg = OmegaConf.create(
        {
            "logger": {"run_name": None},
            "model": {"name": "unet"},
            "data": {"image_size": 32},
            "seed": 2,
        }
    )
    info = tracking.JobInfo(multirun=True, overrides=optuna)
    parent = tracking.SweepParent("id", "sweep", "uri", "0", ["hparams_search=psnr_optuna"])
    assert tracking.run_name(cfg, info, parent) == "unet-32px-s2 optim.lr=0.002269 loss.hole_l2=1.0"


def test_threads_are_shared_among_parallel_jobs(monkeypatch):
    monkeypatch.setattr(tracking.jobs, "available_cpus", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert tracking.threads_per_job(None) == 8
    assert (
        tracking.threads_per_job(
            {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
        )
        == 8
    )
    assert tracking.threads_per_job({"_target_": joblib, "n_jobs": 2}) == 4
    assert tracking.threads_per_job({"_target_": joblib, "n_jobs": -1}) == 1  # joblib: all CPUs
    assert tracking.threads_per_job({"_target_": joblib, "n_jobs": 16}) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert tracking.threads_per_job({"_target_": joblib, "n_jobs": 2}) == 2


def test_mask_tag_without_hydra_choices(compose_cfg):
    """DVC runs on params.yaml, which has no defaults list: name the mask from its sampler."""
    for option in ["mixed", "box", "irregular", "outpaint"]:
        cfg = compose_cfg(f"mask={option}")
        assert tracking.mask_name(cfg, {}) == option
    assert tracking.mask_name(compose_cfg(), {"mask": "box"}) == "box"


def hydra_cfg(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_search_and_launcher_configs_compose():
    grid = hydra_cfg("hparams_search=psnr_grid")
    assert grid.hydra.mode.name == "MULTIRUN" and "optim.generator.lr" in grid.hydra.sweeper.params
    optuna = hydra_cfg("hparams_search=psnr_optuna")
    assert (
        "optuna" in optuna.hydra.sweeper._target_ and optuna.hydra.sweeper.direction == "maximize"
    )
    assert set(optuna.hydra.sweeper.params) == {
        "optim.generator.lr",
        "model.generator.base_channels",
        "loss.valid_l1",
        "loss.hole_l2",
        "loss.gradient",
    }
    parallel = hydra_cfg("hydra/launcher=parallel")
    assert "joblib" in parallel.hydra.launcher._target_ and parallel.hydra.launcher.n_jobs == 2
    callbacks = hydra_cfg().hydra.callbacks
    assert callbacks.mlflow_sweep._target_ == "inpaintlab.tracking.SweepCallback"
