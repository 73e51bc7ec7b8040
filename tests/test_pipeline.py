"""End to end: the four stages through a real `dvc repro` (experiment=ci) in a temp copy,
then the MLflow run read back with MlflowClient from the real SQLite store."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import BIN, ci_project, run_ok
from mlflow.tracking import MlflowClient

from inpaintlab.export import fill_stencils

run = run_ok


def ran_stages(output: str) -> set[str]:
    return {
        name
        for name in ("prepare", "train", "evaluate", "export")
        if f"Running stage '{name}'" in output
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    """One real pipeline run shared by the assertions below (it is the slow part)."""
    project = ci_project(tmp_path_factory.mktemp("e2e") / "project")
    run([sys.executable, "-m", "inpaintlab.params", "experiment=ci"], project)
    first = run([str(BIN / "dvc"), "repro"], project)
    return {"project": project, "first": first}


def test_repro_runs_all_four_stages_and_writes_the_contract_files(pipeline):
    project = pipeline["project"]
    assert ran_stages(pipeline["first"]) == {"prepare", "train", "evaluate", "export"}
    for name in [
        "data/prepared/manifest.json",
        "models/model.ckpt",
        "metrics/train.json",
        "plots/train_history.csv",
        "reports/samples.png",
        "models/export/model.onnx",
        "models/export/model.pt",
        "models/export/export.json",
    ]:
        assert (project / name).is_file(), name
    manifest = json.loads((project / "data/prepared/manifest.json").read_text())
    assert sum(manifest["counts"].values()) == 40 and manifest["skipped"] == []

    with open(project / "plots/train_history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "val_psnr",
    ]


def test_the_published_model_keeps_the_share_of_its_correction_chosen_on_val(pipeline):
    """train.json names the share calibration chose and the val PSNR it gives; the published
    checkpoint's generator holds that share (evaluate and export then apply it)."""
    import torch

    project = pipeline["project"]
    summary = json.loads((project / "metrics/train.json").read_text())
    scale = summary["correction_scale"]
    assert 0.0 <= scale <= 1.0
    assert set(summary["val_psnr_by_size"]) == {"32"}  # the CI photos are too small for 256 px
    by_size = summary["val_psnr_by_size"]["32"]
    assert by_size["model"] >= by_size["fill"]  # the share 0 (the fill) was a candidate
    state = torch.load(project / "models/model.ckpt", weights_only=True)["state_dict"]
    assert float(state["generator.correction_scale"]) == scale


def test_eval_json_follows_the_design_schema(pipeline):
    metrics = json.loads((pipeline["project"] / "metrics/eval.json").read_text())
    assert set(metrics) == {"model", "baselines"}  # 48-px test photos: no full-size section
    assert set(metrics["baselines"]) == {"telea", "ns", "fsr", "biharmonic", "patchmatch"}
    for scores in [metrics["model"], *metrics["baselines"].values()]:
        assert {"box", "irregular", "outpaint", "all"} <= set(scores)
        bins = scores.pop("area_bins")
        assert sum(m["n"] for m in bins.values()) == scores["all"]["n"]  # bins partition the images
        for m in [*scores.values(), *bins.values()]:
            assert set(m) - {"ms"} == {"psnr_masked", "ssim", "l1_masked", "accuracy", "n"}
            assert 0 <= m["ssim"] <= 1 and 0 <= m["accuracy"] <= 1 and 0 <= m["l1_masked"] <= 1
    assert metrics["model"]["all"]["n"] == 3 * metrics["model"]["box"]["n"]
    assert metrics["model"]["box"]["ms"] > 0 and metrics["baselines"]["fsr"]["all"]["ms"] > 0


def test_export_matches_the_contract_and_the_checkpoint(pipeline):
    export_dir = pipeline["project"] / "models/export"
    info = json.loads((export_dir / "export.json").read_text())
    assert info["image_size"] == 32 and info["model"] == "unet"
    assert info["parity"]["onnx_vs_ckpt"] < 1e-4 and info["parity"]["torchscript_vs_ckpt"] < 1e-4
    session = ort.InferenceSession(
        str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == ["image", "mask"]
    assert [o.name for o in session.get_outputs()] == ["output"]
    rng = np.random.default_rng(0)
    for n, h, w in [(1, 32, 32), (3, 40, 56)]:  # dynamic N, H, W
        image = rng.random((n, 3, h, w), dtype=np.float32)
        mask = np.zeros((n, 1, h, w), np.float32)
        mask[..., 8:24, 8:24] = 1
        out = session.run(["output"], {"image": image, "mask": mask})[0]
        assert out.shape == image.shape
        assert np.array_equal(out * (1 - mask), image * (1 - mask))  # composited


def test_int8_export_is_smaller_composites_exactly_and_reports_its_cost(pipeline):
    project = pipeline["project"]
    out = project / "models/export_int8"
    run(
        [
            sys.executable,
            "-m",
            "inpaintlab.export",
            "experiment=ci",
            "export.int8=true",
            f"export.out_dir={out}",
            "export.register=false",
        ],
        project,
    )
    info = json.loads((out / "export.json").read_text())["int8"]
    assert 0 < info["max_abs_diff"] < 0.25
    assert abs(info["psnr_masked_int8"] - info["psnr_masked_float"]) < 1.0
    assert (out / "model.int8.onnx").stat().st_size < 0.6 * (out / "model.onnx").stat().st_size
    assert not (out / "model.int8-pre.onnx").exists()
    # the network's convolutions are quantised, the fill's stencils stay float (and exact)
    stencils = len(fill_stencils(onnx.load(str(out / "model.onnx"))))
    assert stencils > 0 and len(fill_stencils(onnx.load(str(out / "model.int8.onnx")))) == stencils
    session = ort.InferenceSession(str(out / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(str(out / "model.int8.onnx")).graph.node}
    assert "DequantizeLinear" in ops
    image = np.random.default_rng(1).random((2, 3, 40, 48), dtype=np.float32)  # dynamic N, H, W
    mask = np.zeros((2, 1, 40, 48), np.float32)
    mask[..., 8:24, 16:40] = 1
    output = session.run(["output"], {"image": image, "mask": mask})[0]
    assert np.array_equal(output * (1 - mask), image * (1 - mask))  # known pixels exact


def test_mlflow_run_has_params_epoch_metrics_images_and_test_metrics(pipeline):
    project = pipeline["project"]
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("inpaintlab")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run_data = runs[0]
    assert run_data.data.params["seed"] == "42"
    assert run_data.data.params["model/name"] == "unet"
    assert run_data.data.tags["model"] == "unet"
    for key in ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_psnr"]:
        assert [m.step for m in client.get_metric_history(run_data.info.run_id, key)] == [0, 1], key
    assert "test_box_psnr_masked" in run_data.data.metrics
    images = [a.path for a in client.list_artifacts(run_data.info.run_id, "images")]
    assert any("val_samples" in path for path in images), images


def test_export_registers_the_onnx_model_under_the_training_run(pipeline):
    """export.register: model.onnx is a version of `inpaintlab` in the MLflow model registry,
    logged to the training run, with a signature and an input example it predicts on."""
    import mlflow
    import torch
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    project = pipeline["project"]
    uri = f"sqlite:///{project / 'mlflow.db'}"
    checkpoint = torch.load(project / "models/model.ckpt", map_location="cpu", weights_only=True)
    run_id = checkpoint["inpaintlab"]["mlflow_run_id"]
    [version] = MlflowClient(tracking_uri=uri).search_model_versions("name='inpaintlab'")
    assert version.run_id == run_id
    assert f"registered MLflow model 'inpaintlab' version {version.version}" in pipeline["first"]

    with _use_tracking_uri(uri):
        onnx_model = mlflow.onnx.load_model(f"models:/inpaintlab/{version.version}")
        pyfunc = mlflow.pyfunc.load_model(f"models:/inpaintlab/{version.version}")
    assert [i.name for i in onnx_model.graph.input] == ["image", "mask"]
    assert pyfunc.metadata.get_input_schema().input_names() == ["image", "mask"]
    example = pyfunc.input_example
    assert example["image"].shape == (1, 3, 32, 32) and example["mask"].any()
    output = pyfunc.predict(example)["output"]
    session = ort.InferenceSession(
        str(project / "models/export/model.onnx"), providers=["CPUExecutionProvider"]
    )
    feed = {k: np.asarray(v, np.float32) for k, v in example.items()}
    np.testing.assert_allclose(
        output, session.run(["output"], feed)[0], atol=1e-6
    )  # the exported file
    keep = 1 - example["mask"]
    assert np.array_equal(output * keep, example["image"] * keep)  # composited


def test_second_repro_runs_nothing_and_a_training_change_skips_prepare(pipeline):
    project = pipeline["project"]
    assert ran_stages(run([str(BIN / "dvc"), "repro"], project)) == set()
    run(
        [sys.executable, "-m", "inpaintlab.params", "experiment=ci", "trainer.max_epochs=1"],
        project,
    )
    assert ran_stages(run([str(BIN / "dvc"), "repro"], project)) == {"train", "evaluate", "export"}
    shown = run([str(BIN / "dvc"), "metrics", "show"], project)
    assert "metrics/eval.json" in shown and "best_val_psnr" in shown, shown
    run([str(BIN / "dvc"), "plots", "show", "-o", str(project / "plots_html")], project)
    assert (project / "plots_html" / "index.html").is_file()
