"""The ``onnx-yolo`` runner kind: Ultralytics YOLOv5/v8/v11 ONNX exports on onnxruntime.

Detection, instance segmentation (masks, or polygons on request), pose (skeletons) and oriented
boxes (rotated rectangles), plus whole-frame classification as tags. Class names, task and input
size come from the export's metadata; frames are letterboxed and batched up to ``batch_size`` when
the model's batch dimension is dynamic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from annota.core import hookimpl
from annota.core.formats.model import Shape, Tag
from annota.core.models.runner import DetectOptions, Image, LoadedModel, ModelDeclaration

from . import _onnx
from ._common import model_error, parse_options
from ._yolo import YoloHead, YoloOptions

KIND = "onnx-yolo"


class OnnxYolo(LoadedModel):
    def __init__(self, declaration: ModelDeclaration) -> None:
        options = parse_options(declaration, YoloOptions)
        self.session = _onnx.open_session(declaration)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = ", ".join(f"{i.name} {i.shape}" for i in inputs)
            raise model_error(declaration, f"expected one NCHW image input, the model has {shapes}")
        self.input_name = inputs[0].name
        batch, channels, height, width = inputs[0].shape
        if _onnx.fixed_dim(channels) not in (None, 3):
            raise model_error(declaration, f"expected a 3-channel image input, the model's has {channels}")
        self.batch_dim = _onnx.fixed_dim(batch)
        metadata = _onnx.metadata(self.session)
        self.head = YoloHead(
            declaration, metadata, options, (_onnx.fixed_dim(height), _onnx.fixed_dim(width))
        )
        self._check_outputs(declaration)
        super().__init__(declaration, self.head.labels())

    def _check_outputs(self, declaration: ModelDeclaration) -> None:
        outputs = self.session.get_outputs()
        ranks = sorted(len(output.shape) for output in outputs)
        wanted = {"classify": [2], "segment": [3, 4]}.get(self.head.task, [3])
        if ranks[: len(wanted)] != wanted:
            found = ", ".join(f"{o.name} {o.shape}" for o in outputs)
            raise model_error(declaration, f"unexpected outputs for a YOLO {self.head.task} model: {found}")
        # a fully known output shape is checked now rather than at the first frame
        if self.head.task != "classify":
            shape = [_onnx.fixed_dim(d) for d in next(o for o in outputs if len(o.shape) == 3).shape[1:]]
            protos = next((o for o in outputs if len(o.shape) == 4), None)
            channels = _onnx.fixed_dim(protos.shape[1]) if protos is not None else 0
            if None not in shape and channels is not None:
                prototypes = np.zeros((1, channels, 1, 1), dtype=np.float32) if protos is not None else None
                self.head.check_layout(tuple(int(d) for d in shape), prototypes)  # type: ignore[arg-type]

    def run(self, blob: np.ndarray) -> list[Any]:
        return list(self.session.run(None, {self.input_name: blob}))

    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        threshold = self.threshold(options)
        results: list[list[Tag | Shape]] = []
        for group in _onnx.batches(frames, self.batch_dim, self.declaration.batch_size):
            blob, boxes = self.head.preprocess([frames[i] for i in group], self.batch_dim)
            results.extend(self.head.decode(self.run(blob), boxes, options, threshold))
        return results

    def close(self) -> None:
        del self.session


def load(declaration: ModelDeclaration) -> LoadedModel:
    return OnnxYolo(declaration)


@hookimpl
def register_model_runners(register: Any) -> None:
    register(KIND, load)
