"""Inference with an exported model, shared by `inpaintlab predict`, `evaluate`'s full-size
measurement, the benchmarks and `inpaintlab serve`: runtime (onnxruntime or TorchScript), tiles
and padding, and the strategy for images of any size. Imports neither torch nor Lightning.
"""

from inpaintlab.inference.errors import ModelError, PredictError
from inpaintlab.inference.runtime import Model, Runner, load_model
from inpaintlab.inference.strategy import inpaint, outpaint

__all__ = ["Model", "ModelError", "PredictError", "Runner", "inpaint", "load_model", "outpaint"]
