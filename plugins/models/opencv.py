"""The ``opencv-haar`` and ``opencv-hog`` runner kinds: OpenCV's bundled detectors, which need no
model file and no download, so a fresh server has models to offer.

* ``opencv-haar``: a Haar cascade. ``path`` names a cascade XML file, or option ``cascade`` one of
  the files OpenCV ships in ``cv2.data.haarcascades`` (default ``haarcascade_frontalface_default.xml``).
  Options ``scale_factor`` (1.1), ``min_neighbors`` (5), ``min_size`` (``[w, h]``, 0: none).
  The label is ``labels[0]`` when declared, else named after the cascade (``face``, ``eye``,
  ``fullbody`` …).
* ``opencv-hog``: the HOG + linear SVM people detector (label ``person``). Options ``win_stride``
  (8), ``padding`` (8), ``scale`` (1.05), ``hit_threshold`` (0).

Neither gives a calibrated confidence: ``score`` is the logistic function of the detector's own
weight (a cascade's level weight, the SVM margin), so 0.5 is the detector's own decision boundary.
OpenCV 5 dropped both detectors; annota depends on ``opencv-python-headless<5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import cv2
import msgspec

from annota.core import hookimpl
from annota.core.formats.model import LabelSpec, Shape, Tag
from annota.core.models.runner import DetectOptions, Image, LoadedModel, ModelDeclaration, ModelError

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
#: what the bundled cascades find, where their file name does not say it plainly
_CASCADE_LABELS = {"frontalface": "face", "profileface": "face", "frontalcatface": "cat face"}

S = TypeVar("S", bound=msgspec.Struct)


class HaarOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    cascade: str = DEFAULT_CASCADE
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: tuple[int, int] | int = 0


class HogOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    win_stride: int = 8
    padding: int = 8
    scale: float = 1.05
    hit_threshold: float = 0.0


def _options(declaration: ModelDeclaration, cls: type[S]) -> S:
    try:
        return msgspec.convert(declaration.options, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise ModelError(f"Model {declaration.name!r}: options: {exc}") from None


def _label(declaration: ModelDeclaration, default: str) -> LabelSpec:
    if declaration.labels is not None and len(declaration.labels) != 1:
        raise ModelError(
            f"Model {declaration.name!r}: labels: a {declaration.kind} model finds one label, "
            f"{len(declaration.labels)} were given"
        )
    return LabelSpec(name=declaration.labels[0] if declaration.labels else default, type="rectangle")


def _score(weight: float) -> float:
    return 1.0 / (1.0 + math.exp(-weight))


def _boxes(
    label: str, rectangles: Sequence[Any], weights: Sequence[Any], threshold: float
) -> list[Tag | Shape]:
    found: list[Tag | Shape] = []
    for (x, y, w, h), weight in zip(rectangles, weights, strict=True):
        score = _score(float(weight))
        if score >= threshold:
            points = [float(x), float(y), float(x + w), float(y + h)]
            found.append(Shape(type="rectangle", label=label, points=points, source="auto", score=score))
    return found


class HaarModel(LoadedModel):
    def __init__(self, declaration: ModelDeclaration) -> None:
        options = _options(declaration, HaarOptions)
        if declaration.path:
            path = Path(declaration.path)
        else:
            if "/" in options.cascade or "\\" in options.cascade:
                raise ModelError(
                    f"Model {declaration.name!r}: options.cascade names a file of OpenCV's cascades "
                    f"(give a path with `path`), got {options.cascade!r}"
                )
            path = Path(cv2.data.haarcascades) / options.cascade  # type: ignore[attr-defined]
        if not path.is_file():
            raise ModelError(f"Model {declaration.name!r}: no cascade file {str(path)!r}")
        try:
            classifier = cv2.CascadeClassifier(str(path))
        except Exception:  # OpenCV raises (SystemError wrapping cv2.error) on a malformed file
            classifier = None
        if classifier is None or classifier.empty():
            raise ModelError(
                f"Model {declaration.name!r}: {str(path)!r} is not a Haar cascade OpenCV can read"
            )
        stem = path.stem.removeprefix("haarcascade_")
        key = stem.split("_")[0]
        super().__init__(declaration, [_label(declaration, _CASCADE_LABELS.get(key, key))])
        self.classifier = classifier
        self.options = options

    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        size = self.options.min_size
        min_size = (size, size) if isinstance(size, int) else size
        results: list[list[Tag | Shape]] = []
        for frame in frames:
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            rectangles, _levels, weights = self.classifier.detectMultiScale3(
                gray,
                scaleFactor=self.options.scale_factor,
                minNeighbors=self.options.min_neighbors,
                minSize=min_size,
                outputRejectLevels=True,
            )
            results.append(_boxes(self.labels[0].name, rectangles, weights, self.threshold(options)))
        return results


class HogModel(LoadedModel):
    def __init__(self, declaration: ModelDeclaration) -> None:
        if declaration.path:
            raise ModelError(
                f"Model {declaration.name!r}: path: opencv-hog uses OpenCV's own people detector"
            )
        self.options = _options(declaration, HogOptions)
        super().__init__(declaration, [_label(declaration, "person")])
        # kept here: the descriptor keeps pointing at this array's memory (freed, it crashes detect)
        self.detector = cv2.HOGDescriptor_getDefaultPeopleDetector()  # type: ignore[attr-defined]
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(self.detector)

    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        stride, pad = self.options.win_stride, self.options.padding
        results: list[list[Tag | Shape]] = []
        window_width, window_height = self.hog.winSize
        for frame in frames:
            if frame.shape[0] < window_height or frame.shape[1] < window_width:
                # no person fits; and OpenCV 4 crashes on a frame smaller than the window
                results.append([])
                continue
            rectangles, weights = self.hog.detectMultiScale(
                frame,
                hitThreshold=self.options.hit_threshold,
                winStride=(stride, stride),
                padding=(pad, pad),
                scale=self.options.scale,
            )
            results.append(_boxes(self.labels[0].name, rectangles, weights, self.threshold(options)))
        return results


@hookimpl
def register_model_runners(register: Any) -> None:
    register("opencv-haar", HaarModel)
    register("opencv-hog", HogModel)
