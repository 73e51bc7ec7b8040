"""Same config and seed, same metrics: two bf16 training runs of experiment=ci agree exactly."""

from __future__ import annotations

import json
import sys

from conftest import ci_project, clean_env, run_ok


def test_two_trainings_with_the_same_seed_give_identical_metrics(tmp_path):
    project = ci_project(tmp_path / "project")
    env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    app = [sys.executable, "-m"]
    run_ok([*app, "inpaintlab.prepare", "experiment=ci"], project, env)
    runs = []
    for seed in (42, 42, 7):
        run_ok([*app, "inpaintlab.train", "experiment=ci", f"seed={seed}"], project, env)
        runs.append(json.loads((project / "metrics" / "train.json").read_text()))
        history = (project / "plots" / "train_history.csv").read_text()
        runs[-1]["history"] = history
    assert runs[0] == runs[1]  # every logged figure, every epoch
    assert runs[0]["history"] != runs[2]["history"]  # and the seed does matter
    assert runs[0]["final"]["val_psnr"] > 0
