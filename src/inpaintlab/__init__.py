"""inpaintlab: train, evaluate and ship inpainting/outpainting models as a reproducible pipeline.

Kept import-free on purpose: `inpaintlab predict` must start without importing torch.
"""

__version__ = "0.1.0"
