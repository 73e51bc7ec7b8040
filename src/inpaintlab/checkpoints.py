"""Checkpoint files: loaded safely, written atomically.

Every load uses `torch.load(weights_only=True)`: the file may hold tensors and plain containers
only, so a crafted `models/model.ckpt` (e.g. pulled from a shared DVC remote) cannot run code; it
is refused with one line. Our checkpoints hold only such values (hyperparameters are plain dicts,
RNG states tensors and lists).

`load_generator` builds the generator a checkpoint's `model.generator` config names (only model
classes of inpaintlab.models, so a plain dict cannot name `os.system` either) and loads its
weights: what evaluate and export run.

Writes go to a unique temp file in the same folder, are flushed to disk, then renamed over the
target: a process killed mid-write (SIGKILL, OOM) leaves the previous checkpoint intact. Lightning's
own save goes through a temp file in /tmp and a copy, which is not atomic across file systems.
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Any

import hydra
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from inpaintlab.errors import UserError, one_line
from inpaintlab.files import atomic_file


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at path as a dict, loaded with weights_only=True; anything else (code in
    the pickle, a truncated or foreign file) is a one-line UserError and nothing is run."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        reason = next(
            (ln for ln in lines if "GLOBAL" in ln or "Unsupported" in ln),
            lines[-1] if lines else "unsupported content",
        )
        raise UserError(
            f"refusing {path}: it holds more than tensors and plain values, which could run code "
            f"when loaded ({reason[:200]})"
        ) from None
    except Exception as err:  # truncated, not a torch file, ...: torch raises many kinds
        raise UserError(f"cannot read checkpoint {path}: {one_line(err)[:200]}") from None
    if not isinstance(data, dict):
        raise UserError(f"refusing {path}: not an inpaintlab checkpoint (a {type(data).__name__})")
    return data


def save_atomic(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """torch.save to a temp file beside path, fsync, rename over path."""
    with atomic_file(path) as handle:
        torch.save(checkpoint, handle)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic local writes and safe loads (resume included)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_atomic(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path)


SCHEDULES = (  # `optim.scheduler` targets a checkpoint may name (module.py before the rename)
    "inpaintlab.inpaint_module.warmup_cosine",
    "inpaintlab.module.warmup_cosine",
)
# Checkpoints written before each model file was named after its config (model=NAME ->
# models/NAME.py) name the generators by their old paths, and leave out the values that were
# those classes' defaults then: the old path -> (today's path, the old defaults).
LEGACY_GENERATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "inpaintlab.models.fast_unet.FastUNetGenerator": (
        "inpaintlab.models.unet.UNet",
        {
            "base_channels": 16,
            "bottleneck_channels": None,
            "bottleneck_blocks": 4,
            "fill": "pyramid",
            "edge_width": 4.0,
            "fill_levels": 5,
            "norm": "batch",
            "activation": "silu",
            "sees_fill": False,
            "residual_reach": None,
        },
    ),
    "inpaintlab.models.unet.UNetGenerator": (
        "inpaintlab.models.unet_full.UNetFull",
        {
            "base_channels": 32,
            "bottleneck_blocks": 4,
            "fill_levels": 5,
            "fill": "pyramid",
            "edge_width": 4.0,
            "sees_fill": False,
        },
    ),
}


def _resolve(target: str) -> object:
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _safe_target(target: object) -> bool:
    """A model class of inpaintlab.models (`inpaintlab.models.<module>.<Class>`, an nn.Module
    defined in that module, not, say, `inpaintlab.models.unet.os.system` reached through an
    import), a torch.optim optimizer, or one of SCHEDULES."""
    if not isinstance(target, str):
        return False
    if target in SCHEDULES:
        return True
    parts = target.split(".")
    found = _resolve(target)
    if not isinstance(found, type):
        return False
    if parts[:2] == ["torch", "optim"] and len(parts) == 3:
        return issubclass(found, torch.optim.Optimizer)
    return (
        len(parts) == 4
        and parts[:2] == ["inpaintlab", "models"]
        and issubclass(found, torch.nn.Module)
        and found.__module__ == ".".join(parts[:3])
    )


def check_targets(config: Any, source: str, where: str = "hyper_parameters") -> None:
    """Refuse a checkpoint whose hyperparameters name a `_target_` other than a model class of
    inpaintlab.models, an optimizer or a schedule: instantiating it would run it, so
    `_target_: os.system` would run a command even though weights_only=True let the (plain)
    dict through."""
    if isinstance(config, dict):
        if "_target_" in config and not _safe_target(config["_target_"]):
            raise UserError(
                f"refusing {source}: {where}._target_ is {str(config['_target_'])[:80]!r}; a "
                "checkpoint may only name model classes of inpaintlab.models, optimizers and "
                "schedules"
            )
        for key, value in config.items():
            check_targets(value, source, f"{where}.{key}")
    elif isinstance(config, list | tuple):
        for i, value in enumerate(config):
            check_targets(value, source, f"{where}[{i}]")


def _today(generator: dict[str, Any]) -> dict[str, Any]:
    """A legacy generator config as today's classes read it (others unchanged)."""
    if generator.get("_target_") not in LEGACY_GENERATORS:
        return generator
    target, old_defaults = LEGACY_GENERATORS[generator["_target_"]]
    config = old_defaults | generator | {"_target_": target}
    if config.pop("fill_skip", False):
        raise UserError("a checkpoint with fill_skip: true needs inpaintlab before issue 15")
    return config


def load_generator(checkpoint: str) -> tuple[torch.nn.Module, dict]:
    """The generator (eval mode, CPU; the averaged weights if the checkpoint holds them) and the
    checkpoint's extra info (MLflow run, config). The file is loaded with weights_only=True: a
    crafted one is refused with one line and runs nothing. Only `model.generator` is built: the
    losses, the optimizers and the discriminator play no part."""
    raw = load_checkpoint(checkpoint)
    hyper_parameters = raw.get("hyper_parameters")
    state = raw.get("state_dict")
    if not isinstance(hyper_parameters, dict) or not isinstance(state, dict):
        raise UserError(
            f"{checkpoint} is not an inpaintlab checkpoint (no hyper_parameters/state_dict)"
        )
    model = hyper_parameters.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("generator"), dict):
        raise UserError(f"{checkpoint} is not an inpaintlab checkpoint (no model.generator)")
    generator_config = _today(model["generator"])
    check_targets(
        hyper_parameters | {"model": model | {"generator": generator_config}}, str(checkpoint)
    )
    try:
        generator = hydra.utils.instantiate(generator_config)
    except Exception as err:
        raise UserError(f"{checkpoint}: cannot build its model: {one_line(err)[:200]}") from None
    # InpaintModule's state: generator.*, and ema.module.* (the average) with model.ema_decay > 0
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in state) else "generator."
    weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    try:
        generator.load_state_dict(weights)
    except RuntimeError as err:
        raise UserError(
            f"{checkpoint} does not fit its own model config: {str(err).splitlines()[0]}"
        ) from None
    return generator.eval(), raw.get("inpaintlab", {})
