"""export stage: models/model.ckpt -> models/export/{model.onnx, model.pt, export.json}.

Both artifacts take `image` [N,3,H,W] and `mask` [N,1,H,W] (float32, 1 = generate) and return
`output` [N,3,H,W], already composited; N, H, W are dynamic (H, W multiples of 8). Parity with the
checkpoint is measured on real test images with onnxruntime and TorchScript, and enforced.
With `export.int8`, `model.int8.onnx` is written too: the convolutions quantised to int8 by
onnxruntime (static, per-channel, calibrated on the same test images); its difference from the
checkpoint and its masked PSNR next to the float model's go to export.json (measured, not enforced).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import numpy as np
import onnx
import onnxruntime as ort
import torch
from omegaconf import DictConfig

from inpaintlab import metrics, tracking
from inpaintlab.checkpoints import load_generator
from inpaintlab.errors import UserError, stage
from inpaintlab.evaluate import load_test_set
from inpaintlab.files import atomic_dir, atomic_write_json
from inpaintlab.models.fills import STENCILS

if TYPE_CHECKING:
    from mlflow.models.signature import ModelSignature

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 8
REGISTERED_MODEL = "inpaintlab"
EXAMPLE_MAX_SIDE = 64  # the input example is stored as JSON next to the model: keep it small


def export_onnx(
    generator: torch.nn.Module,
    path: Path,
    example: tuple[torch.Tensor, torch.Tensor],
    opset: int,
    metadata: dict[str, str],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            generator,
            example,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["image", "mask"],
            output_names=["output"],
            dynamic_axes={
                "image": {0: "N", 2: "H", 3: "W"},
                "mask": {0: "N", 2: "H", 3: "W"},
                "output": {0: "N", 2: "H", 3: "W"},
            },
        )
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_torchscript(
    generator: torch.nn.Module,
    path: Path,
    example: tuple[torch.Tensor, torch.Tensor],
    metadata: dict[str, str],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(generator, example, check_trace=False)
    traced.save(str(path), _extra_files={f"{k}.txt": v for k, v in metadata.items()})


def parity_inputs(prepared_dir: Path, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Test images, each with a mask of a different family, plus a non-square crop for dynamic H/W."""
    images, family_masks = load_test_set(prepared_dir)
    families = list(family_masks)
    n = min(count, len(images))
    masks = torch.stack(
        [
            torch.from_numpy(family_masks[families[i % len(families)]][i].astype(np.float32))[None]
            for i in range(n)
        ]
    )
    return images[:n], masks


def export_int8(onnx_path: Path, out_path: Path, images: torch.Tensor, masks: torch.Tensor) -> None:
    """Quantise the convolutions to int8 (QDQ, per-channel weights, uint8 activations), the
    rest stays float32 (so compositing still passes the known pixels through exactly)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = iter(
        [
            {"image": images[i : i + 1].numpy(), "mask": masks[i : i + 1].numpy()}
            for i in range(len(images))
        ]
    )

    class TestImages(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(feeds, None)

    prepared = out_path.with_name("model.int8-pre.onnx")
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(out_path),
        TestImages(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=fill_stencils(onnx.load(str(prepared))),
    )
    prepared.unlink()


def fill_stencils(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv nodes that are the fills' stencils (models/fills.py STENCILS: the
    neighbour mean, the Laplacian): the fill is not the network's to quantise; hundreds of
    sweeps on 8-bit activations would drift."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    stencils = [kernel.numpy()[0, 0] for kernel in STENCILS]
    names = []
    for node in model.graph.node:
        weight = constants.get(node.input[1]) if node.op_type == "Conv" else None
        if (
            weight is not None
            and weight.ndim == 4
            and weight.shape[1:] == (1, 3, 3)
            and any(np.array_equal(weight, np.broadcast_to(k, weight.shape)) for k in stencils)
        ):
            names.append(node.name)
    return names


@torch.no_grad()
def int8_report(
    generator: torch.nn.Module, int8_path: Path, images: torch.Tensor, masks: torch.Tensor
) -> dict[str, float]:
    """How far the int8 model is from the checkpoint, and what it costs in masked PSNR."""
    session = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    reference = generator(images, masks)
    quantised = torch.from_numpy(
        session.run(["output"], {"image": images.numpy(), "mask": masks.numpy()})[0]
    )
    psnr = lambda out: float(metrics.psnr_masked(out.clamp(0, 1), images, masks).mean())  # noqa: E731
    return {
        "max_abs_diff": float(f"{max_abs_diff(quantised.numpy(), reference.numpy()):.3g}"),
        "psnr_masked_float": round(psnr(reference), 4),
        "psnr_masked_int8": round(psnr(quantised), 4),
    }


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@torch.no_grad()
def check_parity(
    generator: torch.nn.Module,
    onnx_path: Path,
    ts_path: Path,
    images: torch.Tensor,
    masks: torch.Tensor,
) -> dict[str, float]:
    """Max abs difference on the full batch and on a non-square crop (exercises dynamic H, W)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(ts_path))
    rows = (3 * images.shape[-2] // 4) // SIZE_MULTIPLE * SIZE_MULTIPLE  # a non-square H x W
    crops = [(images, masks), (images[:2, :, :rows], masks[:2, :, :rows])]
    diffs = {"onnx_vs_ckpt": 0.0, "torchscript_vs_ckpt": 0.0}
    for image, mask in crops:
        reference = generator(image, mask).numpy()
        onnx_out = session.run(["output"], {"image": image.numpy(), "mask": mask.numpy()})[0]
        diffs["onnx_vs_ckpt"] = max(diffs["onnx_vs_ckpt"], max_abs_diff(onnx_out, reference))
        diffs["torchscript_vs_ckpt"] = max(
            diffs["torchscript_vs_ckpt"], max_abs_diff(scripted(image, mask).numpy(), reference)
        )
    return diffs


def export(cfg: DictConfig, prepared_dir: Path, image_size: int, uri: str | None = None) -> dict:
    """Write the exported files (and export.json); then, with `cfg.register` and a tracking URI,
    register the ONNX model in MLflow (adds `registered_version` to the returned summary)."""
    checkpoint = Path(cfg.checkpoint)
    if not checkpoint.exists():
        raise UserError(f"{checkpoint} does not exist: run the train stage first")
    generator, info = load_generator(str(checkpoint))
    model_name = info.get("config", {}).get("model", {}).get("name", "unknown")
    images, masks = parity_inputs(prepared_dir, cfg.parity_images)
    example = (images[:1], masks[:1])
    metadata = {
        "image_size": str(image_size),
        "model": model_name,
        "size_multiple": str(SIZE_MULTIPLE),
    }

    out_dir = Path(cfg.out_dir)
    with atomic_dir(out_dir, keep_failed=True) as tmp:  # a failed export is kept for a look
        export_onnx(generator, tmp / "model.onnx", example, cfg.opset, metadata)
        export_torchscript(generator, tmp / "model.pt", example, metadata)
        parity = check_parity(generator, tmp / "model.onnx", tmp / "model.pt", images, masks)
        worst = max(parity.values())
        if worst >= cfg.parity_tolerance:
            raise UserError(
                f"export parity {parity} exceeds export.parity_tolerance={cfg.parity_tolerance}; "
                f"exported files left in {tmp}"
            )
        summary = {
            "image_size": image_size,
            "model": model_name,
            "opset": cfg.opset,
            "parity": {k: float(f"{v:.3g}") for k, v in parity.items()},
        }
        if cfg.get("int8", False):
            export_int8(tmp / "model.onnx", tmp / "model.int8.onnx", images, masks)
            summary["int8"] = int8_report(generator, tmp / "model.int8.onnx", images, masks)
        atomic_write_json(tmp / "export.json", summary)
    if cfg.get("register", False) and uri:
        version = register_onnx(
            out_dir / "model.onnx",
            info.get("mlflow_run_id"),
            uri,
            registry_example(images, masks),
            cfg.get("registered_model") or REGISTERED_MODEL,
            metadata,
        )
        return summary | {"registered_version": version}
    return summary


# --- model registry --------------------------------------------------------------------------------


def onnx_signature() -> ModelSignature:
    """The exported graph's contract: float32 NCHW tensors, N, H and W dynamic (-1)."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    def spec(name: str, channels: int) -> TensorSpec:
        return TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1), name)

    return ModelSignature(
        inputs=Schema([spec("image", 3), spec("mask", 1)]), outputs=Schema([spec("output", 3)])
    )


def registry_example(
    images: torch.Tensor, masks: torch.Tensor, max_side: int = EXAMPLE_MAX_SIDE
) -> dict[str, np.ndarray]:
    """The first parity image and its mask, centre-cropped to at most max_side (a multiple of
    SIZE_MULTIPLE); if the crop misses the hole, a centred box is masked instead."""
    side = min(images.shape[-1], images.shape[-2], max_side) // SIZE_MULTIPLE * SIZE_MULTIPLE
    top, left = (images.shape[-2] - side) // 2, (images.shape[-1] - side) // 2
    image = images[:1, :, top : top + side, left : left + side].numpy().astype(np.float32)
    mask = masks[:1, :, top : top + side, left : left + side].numpy().astype(np.float32)
    if not mask.any():
        mask[..., side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 1.0
    return {"image": np.ascontiguousarray(image), "mask": np.ascontiguousarray(mask)}


@contextmanager
def fluent_target(uri: str, experiment_id: str) -> Iterator[None]:
    """Point MLflow's fluent API (which log_model uses) at `uri` and `experiment_id`, given
    explicitly rather than read from the environment, through its public settings: the
    MLFLOW_TRACKING_URI variable (or mlflow.set_tracking_uri, when a URI set that way would win
    over the variable) and mlflow.set_experiment. The variables and a URI set with
    mlflow.set_tracking_uri are put back afterwards; the active experiment stays (nothing else in
    inpaintlab uses the fluent API: MlflowClient throughout)."""
    import mlflow

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    saved_uri = mlflow.get_tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    pinned = mlflow.get_tracking_uri() != uri  # set with mlflow.set_tracking_uri: it wins
    try:
        if pinned:
            mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment_id=experiment_id)
        yield
    finally:
        if pinned:
            mlflow.set_tracking_uri(saved_uri)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register_onnx(
    onnx_path: Path,
    run_id: str | None,
    uri: str,
    example: dict[str, np.ndarray],
    name: str = REGISTERED_MODEL,
    metadata: dict[str, str] | None = None,
) -> str | None:
    """Log the ONNX model into the training run and register it as a new version of `name`.

    Best effort: any failure (no run id, server down, run deleted) is a logged warning and None;
    the exported files are already in place. Returns the new version number.
    """
    if not run_id:
        log.warning("checkpoint has no MLflow run id; model not registered")
        return None
    try:
        import mlflow.onnx

        run = mlflow.MlflowClient(tracking_uri=uri).get_run(run_id)
        # `run_id=` links the logged model to the training run without reopening it
        # (mlflow.start_run would flip it to RUNNING and move its end time).
        with fluent_target(uri, run.info.experiment_id), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.onnx.log_model(
                onnx.load(str(onnx_path)),
                name="model",
                registered_model_name=name,
                signature=onnx_signature(),
                input_example=example,
                run_id=run_id,
                onnx_execution_providers=["CPUExecutionProvider"],
                metadata=metadata,
            )
    except Exception as err:  # the files are exported; the registry is a convenience on top
        log.warning(
            "exported files are in place, but registering the model in MLflow (%s) failed: %s",
            uri,
            err,
        )
        return None
    version = str(info.registered_model_version)
    log.info("registered %s version %s (run %s, %s)", name, version, run_id, info.model_uri)
    return version


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@stage
def main(cfg: DictConfig) -> None:
    summary = export(
        cfg.export,
        Path(cfg.data.prepared_dir),
        cfg.data.image_size,
        tracking.tracking_uri(cfg.logger.tracking_uri),
    )
    print(f"exported {cfg.export.out_dir}/model.onnx and model.pt; parity {summary['parity']}")
    if summary.get("registered_version"):
        name = cfg.export.get("registered_model") or REGISTERED_MODEL
        print(f"registered MLflow model {name!r} version {summary['registered_version']}")


if __name__ == "__main__":
    main()
