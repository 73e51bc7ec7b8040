"""Classical inpainting baselines (OpenCV Telea and Navier-Stokes) on the same images and masks."""

from __future__ import annotations

import cv2
import numpy as np

BASELINES = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def classical_inpaint(
    image: np.ndarray, mask: np.ndarray, method: str, radius: int = 3
) -> np.ndarray:
    """image HxWx3 uint8 RGB, mask HxW (1 = fill) -> HxWx3 uint8 RGB, known pixels unchanged."""
    mask_u8 = (mask > 0.5).astype(np.uint8)
    bgr = np.ascontiguousarray(image[..., ::-1])
    filled = cv2.inpaint(bgr, mask_u8, radius, BASELINES[method])[..., ::-1]
    return np.where(mask_u8[..., None] == 1, filled, image)
