"""The contract between annota and auto-annotation model runners.

A runner *kind* (``onnx-yolo``, ``opencv-haar``, ``http`` …) is registered by a plugin through the
``register_model_runners`` hook as a factory. The factory turns a ``ModelDeclaration`` (from
``[[models]]`` in ``annota.toml`` or from a plugin's ``register_models``) into a ``LoadedModel``: a
label spec and a batched ``detect``. Results use the neutral dataset model of ``annota.core.formats``
(labels by *name*, CVAT's geometry encodings), so a runner knows nothing about tasks, databases or
HTTP; the host maps model labels to task labels and writes the annotations.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from annota.core.errors import ValidationError
from annota.core.formats.model import LabelSpec, Shape, Tag

__all__ = [
    "DetectOptions",
    "Image",
    "LoadedModel",
    "ModelDeclaration",
    "ModelError",
    "RunnerFactory",
]

#: one decoded frame: ``height × width × 3`` ``uint8`` in OpenCV's BGR channel order
Image = NDArray[np.uint8]


class ModelError(ValidationError):
    """A model cannot be loaded or cannot answer (a file that is not ONNX, unexpected outputs, a
    remote endpoint that timed out or sent garbage, a missing execution provider). The message names
    the model and, where one is to blame, the frame."""


class ModelDeclaration(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One model as an operator declares it (``[[models]]``) or a plugin contributes it.

    Settings common to every kind are fields; what only one kind understands (an endpoint URL, a
    function module, request mappings) goes in ``options``, which that kind validates when loading.
    """

    #: unique across the server; the lambda API's function id
    name: str
    #: the runner kind that loads it (``onnx-yolo``, ``opencv-haar`` …)
    kind: str
    #: a model file, when the kind needs one
    path: str | None = None
    #: class names in output order, when the model file does not carry them (or to rename them)
    labels: list[str] | None = None
    #: detections below this confidence are dropped unless a request asks for another threshold
    conf_threshold: float = 0.5
    #: frames per ``detect`` call
    batch_size: int = 1
    #: execution providers in order of preference (``CUDAExecutionProvider`` …); empty: CPU
    providers: list[str] = []
    #: threads one inference may use (onnxruntime's intra-op threads, OpenCV's thread count)
    threads: int = 1
    #: shown on CVAT's Models page
    description: str = ""
    #: kind-specific settings
    options: dict[str, Any] = {}


class DetectOptions(msgspec.Struct, kw_only=True, frozen=True):
    """What one request asks of ``detect``."""

    #: drop detections below this confidence (``None``: the declaration's ``conf_threshold``)
    conf_threshold: float | None = None
    #: return polygons instead of masks
    conv_mask_to_poly: bool = False


class LoadedModel(abc.ABC):
    """A model ready to run, loaded once per process and reused by every request.

    ``detect`` is synchronous and CPU- (or GPU-) bound: the host calls it in a worker thread, one
    call at a time per model, with at most ``declaration.batch_size`` frames.
    """

    def __init__(self, declaration: ModelDeclaration, labels: Sequence[LabelSpec]) -> None:
        self.declaration = declaration
        #: every label ``detect`` may return; skeletons carry their ``points`` sublabels
        self.labels = list(labels)

    @property
    def name(self) -> str:
        return self.declaration.name

    def threshold(self, options: DetectOptions) -> float:
        if options.conf_threshold is None:
            return self.declaration.conf_threshold
        return options.conf_threshold

    @abc.abstractmethod
    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        """One list of annotations per frame, in the frames' order.

        Shapes use the neutral model's encodings, ``source="auto"`` and ``score`` set to the
        model's confidence. Raise ``ModelError`` naming the model (the host adds the frame).
        """

    def close(self) -> None:
        """Release sessions and connections; a model without any keeps this default."""
        return None


#: ``factory(declaration)`` → a loaded model; raises ``ModelError`` when it cannot load it.
RunnerFactory = Callable[[ModelDeclaration], LoadedModel]
