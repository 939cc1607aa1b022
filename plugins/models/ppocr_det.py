"""The ``onnx-ppocr-det`` runner kind: PaddleOCR's DB text detector (PP-OCRv3/v4 det ONNX exports)
on onnxruntime, giving text regions as polygons, rotated rectangles or plain boxes.

DB predicts a per-pixel text probability on a shrunk version of each text region; regions are the
connected parts of the map above ``binary_threshold``, scored by their mean probability (kept when
at least the confidence threshold) and grown back ("unclipped") by ``area × unclip_ratio /
perimeter``, the inverse of the shrink the model was trained with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import msgspec
import numpy as np
from numpy.typing import NDArray

from annota.core import hookimpl
from annota.core.formats.model import LabelSpec, Shape, Tag
from annota.core.models.runner import DetectOptions, Image, LoadedModel, ModelDeclaration

from . import _onnx
from ._common import model_error, parse_options

KIND = "onnx-ppocr-det"
OUTPUTS = ("polygon", "rotated", "rectangle")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class PPOCRDetOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: polygon (the region's outline), rotated (its minimal rotated rectangle) or rectangle
    output: str = "polygon"
    #: frames are scaled down so their longer side is at most this (then to multiples of 32)
    max_side: int = 960
    #: a pixel is text when the map says at least this
    binary_threshold: float = 0.3
    unclip_ratio: float = 1.6
    #: regions whose shorter side is under this many pixels (of the map) are noise
    min_size: int = 3
    max_candidates: int = 1000


class PPOCRDet(LoadedModel):
    def __init__(self, declaration: ModelDeclaration) -> None:
        self.options = parse_options(declaration, PPOCRDetOptions)
        if self.options.output not in OUTPUTS:
            raise model_error(declaration, f"options.output must be one of {', '.join(OUTPUTS)}")
        self.session = _onnx.open_session(declaration)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 1 or len(outputs[0].shape) != 4:
            found = ", ".join(f"{x.name} {x.shape}" for x in [*inputs, *outputs])
            raise model_error(
                declaration, f"expected one NCHW input and one N×1×H×W probability map, found {found}"
            )
        self.input_name = inputs[0].name
        self.batch_dim = _onnx.fixed_dim(inputs[0].shape[0])
        labels = declaration.labels or ["text"]
        if len(labels) != 1:
            raise model_error(declaration, "a text detector has one label")
        self.label = labels[0]
        kind = "rectangle" if self.options.output != "polygon" else "polygon"
        super().__init__(declaration, [LabelSpec(name=self.label, type=kind)])

    def _input_size(self, frame: Image) -> tuple[int, int]:
        height, width = frame.shape[:2]
        scale = min(1.0, self.options.max_side / max(height, width))
        return max(32, round(height * scale / 32) * 32), max(32, round(width * scale / 32) * 32)

    def _blob(self, frames: Sequence[Image], size: tuple[int, int]) -> NDArray[np.float32]:
        blob = np.zeros((max(len(frames), self.batch_dim or 0), 3, *size), dtype=np.float32)
        for index, frame in enumerate(frames):
            resized = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            rgb = resized[:, :, ::-1].astype(np.float32) / 255
            blob[index] = ((rgb - MEAN) / STD).transpose(2, 0, 1)
        return blob

    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        threshold = self.threshold(options)
        results: list[list[Tag | Shape]] = [[] for _ in frames]
        # frames of one size (a video's) share batches; others run apart
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, frame in enumerate(frames):
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise model_error(self.declaration, f"expected an H×W×3 frame, got {frame.shape}")
            by_size.setdefault(self._input_size(frame), []).append(index)
        for size, indices in by_size.items():
            for group in _onnx.batches(indices, self.batch_dim, self.declaration.batch_size):
                chosen = [indices[i] for i in group]
                blob = self._blob([frames[i] for i in chosen], size)
                maps = self.session.run(None, {self.input_name: blob})[0]
                for row, index in enumerate(chosen):
                    results[index] = list(self._regions(maps[row, 0], frames[index].shape[:2], threshold))
        return results

    def _regions(
        self, probability: NDArray[np.float32], image_size: tuple[int, ...], threshold: float
    ) -> list[Shape]:
        height, width = probability.shape
        scale = np.array([image_size[1] / width, image_size[0] / height], dtype=np.float32)
        bitmap = (probability > self.options.binary_threshold).astype(np.uint8)
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        shapes = []
        for contour in contours[: self.options.max_candidates]:
            if len(contour) < 3 or min(cv2.minAreaRect(contour)[1]) < self.options.min_size:
                continue
            score = _mean_inside(probability, contour)
            if score < threshold:
                continue
            # the geometry in image pixels, so rotated rectangles survive an anisotropic resize
            outline = contour.reshape(-1, 2).astype(np.float32) * scale
            shape = self._shape(outline, image_size, score)
            if shape is not None:
                shapes.append(shape)
        return shapes

    def _shape(self, outline: NDArray[np.float32], image_size: tuple[int, ...], score: float) -> Shape | None:
        area, perimeter = cv2.contourArea(outline), cv2.arcLength(outline, True)
        if perimeter <= 0 or area <= 0:
            return None
        distance = area * self.options.unclip_ratio / perimeter
        image_h, image_w = image_size[0], image_size[1]
        if self.options.output == "polygon":
            polygon = _grow_polygon(outline, distance)
            if polygon is None:
                return None
            polygon[:, 0] = polygon[:, 0].clip(0, image_w)
            polygon[:, 1] = polygon[:, 1].clip(0, image_h)
            return Shape(
                type="polygon",
                label=self.label,
                points=[float(v) for v in polygon.ravel()],
                source="auto",
                score=score,
            )
        (cx, cy), (w, h), angle = cv2.minAreaRect(outline)
        # OpenCV reports a near-level box as 90° with its sides swapped: keep angles in (-45°, 45°]
        while angle > 45:
            angle, w, h = angle - 90, h, w
        while angle <= -45:
            angle, w, h = angle + 90, h, w
        w, h = w + 2 * distance, h + 2 * distance
        if self.options.output == "rotated":
            rotation = round(angle, 3) % 360
            points = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            return Shape(
                type="rectangle",
                label=self.label,
                points=points,
                rotation=rotation,
                source="auto",
                score=score,
            )
        corners = cv2.boxPoints(((cx, cy), (w, h), angle))
        x1, y1 = corners.min(axis=0).clip(0, [image_w, image_h])
        x2, y2 = corners.max(axis=0).clip(0, [image_w, image_h])
        return Shape(
            type="rectangle",
            label=self.label,
            points=[float(x1), float(y1), float(x2), float(y2)],
            source="auto",
            score=score,
        )

    def close(self) -> None:
        del self.session


def _mean_inside(probability: NDArray[np.float32], contour: NDArray[Any]) -> float:
    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - [x, y]], 1)
    return float(cv2.mean(probability[y : y + h, x : x + w], mask)[0])


def _grow_polygon(outline: NDArray[np.float32], distance: float) -> NDArray[np.float32] | None:
    """The outline pushed outwards by ``distance`` (a round-cornered offset, by dilation)."""
    margin = math.ceil(distance) + 2
    origin = np.floor(outline.min(axis=0)) - margin
    local = np.round(outline - origin).astype(np.int32)
    size = local.max(axis=0) + margin + 1
    canvas = np.zeros((int(size[1]), int(size[0])), dtype=np.uint8)
    cv2.fillPoly(canvas, [local], 1)
    radius = max(1, round(distance))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(canvas, kernel)
    contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    simple = cv2.approxPolyDP(largest, 0.002 * cv2.arcLength(largest, True) + 0.5, True).reshape(-1, 2)
    if len(simple) < 3:
        return None
    grown_outline: NDArray[np.float32] = simple.astype(np.float32) + origin.astype(np.float32)
    return grown_outline


def load(declaration: ModelDeclaration) -> LoadedModel:
    return PPOCRDet(declaration)


@hookimpl
def register_model_runners(register: Any) -> None:
    register(KIND, load)
