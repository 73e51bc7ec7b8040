"""Swappable bottlenecks (model=transformer, model=ffc): config composition, shapes, the
matmul DFT against torch.fft, real training steps, and export parity at untraced sizes."""

from __future__ import annotations

from collections.abc import Callable

import hydra
import lightning as L
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.utils.data import DataLoader

from inpaintlab.export import export_onnx, export_torchscript
from inpaintlab.models.ffc import FFCBottleneck, irfft2, rfft2
from inpaintlab.models.transformer import TransformerBottleneck
from inpaintlab.models.unet import UNetGenerator
from inpaintlab.module import InpaintModule

BOTTLENECKS = {"transformer": TransformerBottleneck, "ffc": FFCBottleneck}
MODELS = list(BOTTLENECKS)


def random_batch(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g), (torch.rand(n, 1, h, w, generator=g) > 0.6).float()


def off_identity(generator: UNetGenerator, seed: int = 0) -> UNetGenerator:
    """Perturb every weight: a fresh model's zero-initialised layers would hide parity errors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return generator.eval()


@pytest.mark.parametrize("name", MODELS)
def test_ci_composition_follows_base_channels(compose_cfg, name):
    cfg = compose_cfg(f"model={name}", "experiment=ci")
    assert cfg.model.name == name
    generator = hydra.utils.instantiate(cfg.model.generator)
    assert isinstance(generator.bottleneck, BOTTLENECKS[name])
    features = {}
    generator.bottleneck.register_forward_hook(
        lambda m, i, out: features.__setitem__("shape", tuple(out.shape))
    )
    image, mask = random_batch(2, 32, 48)
    with torch.no_grad():
        out = generator.eval()(image, mask)
    assert features["shape"] == (2, 4 * 8, 8, 12)  # 1/4 resolution, 4 * base_channels (ci: 8)
    assert out.shape == image.shape
    keep = mask.expand_as(image) == 0
    assert torch.equal(out[keep], image[keep])  # known pixels bit-exact


@pytest.mark.parametrize("name", MODELS)
def test_default_config_width(compose_cfg, name):
    generator = hydra.utils.instantiate(compose_cfg(f"model={name}").model.generator)
    x = torch.randn(1, 96, 6, 10)
    with torch.no_grad():
        assert generator.bottleneck(x).shape == x.shape


@pytest.mark.parametrize("cls", BOTTLENECKS.values())
def test_bottleneck_starts_as_identity(cls):
    x = torch.randn(2, 32, 8, 6)
    with torch.no_grad():
        assert torch.equal(cls(channels=32)(x), x)


@pytest.mark.parametrize("cls", BOTTLENECKS.values())
def test_bottleneck_width_arguments(cls):
    assert cls(base_channels=8)[0] is not None
    with pytest.raises(ValueError):
        cls(channels=32, base_channels=8)
    with pytest.raises(ValueError):
        cls()


@pytest.mark.parametrize("size", [(8, 8), (16, 12), (7, 9), (5, 6), (64, 64)])
def test_matmul_dft_equals_torch_fft(size):
    torch.manual_seed(0)
    h, w = size
    x = torch.randn(2, 3, h, w)
    re, im = rfft2(x)
    reference = torch.fft.rfft2(x, norm="ortho")
    assert torch.allclose(re, reference.real, atol=1e-5) and torch.allclose(
        im, reference.imag, atol=1e-5
    )
    spectrum = torch.randn(2, 3, h, w // 2 + 1, dtype=torch.complex64)  # not Hermitian-consistent
    expected = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")
    assert torch.allclose(irfft2(spectrum.real, spectrum.imag, w), expected, atol=1e-5)
    assert torch.allclose(irfft2(re, im, w), x, atol=1e-5)


class RandomInpainting(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, mask = random_batch(1, 32, 32, seed=index)
        return {"image": image[0], "mask": mask[0]}


def quick_fit(module: InpaintModule, steps: int) -> L.Trainer:
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


@pytest.mark.parametrize("name", MODELS)
def test_trains_through_the_lightning_module(compose_cfg, name):
    torch.manual_seed(0)
    cfg = compose_cfg(f"model={name}", "experiment=ci")
    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim)
    before = {k: v.clone() for k, v in module.generator.bottleneck.state_dict().items()}
    trainer = quick_fit(module, steps=2)
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    after = module.generator.bottleneck.state_dict()
    # Every residual branch ends in a zero-initialised weight, which only a gradient can move
    # (weight decay keeps zero at zero). to_rgb is zero too, so gradients reach the bottleneck
    # from step 2: after it, each block's branch end must have moved.
    branch_ends = [k for k, v in before.items() if k.endswith("weight") and not v.any()]
    assert len(branch_ends) >= 2 * len(module.generator.bottleneck)
    assert all(after[k].any() for k in branch_ends)


@pytest.mark.parametrize("name", MODELS)
def test_export_parity_at_untraced_sizes(tmp_path, name):
    torch.manual_seed(0)
    generator = off_identity(
        UNetGenerator(base_channels=8, bottleneck=BOTTLENECKS[name](base_channels=8))
    )
    assert_export_parity(generator, tmp_path, name, sizes=[(48, 64), (64, 64)])


def assert_export_parity(
    generator: torch.nn.Module,
    folder,
    name: str,
    sizes: list[tuple[int, int]],
    batch: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> None:
    """Export (traced at 32x32) to ONNX and TorchScript; both within 1e-4 of the module at
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
            assert (scripted(image, mask) - reference).abs().max().item() < 1e-4
        onnx_out = session.run(["output"], {"image": image.numpy(), "mask": mask.numpy()})[0]
        assert np.abs(onnx_out - reference.numpy()).max() < 1e-4
