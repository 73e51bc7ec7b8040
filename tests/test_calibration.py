"""calibration.py: the share of the correction the published model keeps, chosen on the val
photos at the training size and at full size through predict's inference code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintlab.calibration import choose_scale
from inpaintlab.data.full_size_sets import as_tensor, load_full_size_set
from inpaintlab.inference import inpaint
from inpaintlab.metrics import psnr_masked
from inpaintlab.models.generator import Generator


class PlusPointFour(Generator):
    """The skeleton with a network that adds 0.4 everywhere; its fill of a grey 0.5 surround
    is 0.5, so share s of the correction gives 0.5 + 0.4 s in the hole."""

    def network(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x[:, :3], 0.4)


def write_val_set(folder: Path, name: str, masks: np.ndarray, hole_value: float) -> None:
    """Grey 0.5 photos whose holes really hold hole_value, one per mask."""
    folder.mkdir(parents=True)
    for i, mask in enumerate(masks):
        image = np.where(mask[..., None] > 0, hole_value, 0.5)
        pixels = np.rint(np.repeat(image, 3, axis=2) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}{i}.png")


def prepared_val(root: Path, full_hole: float, small_hole: float = 0.7) -> Path:
    """val/ at 32 px and val_96/ (full size) with their masks, as prepare writes them."""
    small = np.zeros((2, 32, 32), np.uint8)
    small[:, 8:24, 8:24] = 1
    write_val_set(root / "val", "v", small, small_hole)
    np.savez(root / "masks_val.npz", mask=small, family=np.array(["box", "box"]))
    full = np.zeros((2, 96, 96), np.uint8)
    full[0, 20:70, 30:80] = 1
    full[1, 40:60, 10:90] = 1
    write_val_set(root / "val_96", "v", full, full_hole)
    np.savez(root / "masks_val_96.npz", box=full)
    return root


def generator() -> PlusPointFour:
    return PlusPointFour("pyramid", 4.0, 5, sees_fill=False)


def test_the_share_that_is_exact_at_every_size_is_chosen(tmp_path):
    """Holes that hold 0.7 at both sizes: half the correction is exact everywhere."""
    scale, report = choose_scale(generator(), prepared_val(tmp_path, 0.7), 32, [96], ["box"])
    assert scale == 0.5
    assert set(report) == {"32", "96"}
    for values in report.values():  # far above the fill (at 96 px through predict's rescaling)
        assert values["model"] > values["fill"] + 8 and values["fill"] < 16


def test_full_size_is_measured_through_predicts_inference_code(tmp_path):
    """The full-size figures are those of inference.inpaint (its windows and scale choice, the
    uint8 result), not of one direct call of the model."""
    prepared = prepared_val(tmp_path, 0.82)
    scale, report = choose_scale(generator(), prepared, 32, [96], ["box"])
    net = generator().eval()
    net.correction_scale.fill_(scale)
    images, masks = load_full_size_set(prepared, 96, ["box"], 10, split="val")

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(image), torch.from_numpy(mask)).numpy()

    outputs = [inpaint(i, m, run, 32) for i, m in zip(images, masks["box"], strict=True)]
    hole = torch.from_numpy(masks["box"][:, None].astype(np.float32))
    expected = psnr_masked(as_tensor(outputs), as_tensor(images), hole).mean().item()
    assert report["96"]["model"] == pytest.approx(expected, abs=1e-3)


def test_without_full_size_val_photos_the_training_size_decides(tmp_path):
    prepared_val(tmp_path, 0.5, small_hole=0.5)
    scale, report = choose_scale(generator(), tmp_path, 32, [512], ["box"])  # no val_512/
    assert scale == 0.0 and set(report) == {"32"}
