"""Checkpoint files: loaded safely, written atomically.

Every load uses `torch.load(weights_only=True)`: the file may hold tensors and plain containers
only, so a crafted `models/model.ckpt` (e.g. pulled from a shared DVC remote) cannot run code; it
is refused with one line. Our checkpoints hold only such values (hyperparameters are plain dicts,
RNG states tensors and lists).

Writes go to a unique temp file in the same folder, are flushed to disk, then renamed over the
target: a process killed mid-write (SIGKILL, OOM) leaves the previous checkpoint intact. Lightning's
own save goes through a temp file in /tmp and a copy, which is not atomic across file systems.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from inpaintlab.utils import UserError, atomic_file, one_line


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
