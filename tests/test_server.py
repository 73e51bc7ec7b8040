"""For teams: the ci pipeline against a real `mlflow server` (runs, metrics, images and the model
registry over HTTP, artifacts proxied to --artifacts-destination), and the data and pipeline
outputs shared through a DVC remote (a local folder stands in for S3 or a shared drive).
See docs/ci-and-teams.md."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import numpy as np
import pytest
from conftest import BIN, ci_project, clean_env, run_ok
from helpers.mlflow_server import mlflow_server
from mlflow.tracking import MlflowClient
from PIL import Image

pytestmark = pytest.mark.slow


run = run_ok


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> dict:
    """An `mlflow server` (SQLite backend, proxied artifacts) and a ci `dvc repro` that tracks into
    it through MLFLOW_TRACKING_URI, as a team member's machine would."""
    base = tmp_path_factory.mktemp("team")
    (base / "server").mkdir()
    with mlflow_server(
        base / "server",
        f"sqlite:///{base / 'server' / 'srv.db'}",
        "--artifacts-destination",
        str(base / "server" / "art"),
    ) as url:
        env = clean_env(MLFLOW_TRACKING_URI=url)
        project = ci_project(base / "project", env)
        run([sys.executable, "-m", "inpaintlab.params", "experiment=ci"], project, env)
        output = run([str(BIN / "dvc"), "repro"], project, env)
        yield {"url": url, "base": base, "project": project, "env": env, "output": output}


def training_run(client: MlflowClient):
    experiment = client.get_experiment_by_name("inpaintlab")
    [found] = client.search_runs([experiment.experiment_id])
    return found


def test_the_run_reads_back_over_http_with_metrics_and_images(team, tmp_path):
    client = MlflowClient(tracking_uri=team["url"])
    found = training_run(client)
    run_id = found.info.run_id
    assert found.info.run_name.startswith("unet-32px-s42") and found.info.status == "FINISHED"
    assert found.data.params["seed"] == "42" and found.data.tags["model"] == "unet"
    for key in ["train_loss", "val_loss", "val_psnr", "val_accuracy"]:
        assert [m.step for m in client.get_metric_history(run_id, key)] == [0, 1], key
    assert "test_box_psnr_masked" in found.data.metrics  # evaluate logged into the same run

    # artifacts went through the server to --artifacts-destination, not to a local store
    assert found.info.artifact_uri.startswith("mlflow-artifacts:")
    assert (
        not (team["project"] / "mlflow.db").exists()
        and not (team["project"] / "mlartifacts").exists()
    )
    images = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
    assert len(images) == 2, images  # one validation grid per epoch
    local = client.download_artifacts(run_id, images[-1], str(tmp_path))
    with Image.open(local) as grid:
        assert grid.width > 0 and grid.height > 0
    assert list((team["base"] / "server" / "art").rglob(Path(images[-1]).name))
    evaluation = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert evaluation == {"evaluation/eval.json", "evaluation/samples.png"}


def test_export_registers_the_model_on_the_server(team):
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    client = MlflowClient(tracking_uri=team["url"])
    [version] = client.search_model_versions("name='inpaintlab'")
    assert version.run_id == training_run(client).info.run_id
    with _use_tracking_uri(team["url"]):
        model = mlflow.pyfunc.load_model(f"models:/inpaintlab/{version.version}")
    example = model.input_example
    output = model.predict(example)["output"]
    assert output.shape == np.asarray(example["image"]).shape


def test_dvc_remote_push_and_pull_restore_data_and_outputs(team, tmp_path):
    project, env = team["project"], team["env"]
    store = tmp_path / "dvc-store"
    run([str(BIN / "dvc"), "remote", "add", "-d", "local", str(store)], project, env)
    run([str(BIN / "dvc"), "push"], project, env)
    assert any(store.rglob("*")), "dvc push wrote nothing"

    before = {
        name: (project / name).read_bytes()
        for name in ["models/model.ckpt", "models/export/model.onnx"]
    }
    raw_count = len(list((project / "data/raw").iterdir()))
    for name in [
        ".dvc/cache",
        "data/raw",
        "data/prepared",
        "models",
    ]:  # another machine: no cache, no data
        shutil.rmtree(project / name)
    run([str(BIN / "dvc"), "pull"], project, env)

    assert len(list((project / "data/raw").iterdir())) == raw_count
    assert json.loads((project / "data/prepared/manifest.json").read_text())["skipped"] == []
    for name, data in before.items():
        assert (project / name).read_bytes() == data, name
    status = run([str(BIN / "dvc"), "status"], project, env)
    assert "up to date" in status, status  # nothing to recompute after a pull


# --- authentication: the team server with MLflow's basic-auth app --------------------------------

ADMIN = ("admin", "Admin-" + secrets.token_hex(8))
ALICE = ("alice", "Alice-" + secrets.token_hex(8))


def status_of(url: str, credentials: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if credentials:
        token = b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_basic_auth_server_refuses_anonymous_requests_and_serves_an_authenticated_pipeline(
    tmp_path, monkeypatch
):
    """`mlflow server --app-name basic-auth` as docs/ci-and-teams.md sets it up: an anonymous
    request and a wrong password get 401; the admin creates a user, and the ci pipeline run as
    that user (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) trains, evaluates and
    registers its model on the server."""
    server = tmp_path / "server"
    server.mkdir()
    config = server / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{server / 'auth.db'}\n"
        f"admin_username = {ADMIN[0]}\n"
        f"admin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    auth_env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    }
    with mlflow_server(
        server,
        f"sqlite:///{server / 'srv.db'}",
        "--app-name",
        "basic-auth",
        "--artifacts-destination",
        str(server / "art"),
        env=auth_env,
    ) as url:
        search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
        assert status_of(search) == 401
        assert status_of(search, (ALICE[0], "wrong")) == 401
        assert status_of(search, ADMIN) == 200

        from mlflow.server import get_app_client

        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        get_app_client("basic-auth", tracking_uri=url).create_user(*ALICE)
        assert status_of(search, ALICE) == 200

        env = clean_env(
            MLFLOW_TRACKING_URI=url,
            MLFLOW_TRACKING_USERNAME=ALICE[0],
            MLFLOW_TRACKING_PASSWORD=ALICE[1],
        )
        project = ci_project(tmp_path / "project", env)
        run([sys.executable, "-m", "inpaintlab.params", "experiment=ci"], project, env)
        output = run([str(BIN / "dvc"), "repro"], project, env)
        assert "registered MLflow model 'inpaintlab' version 1" in output

        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ALICE[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ALICE[1])
        client = MlflowClient(tracking_uri=url)
        found = training_run(client)
        assert found.info.status == "FINISHED" and "test_box_psnr_masked" in found.data.metrics
        [version] = client.search_model_versions("name='inpaintlab'")
        assert version.run_id == found.info.run_id
