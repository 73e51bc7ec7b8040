"""Loading an exported model: `model.onnx` (onnxruntime, CPU; torch is never imported) or
TorchScript `model.pt` (torch is imported only then), with the contract of DESIGN.md: `image`
[N,3,H,W] and `mask` [N,1,H,W] float32 in [0, 1], mask 1 = generate, output composited, H and W
multiples of 8. Its training size S comes from the ONNX metadata key "image_size" (or
`image_size.txt` in a .pt), else `export.json` beside the model, else 256.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inpaintlab.errors import ModelError, UserError, first_line
from inpaintlab.processes import available_cpus

DEFAULT_IMAGE_SIZE = 256
SIZE_MULTIPLE = 8

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Model:
    """A loaded exported model: run(image [N,3,H,W], mask [N,1,H,W]) -> [N,3,H,W] float32."""

    run: Runner
    image_size: int
    path: Path


def _parse_size(value: object) -> int | None:
    try:
        size = int(str(value).strip())
    except ValueError:
        return None
    return size if size >= SIZE_MULTIPLE else None


def _size_from_export_json(model_path: Path) -> int | None:
    try:
        info = json.loads((model_path.parent / "export.json").read_text())
    except (OSError, ValueError):
        return None
    return _parse_size(info.get("image_size")) if isinstance(info, dict) else None


def _load_onnx(path: Path, threads: int) -> tuple[Runner, int | None]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # warnings would break the one-line stderr contract
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if "image" not in inputs or "mask" not in inputs:
        raise ModelError(f"{path} has inputs {inputs}; the contract needs 'image' and 'mask'")
    output = "output" if "output" in outputs else outputs[0]
    size = _parse_size(session.get_modelmeta().custom_metadata_map.get("image_size", ""))

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run([output], {"image": image, "mask": mask})[0]

    return run, size


def _load_torchscript(path: Path, threads: int) -> tuple[Runner, int | None]:
    import torch  # only for .pt models: ONNX prediction starts without it

    torch.set_num_threads(threads)
    extra = {"image_size.txt": ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    module.eval()

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(image), torch.from_numpy(mask)).numpy()

    raw = extra["image_size.txt"]
    return run, _parse_size(raw.decode(errors="replace") if isinstance(raw, bytes) else raw)


def load_model(path: str | os.PathLike, threads: int | None = None) -> Model:
    """Load model.onnx (onnxruntime, CPU) or model.pt (TorchScript) and its training size."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".pt"):
        raise UserError(f"unsupported model {path}: expected a .onnx or a TorchScript .pt file")
    if not path.is_file():
        raise UserError(f"model {path} not found" + (" (it is a folder)" if path.is_dir() else ""))
    threads = threads or available_cpus()
    try:
        run, size = (
            _load_onnx(path, threads) if suffix == ".onnx" else _load_torchscript(path, threads)
        )
    except ModelError:
        raise
    except ModuleNotFoundError as err:
        raise ModelError(f"cannot load model {path}: {err.name} is not installed") from None
    except Exception as err:  # protobuf, onnxruntime and torch.jit raise many types
        raise ModelError(f"cannot load model {path}: {first_line(err)}") from None
    size = size or _size_from_export_json(path) or DEFAULT_IMAGE_SIZE
    return Model(run=run, image_size=size, path=path)
