"""Shared by the model tests: random batches, perturbed weights, a short real fit, export parity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import onnxruntime as ort
import torch
from torch.utils.data import DataLoader, Dataset

from inpaintlab.export import export_onnx, export_torchscript


def random_batch(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g), (torch.rand(n, 1, h, w, generator=g) > 0.6).float()


def off_identity(generator: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturb every weight: a fresh model's zero-initialised layers would hide parity errors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return generator.eval()


class RandomInpainting(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, mask = random_batch(1, 32, 32, seed=index)
        return {"image": image[0], "mask": mask[0]}


def quick_fit(module: L.LightningModule, steps: int) -> L.Trainer:
    """A real Lightning fit of `steps` optimizer steps on random images and masks, quietly."""
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(RandomInpainting(), batch_size=4))
    return trainer


def assert_export_parity(
    generator: torch.nn.Module,
    folder: Path,
    name: str,
    sizes: list[tuple[int, int]],
    batch: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None,
    atol: float = 1e-4,
) -> None:
    """Export (traced at 32x32) to ONNX and TorchScript; both within `atol` of the module at
    `sizes` (other than the traced one: the axes must really be dynamic), on `batch(h, w)`
    (default: 2 random images with random masks)."""
    example = random_batch(1, 32, 32)
    export_onnx(generator, folder / "model.onnx", example, 17, {"model": name})
    export_torchscript(generator, folder / "model.pt", example, {"model": name})
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(folder / "model.pt"))
    for size in sizes:
        image, mask = batch(*size) if batch else random_batch(2, *size, seed=1)
        with torch.no_grad():
            reference = generator(image, mask)
            assert (scripted(image, mask) - reference).abs().max().item() < atol
        onnx_out = session.run(["output"], {"image": image.numpy(), "mask": mask.numpy()})[0]
        assert np.abs(onnx_out - reference.numpy()).max() < atol
