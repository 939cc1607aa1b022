"""Real photographs for model tests: scikit-image ships them, so nothing is downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np


def skimage_photo(name: str) -> Path:
    """A photo of ``skimage/data`` found without importing scikit-image (its import is slow)."""
    spec = importlib.util.find_spec("skimage")
    assert spec is not None and spec.submodule_search_locations, "scikit-image is a test dependency"
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def astronaut() -> bytes:
    """``astronaut.png``: Eileen Collins, her face near x 173-274, y 66-181."""
    return skimage_photo("astronaut.png").read_bytes()


def astronaut_image() -> np.ndarray:
    image = cv2.imread(str(skimage_photo("astronaut.png")))
    assert image is not None
    return image


def blank_png(width: int = 128, height: int = 96) -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((height, width, 3), 200, dtype=np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def iou(a: list[float], b: list[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0
