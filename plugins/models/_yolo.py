"""Ultralytics YOLO's tensors: letterboxed input, and the outputs of its detect, segment, pose, obb
and classify heads turned into neutral shapes.

Shared by ``onnx-yolo`` (onnxruntime in this process) and ``http`` (the same export served by
Triton or KServe). Layouts understood, per image:

- YOLOv8/v11: ``[4 + nc + extra, anchors]`` (or transposed), boxes ``cx, cy, w, h`` in input pixels,
  class scores already through a sigmoid;
- YOLOv5: ``[anchors, 5 + nc + extra]`` with an objectness column multiplied into the class scores;
- end-to-end exports (``end2end`` in the metadata, NMS inside the graph): ``[detections, 6 + extra]``
  with ``x1, y1, x2, y2, score, class``;

where ``extra`` is the mask coefficients (segment: a second output holds the ``[nm, h/4, w/4]``
prototypes), ``K × 2|3`` keypoint values (pose) or one angle in radians (obb).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import msgspec
import numpy as np
from numpy.typing import NDArray

from annota.core.formats.masks import bitmap_to_cvat, bitmap_to_polygons
from annota.core.formats.model import LabelSpec, Shape, Tag
from annota.core.models.runner import DetectOptions, Image, ModelDeclaration

from ._common import label_names, model_error

TASKS = ("detect", "segment", "pose", "obb", "classify")
DEFAULT_SIZE = 640
PAD_VALUE = 114

COCO_KEYPOINTS = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]

Annotation = Tag | Shape


class YoloOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``options`` of a YOLO model; the metadata of an Ultralytics export supplies the rest."""

    #: detect, segment, pose, obb or classify (default: the export's ``task``)
    task: str | None = None
    #: input size, ``640`` or ``[height, width]`` (default: the input's fixed size, the export's ``imgsz``)
    imgsz: int | list[int] | None = None
    iou_threshold: float = 0.45
    max_detections: int = 300
    #: keypoint names of a pose model (default: COCO's 17, or 1…K)
    keypoints: list[str] | None = None
    #: keypoints less visible than this are marked ``outside``
    keypoint_threshold: float = 0.5
    mask_threshold: float = 0.5
    #: the graph does NMS itself (default: the export's ``end2end``)
    end2end: bool | None = None


@dataclass(frozen=True)
class Letterbox:
    """How one frame was fitted into the input: scaled by ``scale``, then shifted by the padding."""

    scale: float
    left: int
    top: int
    width: int
    height: int

    def to_image(self, x: NDArray[np.float32], y: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        return (x - self.left) / self.scale, (y - self.top) / self.scale


def letterbox(image: Image, size: tuple[int, int], out: NDArray[np.uint8]) -> Letterbox:
    """``image`` scaled to fit ``size`` (height, width), centred on grey padding, written into ``out``."""
    height, width = image.shape[:2]
    scale = min(size[0] / height, size[1] / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (size[1] - new_w) // 2, (size[0] - new_h) // 2
    out[...] = PAD_VALUE
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out[top : top + new_h, left : left + new_w] = cv2.resize(
        image, (new_w, new_h), interpolation=interpolation
    )
    return Letterbox(scale, left, top, width, height)


def _literal(value: str | None) -> object:
    if value is None:
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None


def _names(metadata: Mapping[str, str]) -> list[str] | None:
    names = _literal(metadata.get("names"))
    if isinstance(names, dict):
        return [str(names[key]) for key in sorted(names)]
    if isinstance(names, list):
        return [str(name) for name in names]
    return None


def _size(value: object) -> tuple[int, int] | None:
    if isinstance(value, int):
        return value, value
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None


def _skeleton_svg(keypoints: Sequence[str]) -> str:
    """CVAT's skeleton drawing: the keypoints on a circle (CVAT needs one to edit the label)."""
    nodes = []
    for index, name in enumerate(keypoints, start=1):
        angle = 2 * math.pi * (index - 1) / max(1, len(keypoints))
        cx, cy = 50 + 40 * math.sin(angle), 50 - 40 * math.cos(angle)
        nodes.append(
            f'<circle r="1.5" cx="{cx:.2f}" cy="{cy:.2f}" data-type="element node" '
            f'data-element-id="{index}" data-node-id="{index}" data-label-name="{name}"></circle>'
        )
    return "".join(nodes)


class YoloHead:
    """What one YOLO model's outputs mean, fixed at load from its metadata and options."""

    def __init__(
        self,
        declaration: ModelDeclaration,
        metadata: Mapping[str, str],
        options: YoloOptions,
        input_size: tuple[int | None, int | None] = (None, None),
    ) -> None:
        self.declaration = declaration
        self.options = options
        self.task = options.task or metadata.get("task") or "detect"
        if self.task not in TASKS:
            raise model_error(declaration, f"unknown YOLO task {self.task!r} (one of {', '.join(TASKS)})")
        self.names = label_names(declaration, _names(metadata))
        fixed = input_size if input_size[0] and input_size[1] else None
        size = fixed or _size(options.imgsz) or _size(_literal(metadata.get("imgsz")))
        self.size: tuple[int, int] = size or (DEFAULT_SIZE, DEFAULT_SIZE)  # type: ignore[assignment]
        if fixed and options.imgsz is not None and _size(options.imgsz) != fixed:
            raise model_error(
                declaration, f"options.imgsz {options.imgsz} differs from the input's {list(fixed)}"
            )
        stride = _literal(metadata.get("stride"))
        if isinstance(stride, int) and stride > 0 and any(side % stride for side in self.size):
            raise model_error(
                declaration, f"imgsz {list(self.size)} is not a multiple of the stride {stride}"
            )
        self.end2end = options.end2end if options.end2end is not None else metadata.get("end2end") == "True"
        self.keypoints: list[str] = []
        self.keypoint_dims = 0
        if self.task == "pose":
            self._keypoint_shape(metadata)

    def _keypoint_shape(self, metadata: Mapping[str, str]) -> None:
        shape = _literal(metadata.get("kpt_shape"))
        if isinstance(shape, list | tuple) and len(shape) == 2 and shape[1] in (2, 3):
            count, self.keypoint_dims = int(shape[0]), int(shape[1])
        elif self.options.keypoints:
            count, self.keypoint_dims = len(self.options.keypoints), 3
        else:
            raise model_error(
                self.declaration, "a pose model needs `kpt_shape` in its metadata or options.keypoints"
            )
        if self.options.keypoints is not None:
            if len(self.options.keypoints) != count:
                raise model_error(
                    self.declaration,
                    f"options.keypoints has {len(self.options.keypoints)} names, the model {count}",
                )
            self.keypoints = list(self.options.keypoints)
        else:
            self.keypoints = COCO_KEYPOINTS if count == 17 else [str(i + 1) for i in range(count)]

    # --- labels and input ------------------------------------------------------------------

    def labels(self) -> list[LabelSpec]:
        if self.task == "pose":
            sublabels = [LabelSpec(name=name, type="points") for name in self.keypoints]
            svg = _skeleton_svg(self.keypoints)
            return [
                LabelSpec(name=name, type="skeleton", sublabels=sublabels, svg=svg) for name in self.names
            ]
        kind = {"detect": "rectangle", "obb": "rectangle", "segment": "mask", "classify": "tag"}[self.task]
        return [LabelSpec(name=name, type=kind) for name in self.names]

    def preprocess(
        self, frames: Sequence[Image], batch: int | None = None
    ) -> tuple[NDArray[np.float32], list[Letterbox]]:
        """NCHW float RGB in [0, 1] (``batch`` rows, zero-filled past the frames)."""
        height, width = self.size
        canvas = np.empty((height, width, 3), dtype=np.uint8)
        blob = np.zeros((max(batch or 0, len(frames)), 3, height, width), dtype=np.float32)
        boxes = []
        for index, frame in enumerate(frames):
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise model_error(
                    self.declaration, f"expected an H×W×3 uint8 frame, got {frame.shape} {frame.dtype}"
                )
            boxes.append(letterbox(frame, self.size, canvas))
            # BGR → RGB and HWC → CHW in one strided copy, scaled in place
            np.multiply(canvas[:, :, ::-1].transpose(2, 0, 1), 1 / 255, out=blob[index], dtype=np.float32)
        return blob, boxes

    # --- output ----------------------------------------------------------------------------

    def _extra(self, prototypes: NDArray[np.float32] | None) -> int:
        if self.task == "segment":
            assert prototypes is not None
            return int(prototypes.shape[1])
        if self.task == "pose":
            return len(self.keypoints) * self.keypoint_dims
        return 1 if self.task == "obb" else 0

    def decode(
        self,
        outputs: Sequence[NDArray[np.float32]],
        boxes: Sequence[Letterbox],
        options: DetectOptions,
        threshold: float,
    ) -> list[list[Annotation]]:
        """One list of annotations per letterboxed frame from the model's outputs for the batch."""
        outputs = [np.asarray(output) for output in outputs]
        if self.task == "classify":
            return [self._classify(outputs[0][index], threshold) for index in range(len(boxes))]
        predictions = next((o for o in outputs if o.ndim == 3), None)
        prototypes = next((o for o in outputs if o.ndim == 4), None)
        if predictions is None or (self.task == "segment" and prototypes is None):
            shapes = ", ".join(str(list(o.shape)) for o in outputs)
            wanted = "a 3-d output and 4-d mask prototypes" if self.task == "segment" else "a 3-d output"
            raise model_error(
                self.declaration, f"unexpected outputs {shapes} for task {self.task}: expected {wanted}"
            )
        extra = self._extra(prototypes)
        result = []
        for index, box in enumerate(boxes):
            candidates = self._candidates(predictions[index], extra, threshold)
            protos = prototypes[index] if prototypes is not None else None
            result.append(self._shapes(candidates, box, protos, options))
        return result

    def check_layout(self, shape: tuple[int, int], prototypes: NDArray[np.float32] | None) -> None:
        """Raise the decoding error an output of this (per-image) shape would cause."""
        self._candidates(np.zeros(shape, dtype=np.float32), self._extra(prototypes), math.inf)

    def _classify(self, scores: NDArray[np.float32], threshold: float) -> list[Annotation]:
        scores = np.ravel(scores)
        if scores.size != len(self.names):
            raise model_error(
                self.declaration, f"the output has {scores.size} classes, the labels {len(self.names)}"
            )
        best = int(np.argmax(scores))
        return [Tag(label=self.names[best], source="auto")] if scores[best] >= threshold else []

    def _layout_error(self, shape: tuple[int, ...], extra: int) -> Exception:
        nc = len(self.names)
        return model_error(
            self.declaration,
            f"unexpected output shape {list(shape)} for a {self.task} model with {nc} classes"
            f" (expected [{4 + nc + extra}, anchors], [anchors, {5 + nc + extra}]"
            f" or, end-to-end, [n, {6 + extra}])",
        )

    def _candidates(self, prediction: NDArray[np.float32], extra: int, threshold: float) -> _Candidates:
        nc = len(self.names)
        if self.end2end:
            if prediction.shape[-1] != 6 + extra or self.task == "obb":
                raise self._layout_error(prediction.shape, extra)
            rows = prediction[prediction[:, 4] >= threshold]
            return _Candidates(
                rows[:, 0:4], rows[:, 4], rows[:, 5].astype(np.int32), rows[:, 6:], xyxy=True, nms=False
            )
        width = 4 + nc + extra
        if prediction.shape[0] == width:  # v8/v11: channels first, filter before transposing
            scores = prediction[4 : 4 + nc]
            classes = scores.argmax(axis=0)
            confidence = scores[classes, np.arange(scores.shape[1])]
            keep = confidence >= threshold
            rows = prediction[:, keep].T
            return _Candidates(
                rows[:, :4], confidence[keep], classes[keep].astype(np.int32), rows[:, 4 + nc :]
            )
        if prediction.shape[1] == width:
            return self._candidates(prediction.T, extra, threshold)
        if prediction.shape[0] == width + 1 and prediction.shape[1] != width + 1:
            prediction = prediction.T
        if prediction.shape[1] == width + 1:  # v5: objectness × class score
            rows = prediction[prediction[:, 4] >= threshold]
            scores = rows[:, 5 : 5 + nc] * rows[:, 4:5]
            classes = scores.argmax(axis=1)
            confidence = scores[np.arange(len(rows)), classes]
            keep = confidence >= threshold
            rows = rows[keep]
            return _Candidates(
                rows[:, :4], confidence[keep], classes[keep].astype(np.int32), rows[:, 5 + nc :]
            )
        raise self._layout_error(prediction.shape, extra)

    def _select(self, candidates: _Candidates) -> NDArray[np.intp]:
        """Indices of the detections kept by class-wise NMS, best first, at most max_detections."""
        if len(candidates.scores) == 0:
            return np.zeros(0, dtype=np.intp)
        order = np.argsort(-candidates.scores, kind="stable")
        if candidates.nms:
            iou, scores = self.options.iou_threshold, candidates.scores.astype(np.float32)
            dnn: Any = cv2.dnn  # its stubs want lists where arrays work (and are faster)
            if self.task == "obb":
                # classes kept apart by shifting each to its own region, as NMS itself is class-blind
                shift = candidates.classes.astype(np.float32) * 8192
                b = candidates.boxes
                angles = np.degrees(candidates.extra[:, 0])
                rotated = [
                    ((float(x + s), float(y + s)), (float(w), float(h)), float(a))
                    for (x, y, w, h), s, a in zip(b, shift, angles, strict=True)
                ]
                kept = dnn.NMSBoxesRotated(rotated, scores, 0.0, iou)
            else:
                xywh = candidates.xywh()
                kept = dnn.NMSBoxesBatched(xywh, scores, candidates.classes, 0.0, iou)
            kept = np.asarray(kept, dtype=np.intp).reshape(-1)
            order = kept[np.argsort(-candidates.scores[kept], kind="stable")]
        return order[: self.options.max_detections]

    def _shapes(
        self,
        candidates: _Candidates,
        box: Letterbox,
        prototypes: NDArray[np.float32] | None,
        options: DetectOptions,
    ) -> list[Annotation]:
        shapes: list[Annotation] = []
        for index in self._select(candidates):
            label = (
                self.names[int(candidates.classes[index])]
                if 0 <= candidates.classes[index] < len(self.names)
                else None
            )
            if label is None:
                raise model_error(
                    self.declaration,
                    f"the model output class {int(candidates.classes[index])}, it has {len(self.names)}",
                )
            score = float(candidates.scores[index])
            x1, y1, x2, y2 = candidates.xyxy_at(index)
            (x1, x2), (y1, y2) = box.to_image(np.array([x1, x2]), np.array([y1, y2]))
            if self.task == "obb":
                cx, cy, w, h = (float(v) for v in candidates.boxes[index])
                (cx,), (cy,) = box.to_image(np.array([cx]), np.array([cy]))
                w, h = w / box.scale, h / box.scale
                rotation = math.degrees(float(candidates.extra[index, 0])) % 360
                points = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
                shapes.append(
                    Shape(
                        type="rectangle",
                        label=label,
                        points=points,
                        rotation=rotation,
                        source="auto",
                        score=score,
                    )
                )
                continue
            x1, x2 = float(np.clip(x1, 0, box.width)), float(np.clip(x2, 0, box.width))
            y1, y2 = float(np.clip(y1, 0, box.height)), float(np.clip(y2, 0, box.height))
            if x2 <= x1 or y2 <= y1:
                continue
            if self.task == "segment":
                assert prototypes is not None
                shape = self._mask(
                    candidates.extra[index], prototypes, box, (x1, y1, x2, y2), label, score, options
                )
                if shape is not None:
                    shapes.append(shape)
            elif self.task == "pose":
                shapes.append(self._skeleton(candidates.extra[index], box, label, score))
            else:
                shapes.append(
                    Shape(type="rectangle", label=label, points=[x1, y1, x2, y2], source="auto", score=score)
                )
        return shapes

    def _mask(
        self,
        coefficients: NDArray[np.float32],
        prototypes: NDArray[np.float32],
        box: Letterbox,
        xyxy: tuple[float, float, float, float],
        label: str,
        score: float,
        options: DetectOptions,
    ) -> Shape | None:
        channels, proto_h, proto_w = prototypes.shape
        logits = (coefficients.astype(np.float32) @ prototypes.reshape(channels, -1)).reshape(
            proto_h, proto_w
        )
        left, top = math.floor(xyxy[0]), math.floor(xyxy[1])
        right, bottom = min(box.width, math.ceil(xyxy[2])), min(box.height, math.ceil(xyxy[3]))
        # image pixel (x, y) of the box's crop ← prototype pixel: undo the letterbox and the /4 scale
        sx, sy = proto_w / self.size[1], proto_h / self.size[0]
        ax, ay = 1 / (sx * box.scale), 1 / (sy * box.scale)
        bx = (0.5 / sx - box.left) / box.scale - 0.5 - left
        by = (0.5 / sy - box.top) / box.scale - 0.5 - top
        warp = np.array([[ax, 0, bx], [0, ay, by]], dtype=np.float64)
        crop = cv2.warpAffine(
            logits,
            warp,
            (right - left, bottom - top),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        t = min(max(self.options.mask_threshold, 1e-6), 1 - 1e-6)
        bitmap = crop > math.log(t / (1 - t))  # the sigmoid's threshold, on the logits
        if not bitmap.any():
            return None
        if options.conv_mask_to_poly:
            polygons = bitmap_to_polygons(bitmap)
            if not polygons:
                return None
            largest = max(
                polygons, key=lambda p: cv2.contourArea(np.asarray(p, dtype=np.float32).reshape(-1, 2))
            )
            points = [v + (left if i % 2 == 0 else top) for i, v in enumerate(largest)]
            return Shape(type="polygon", label=label, points=points, source="auto", score=score)
        points = bitmap_to_cvat(bitmap)
        points[-4:] = [points[-4] + left, points[-3] + top, points[-2] + left, points[-1] + top]
        return Shape(type="mask", label=label, points=points, source="auto", score=score)

    def _skeleton(self, values: NDArray[np.float32], box: Letterbox, label: str, score: float) -> Shape:
        keypoints = values.reshape(len(self.keypoints), self.keypoint_dims)
        xs, ys = box.to_image(keypoints[:, 0], keypoints[:, 1])
        visible = keypoints[:, 2] if self.keypoint_dims == 3 else np.ones(len(self.keypoints))
        elements = [
            Shape(
                type="points",
                label=name,
                points=[float(np.clip(x, 0, box.width)), float(np.clip(y, 0, box.height))],
                outside=bool(v < self.options.keypoint_threshold),
                source="auto",
                score=float(v) if self.keypoint_dims == 3 else score,
            )
            for name, x, y, v in zip(self.keypoints, xs, ys, visible, strict=True)
        ]
        return Shape(type="skeleton", label=label, points=[], elements=elements, source="auto", score=score)


@dataclass
class _Candidates:
    """Detections above the threshold before NMS, in input (letterboxed) pixels."""

    boxes: NDArray[np.float32]  # cx, cy, w, h (or x1, y1, x2, y2 when ``xyxy``)
    scores: NDArray[np.float32]
    classes: NDArray[np.int32]
    extra: NDArray[np.float32]
    xyxy: bool = False
    nms: bool = True

    def xywh(self) -> NDArray[np.float32]:
        b = self.boxes
        if self.xyxy:
            return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
        return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 2], b[:, 3]], axis=1)

    def xyxy_at(self, index: int) -> tuple[float, float, float, float]:
        a, b, c, d = (float(v) for v in self.boxes[index])
        if self.xyxy:
            return a, b, c, d
        return a - c / 2, b - d / 2, a + c / 2, b + d / 2
