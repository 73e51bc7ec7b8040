"""Training speed: images/s of a config's training step and its share of the device's matmul peak.

    python benchmarks/train_speed.py [experiment=gpu256] [any Hydra override ...] [--steps 20]

Builds the generator, loss and optimizer of the composed config (conf/, the same classes
`train` uses) and times full training steps (forward, loss, backward, optimizer step) on batches
of the config's shape, with the trainer's precision (bf16-mixed autocast), the accelerator
(`trainer.accelerator: auto`: the GPU when there is one) and `train.channels_last` /
`train.compile`. The step's FLOPs come from torch's FlopCounterMode; the peak is a large
matmul measured on the same device in the same run, in the same precision, so the share says
how much of what the device can do the model uses. A measurement, not a test; data loading is
benchmarks/data_speed.py's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from torch.utils.flop_counter import FlopCounterMode

from inpaintlab.inpaint_module import InpaintModule, reconstruction_loss
from inpaintlab.train import apply_speed_settings

CONF = Path(__file__).resolve().parents[1] / "conf"


def device_for(accelerator: str) -> torch.device:
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 10) -> float:
    """FLOP/s of a size x size matmul on device (the best of repeats)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=gpu256")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up)")
    parser.add_argument("--matmul-size", type=int, default=None, help="default 8192 GPU, 2048 CPU")
    args = parser.parse_args()

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=args.overrides)
    device = device_for(str(cfg.trainer.accelerator))
    bf16 = str(cfg.trainer.precision).startswith("bf16")
    dtype = torch.bfloat16 if bf16 else torch.float32
    torch.manual_seed(cfg.seed)

    module = InpaintModule(model=cfg.model, loss=cfg.loss, optim=cfg.optim)  # train's classes
    apply_speed_settings(module, cfg)
    module.to(device).train()
    optimizer = hydra.utils.instantiate(cfg.optim.generator)(module.generator.parameters())
    masks = hydra.utils.instantiate(cfg.mask)
    size, batch = int(cfg.data.image_size), int(cfg.datamodule.batch_size)
    image = torch.rand(batch, 3, size, size, device=device)
    rng = np.random.default_rng(cfg.seed)
    mask = np.stack([masks(rng, size, size) for _ in range(batch)])[:, None]
    mask = torch.from_numpy(mask.astype(np.float32)).to(device)
    if cfg.train.get("channels_last"):
        image = image.contiguous(memory_format=torch.channels_last)
        mask = mask.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            raw = module.generator.generate(image, mask)
            loss = reconstruction_loss(raw, image, mask, module.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up (and torch.compile's compilation)
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    sync(device)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = matmul_peak(device, dtype, args.matmul_size or (8192 if device.type == "cuda" else 2048))
    name = (
        torch.cuda.get_device_name()
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )

    print(f"device: {name}; {' '.join(args.overrides) or 'default config'}")
    print(
        f"model={cfg.model.name} {size}px batch {batch}, precision {cfg.trainer.precision}, "
        f"channels_last={bool(cfg.train.get('channels_last'))} compile={bool(cfg.train.get('compile'))}"
    )
    print(f"step: {seconds * 1000:.1f} ms (median of {args.steps}); {batch / seconds:.1f} images/s")
    print(
        f"FLOPs/step {flops / 1e9:.2f} G -> {flops / seconds / 1e12:.3f} TFLOP/s; "
        f"matmul peak ({dtype}) {peak / 1e12:.3f} TFLOP/s; share {flops / seconds / peak:.1%}"
    )


if __name__ == "__main__":
    main()
