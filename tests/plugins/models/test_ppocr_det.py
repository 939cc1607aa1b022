"""The onnx-ppocr-det runner with PP-OCRv4's detector finds text drawn on a blank page."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from annota.core.formats.model import Shape
from annota.core.models.runner import DetectOptions, ModelDeclaration, ModelError
from annota.plugins.models import ppocr_det
from tests.plugins.models.files import iou, ppocr_det_model

pytest.importorskip("onnxruntime")

TEXTS = [("HELLO WORLD", (40, 100)), ("annota 2026", (80, 260)), ("CVAT", (300, 400))]


def page() -> tuple[np.ndarray, list[list[float]]]:
    image = np.full((480, 640, 3), 255, dtype=np.uint8)
    boxes = []
    for text, (x, y) in TEXTS:
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.5, 3)
        boxes.append([x, y - height, x + width, y + baseline])
    return image, boxes


def bounds(shape: Shape) -> list[float]:
    if shape.rotation:
        (cx, cy), (w, h) = (
            np.reshape(shape.points, (2, 2)).mean(axis=0),
            np.diff(np.reshape(shape.points, (2, 2)), axis=0)[0],
        )
        corners = cv2.boxPoints(((float(cx), float(cy)), (float(w), float(h)), shape.rotation))
    else:
        corners = np.reshape(shape.points, (-1, 2))
    return [*corners.min(axis=0), *corners.max(axis=0)]


@pytest.mark.parametrize(
    ("output", "shape_type"), [("polygon", "polygon"), ("rotated", "rectangle"), ("rectangle", "rectangle")]
)
def test_drawn_text_is_found(output: str, shape_type: str) -> None:
    declaration = ModelDeclaration(
        name="ocr", kind="onnx-ppocr-det", path=str(ppocr_det_model()), options={"output": output}
    )
    model = ppocr_det.load(declaration)
    assert [(label.name, label.type) for label in model.labels] == [("text", shape_type)]
    image, expected = page()
    [shapes] = model.detect([image], DetectOptions())
    assert all(
        isinstance(s, Shape) and s.type == shape_type and s.label == "text" and s.source == "auto"
        for s in shapes
    )
    found = [bounds(s) for s in shapes if isinstance(s, Shape)]
    # every drawn line is covered by a region, and every region lies on drawn text
    for box in expected:
        assert max(iou(box, region) for region in found) > 0.5, (box, found)
    for region in found:
        assert max(iou(box, region) for box in expected) > 0.3, (region, expected)
    assert all(abs(s.rotation) < 5 or abs(s.rotation - 360) < 5 for s in shapes if isinstance(s, Shape))


def test_a_blank_frame_has_no_text_and_frames_keep_their_order() -> None:
    model = ppocr_det.load(
        ModelDeclaration(name="ocr", kind="onnx-ppocr-det", path=str(ppocr_det_model()), batch_size=2)
    )
    image, _ = page()
    blank = np.full((300, 200, 3), 255, dtype=np.uint8)
    results = model.detect([blank, image, blank, image], DetectOptions())
    assert results[0] == [] and results[2] == [] and len(results[1]) >= 3 and results[3] == results[1]


def test_unknown_output_is_refused() -> None:
    declaration = ModelDeclaration(
        name="ocr", kind="onnx-ppocr-det", path=str(ppocr_det_model()), options={"output": "circles"}
    )
    with pytest.raises(
        ModelError, match="model 'ocr' .*options.output must be one of polygon, rotated, rectangle"
    ):
        ppocr_det.load(declaration)


def test_the_module_registers_the_kind() -> None:
    registered: dict[str, object] = {}
    ppocr_det.register_model_runners(register=registered.__setitem__)
    assert registered == {"onnx-ppocr-det": ppocr_det.load}


def test_tilted_text_gives_rectangles_rotated_as_cvat_rotates_them() -> None:
    image = np.full((480, 640, 3), 255, dtype=np.uint8)
    cv2.putText(image, "TILTED TEXT", (150, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    # OpenCV's positive angle turns the page counter-clockwise; CVAT's rotation is clockwise
    turn = cv2.getRotationMatrix2D((320, 240), 15, 1.0)
    tilted = cv2.warpAffine(image, turn, (640, 480), borderValue=(255, 255, 255))
    declaration = ModelDeclaration(
        name="ocr", kind="onnx-ppocr-det", path=str(ppocr_det_model()), options={"output": "rotated"}
    )
    [shapes] = ppocr_det.load(declaration).detect([tilted], DetectOptions())
    long_ones = [s for s in shapes if isinstance(s, Shape) and s.points[2] - s.points[0] > 150]
    assert long_ones and all(abs(s.rotation - 345) < 3 for s in long_ones), [
        (s.points, s.rotation) for s in shapes
    ]
