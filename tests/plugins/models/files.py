"""Real models and photos that packages ship (located without importing those packages: rapidocr's
``__init__`` needs dependencies annota does not install)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import IN_CI


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    path = (
        Path(spec.submodule_search_locations[0]) / relative
        if spec and spec.submodule_search_locations
        else None
    )
    if path is None or not path.is_file():
        message = f"{package} with {relative} is not installed (a test extra; see scripts/check)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def nudenet_model() -> Path:
    """A YOLOv8n detection export (320×320, 18 classes including FACE_FEMALE)."""
    return package_file("nudenet", "320n.onnx")


def ppocr_det_model() -> Path:
    return package_file("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx")


def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (512×512, BGR): a face near x 173–274, y 66–181."""
    image = cv2.imread(str(package_file("skimage", "data/astronaut.png")), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def iou(a: list[float], b: list[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
