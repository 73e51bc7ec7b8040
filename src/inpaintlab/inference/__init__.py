"""Inference with an exported model, shared by `inpaintlab predict`, `evaluate`'s full-size
measurement, the benchmarks and `inpaintlab serve`: runtime (onnxruntime or TorchScript), tiles
and padding, the strategy for images of any size (`strategy.py`), where to generate (`regions.py`:
a box, an extension) and jobs of one image in, one file out, singly or a folder at a time
(`jobs.py`). Imports neither torch nor Lightning.
"""

from inpaintlab.errors import ModelError, UserError
from inpaintlab.inference.runtime import Model, Runner, load_model
from inpaintlab.inference.strategy import inpaint, outpaint

__all__ = ["Model", "ModelError", "Runner", "UserError", "inpaint", "load_model", "outpaint"]
