"""Checks of the settings a user touches, run before a stage creates or deletes anything.

A wrong type or an out-of-range value (`optim.generator.lr=abc`, `datamodule.batch_size=0`,
`mask.generator.weights.box=-1`, `data.image_size=30`) is a one-line UserError naming the key,
instead of a traceback after an MLflow run was created. Two kinds of checks:

- explicit ranges for the plain values (optim's rates, loss, trainer, data, train, logger);
- for every node with a `_target_` of inpaintlab (mask samplers, generators, the discriminator,
  the schedule, the datamodule), each value's type against the annotation of the class's (or
  function's) parameter (dataclass fields or `__init__`), so a string where a float belongs is
  caught before the class itself compares it with a number.
"""

from __future__ import annotations

import importlib
import inspect
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inpaintlab.errors import UserError

PRECISIONS = {
    "16",
    "32",
    "64",
    "bf16",
    "16-mixed",
    "bf16-mixed",
    "32-true",
    "64-true",
    "16-true",
    "bf16-true",
    "transformer-engine",
}


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number(
    key: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """value is a finite number within [low, high] (open ends as asked)."""
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise UserError(
            f"{key} must be a number{' ' + bounds if bounds else ''}, got {_show(value)}"
        )


def integer(key: str, value: Any, low: int | None = None, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not is_int(value) or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        raise UserError(
            f"{key} must be an integer{bound}{' or null' if optional else ''}, got {_show(value)}"
        )


def text(key: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{key} must be a non-empty string (a path or a name), got {_show(value)}")


def boolean(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise UserError(f"{key} must be true or false, got {_show(value)}")


def _get(cfg: Any, key: str) -> Any:
    value = OmegaConf.select(cfg, key, throw_on_missing=False)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


# --- typed `_target_` nodes ---------------------------------------------------------------------


def _matches(value: Any, hint: Any) -> bool:
    """Whether a config value fits a parameter annotation (shallowly for containers)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return is_number(value)
    if hint is int:
        return is_int(value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    base = origin or hint
    if base in (dict, Mapping) or (isinstance(base, type) and issubclass(base, Mapping)):
        if not isinstance(value, Mapping):
            return False
        args = typing.get_args(hint)
        return len(args) != 2 or all(_matches(v, args[1]) for v in value.values())
    if base in (list, tuple, Sequence) or (
        isinstance(base, type) and issubclass(base, Sequence) and base is not str
    ):
        if isinstance(value, str) or not isinstance(value, Sequence):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return len(args) != 1 or all(_matches(v, args[0]) for v in value)
    return True  # callables, generators, arrays: checked by the class itself


def _hints(target: str) -> dict[str, Any]:
    """Parameter annotations of a `_target_` class (dataclass fields or __init__)."""
    module_name, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return {}
    init = cls.__init__ if isinstance(cls, type) else cls
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # unresolvable annotations: let the class check its own values
        return {}
    hints.pop("return", None)
    return hints


def _name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _check_value(path: str, value: Any, hint: Any) -> None:
    """One parameter's value against its annotation; a mapping's or list's items one by one,
    so the message names the item (mask.generator.weights.box)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        fitting = [h for h in typing.get_args(hint) if _matches(value, h)]
        if not fitting:
            raise UserError(f"{path} must be {_name(hint)}, got {_show(value)}")
        hint = fitting[0]
    origin, args = typing.get_origin(hint), [a for a in typing.get_args(hint) if a is not Ellipsis]
    if isinstance(value, Mapping) and len(args) == 2 and _matches(value, origin or hint):
        for key, item in value.items():
            if not isinstance(item, Mapping) and not _matches(item, args[1]):
                raise UserError(f"{path}.{key} must be {_name(args[1])}, got {_show(item)}")
        return
    if isinstance(value, list) and len(args) == 1 and _matches(value, origin or hint):
        for i, item in enumerate(value):
            if not isinstance(item, Mapping) and not _matches(item, args[0]):
                raise UserError(f"{path}[{i}] must be {_name(args[0])}, got {_show(item)}")
        return
    if not _matches(value, hint):
        raise UserError(f"{path} must be {_name(hint)}, got {_show(value)}")


def check_targets(node: Any, where: str) -> None:
    """Each `_target_` node's values against its class's annotations, recursively."""
    if isinstance(node, Mapping):
        target = node.get("_target_")
        inpaintlab = isinstance(target, str) and target.startswith("inpaintlab.")
        hints = _hints(target) if inpaintlab else {}
        for key, value in node.items():
            if key.startswith("_"):
                continue
            if key in hints:
                _check_value(f"{where}.{key}", value, hints[key])
            check_targets(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_targets(value, f"{where}[{i}]")


# --- the groups -----------------------------------------------------------------------------------


def check_data(data: DictConfig) -> None:
    """The `data` group (prepare's own validate() checks the ranges of the fractions)."""
    integer("data.image_size", data.image_size, 16)
    if data.image_size % 8:
        raise UserError(f"data.image_size must be a multiple of 8 and >= 16, got {data.image_size}")
    number("data.train_scale", data.get("train_scale", 1.0), 1.0)
    integer("data.min_side", data.get("min_side", 1), 1)
    number("data.val_fraction", data.get("val_fraction", 0.1), 0, 1, high_open=True)
    number("data.test_fraction", data.get("test_fraction", 0.1), 0, 1, high_open=True)
    integer("data.val_crops", data.get("val_crops", 16), 1)
    integer("data.split_seed", data.get("split_seed", 0))
    integer("data.eval_mask_seed", data.get("eval_mask_seed", 0))
    text("data.raw_dir", data.get("raw_dir", "data/raw"))
    text("data.prepared_dir", data.get("prepared_dir", "data/prepared"))
    integer("data.workers", data.get("workers"), 1, optional=True)
    boolean("data.cache", data.get("cache", True))
    for key in ("eval_families", "val_families"):
        families = _get(data, key)
        if families is not None and (
            not isinstance(families, list)
            or not families
            or not all(isinstance(f, str) for f in families)
        ):
            raise UserError(
                f"data.{key} must be a non-empty list of mask family names, got {families}"
            )


def _augment_probabilities(augment: Any) -> None:
    for split, steps in (augment or {}).items():
        if not isinstance(steps, list):
            raise UserError(
                f"datamodule.augment.{split} must be a list of transforms, got {_show(steps)}"
            )
        for i, step in enumerate(steps):
            if isinstance(step, Mapping) and "p" in step:
                number(f"datamodule.augment.{split}[{i}].p", step["p"], 0, 1)


def _check_optimizer(key: str, node: Any) -> None:
    """A torch.optim node: a rate > 0, and AdamW's weight decay and betas where it has them."""
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise UserError(f"{key} must be an optimizer config with a _target_ (conf/optim/*.yaml)")
    number(f"{key}.lr", node.get("lr"), 0, low_open=True)
    if "weight_decay" in node:
        number(f"{key}.weight_decay", node["weight_decay"], 0)
    betas = node.get("betas", [0.0, 0.0])
    if not (
        isinstance(betas, list)
        and len(betas) == 2
        and all(is_number(b) and 0 <= b < 1 for b in betas)
    ):
        raise UserError(f"{key}.betas must be two numbers in [0, 1), got {_show(betas)}")


def check_train(cfg: DictConfig) -> None:
    """Everything `python -m inpaintlab.train` reads, before it creates or deletes anything."""
    integer("seed", cfg.seed)
    check_data(cfg.data)

    optim = _get(cfg, "optim")
    for name in ("generator", "discriminator"):
        _check_optimizer(f"optim.{name}", optim.get(name))
    scheduler = optim.get("scheduler") or {}
    for key in ("warmup_fraction", "final_fraction"):  # module.warmup_cosine's
        if key in scheduler:
            number(f"optim.scheduler.{key}", scheduler[key], 0, 1)
    check_targets(optim, "optim")

    for key, value in _get(cfg, "loss").items():
        number(f"loss.{key}", value, 0)

    datamodule = _get(cfg, "datamodule")
    integer("datamodule.batch_size", datamodule.get("batch_size"), 1)
    integer("datamodule.num_workers", datamodule.get("num_workers", 0), 0)
    integer("datamodule.samples_per_epoch", datamodule.get("samples_per_epoch"), 1, optional=True)
    text("datamodule.prepared_dir", datamodule.get("prepared_dir"))
    _augment_probabilities(datamodule.get("augment"))
    check_targets(datamodule, "datamodule")

    trainer = _get(cfg, "trainer")
    integer(
        "trainer.max_epochs",
        trainer.get("max_epochs"),
        1,
        optional=trainer.get("max_steps", -1) not in (-1, None),
    )
    if trainer.get("max_steps") not in (None, -1):
        integer("trainer.max_steps", trainer["max_steps"], 1)
    if trainer.get("gradient_clip_val") is not None:
        number("trainer.gradient_clip_val", trainer["gradient_clip_val"], 0)
    if str(trainer.get("precision", "32")) not in PRECISIONS:
        raise UserError(
            f"trainer.precision must be one of {', '.join(sorted(PRECISIONS))}, got {_show(trainer.get('precision'))}"
        )
    for key in ("deterministic", "enable_progress_bar", "enable_model_summary"):
        if key in trainer and trainer[key] is not None and not isinstance(trainer[key], bool | str):
            raise UserError(f"trainer.{key} must be true or false, got {_show(trainer[key])}")
    for key in ("num_sanity_val_steps", "log_every_n_steps"):
        if trainer.get(key) is not None:
            integer(f"trainer.{key}", trainer[key], -1 if key == "num_sanity_val_steps" else 1)
    if trainer.get("max_time") is not None:
        text("trainer.max_time", trainer["max_time"])

    mask = _get(cfg, "mask")
    if not isinstance(mask, Mapping) or "_target_" not in mask:
        raise UserError("mask must be a sampler config with a _target_ (conf/mask/*.yaml)")
    check_targets(mask, "mask")
    model = _get(cfg, "model")
    number("model.ema_decay", model.get("ema_decay"), 0, 1, high_open=True)
    boolean("model.calibrate_correction", model.get("calibrate_correction", True))
    check_targets(model, "model")

    integer("logger.num_samples", cfg.logger.get("num_samples", 6), 0)
    text("logger.experiment_name", cfg.logger.get("experiment_name"))
    text("logger.tracking_uri", cfg.logger.get("tracking_uri"), optional=True)
    boolean("train.resume", OmegaConf.select(cfg, "train.resume", default=True))
