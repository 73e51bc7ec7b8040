"""export stage: models/model.ckpt -> models/export/{model.onnx, model.pt, export.json}.

Both artifacts take `image` [N,3,H,W] and `mask` [N,1,H,W] (float32, 1 = generate) and return
`output` [N,3,H,W], already composited; N, H, W are dynamic (H, W multiples of 8). Parity with the
checkpoint is measured on real test images with onnxruntime and TorchScript, and enforced.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import hydra
import numpy as np
import onnx
import onnxruntime as ort
import torch
from omegaconf import DictConfig

from inpaintlab.evaluate import load_test_set
from inpaintlab.module import load_generator
from inpaintlab.utils import (
    UserError,
    atomic_write_json,
    fresh_temp_dir,
    replace_dir,
    user_errors_as_one_line,
)

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 8


def export_onnx(generator: torch.nn.Module, path: Path, example: tuple[torch.Tensor, torch.Tensor],
                opset: int, metadata: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            generator, example, str(path), dynamo=False, opset_version=opset,
            input_names=["image", "mask"], output_names=["output"],
            dynamic_axes={"image": {0: "N", 2: "H", 3: "W"}, "mask": {0: "N", 2: "H", 3: "W"},
                          "output": {0: "N", 2: "H", 3: "W"}},
        )
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_torchscript(generator: torch.nn.Module, path: Path, example: tuple[torch.Tensor, torch.Tensor],
                       metadata: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(generator, example, check_trace=False)
    traced.save(str(path), _extra_files={f"{k}.txt": v for k, v in metadata.items()})


def parity_inputs(prepared_dir: Path, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Test images, each with a mask of a different family, plus a non-square crop for dynamic H/W."""
    images, family_masks = load_test_set(prepared_dir)
    families = list(family_masks)
    n = min(count, len(images))
    masks = torch.stack([torch.from_numpy(family_masks[families[i % len(families)]][i].astype(np.float32))[None]
                         for i in range(n)])
    return images[:n], masks


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@torch.no_grad()
def check_parity(generator: torch.nn.Module, onnx_path: Path, ts_path: Path,
                 images: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
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
        diffs["torchscript_vs_ckpt"] = max(diffs["torchscript_vs_ckpt"],
                                            max_abs_diff(scripted(image, mask).numpy(), reference))
    return diffs


def export(cfg: DictConfig, prepared_dir: Path, image_size: int) -> dict:
    checkpoint = Path(cfg.checkpoint)
    if not checkpoint.exists():
        raise UserError(f"{checkpoint} does not exist: run the train stage first")
    generator, info = load_generator(str(checkpoint))
    model_name = info.get("config", {}).get("model", {}).get("name", "unknown")
    images, masks = parity_inputs(prepared_dir, cfg.parity_images)
    example = (images[:1], masks[:1])
    metadata = {"image_size": str(image_size), "model": model_name, "size_multiple": str(SIZE_MULTIPLE)}

    out_dir = Path(cfg.out_dir)
    tmp = fresh_temp_dir(out_dir)
    export_onnx(generator, tmp / "model.onnx", example, cfg.opset, metadata)
    export_torchscript(generator, tmp / "model.pt", example, metadata)
    parity = check_parity(generator, tmp / "model.onnx", tmp / "model.pt", images, masks)
    worst = max(parity.values())
    if worst >= cfg.parity_tolerance:
        raise UserError(f"export parity {parity} exceeds export.parity_tolerance={cfg.parity_tolerance}; "
                        f"exported files left in {tmp}")
    summary = {"image_size": image_size, "model": model_name, "opset": cfg.opset,
               "parity": {k: float(f"{v:.3g}") for k, v in parity.items()}}
    atomic_write_json(tmp / "export.json", summary)
    replace_dir(tmp, out_dir)
    return summary


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@user_errors_as_one_line
def main(cfg: DictConfig) -> None:
    summary = export(cfg.export, Path(cfg.data.prepared_dir), cfg.data.image_size)
    print(f"exported {cfg.export.out_dir}/model.onnx and model.pt; parity {summary['parity']}")


if __name__ == "__main__":
    main()
