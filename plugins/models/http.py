"""The ``http`` runner kind: models served elsewhere, reached over HTTP.

Two protocols:

- ``kserve-v2``: the KServe v2 / Triton inference protocol (``POST /v2/models/{name}/infer`` with
  JSON tensors). With ``decoder = "yolo"`` the server runs an Ultralytics export and annota does the
  letterbox and the decoding (as ``onnx-yolo`` does locally); with ``decoder = "detections"`` the
  server takes the frames as ``UINT8 [N, H, W, 3]`` and answers box, score and class tensors.
- ``json``: one JSON request per frame (SageMaker-style endpoints), built from a template where
  ``"$image"`` is the frame as base64 JPEG/PNG, and read through a response mapping of dotted paths.

Timeouts, retries with exponential backoff (connection failures, timeouts, 429 and 5xx) and
headers whose values may come from the environment (``{env = "NAME"}``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

import cv2
import httpx
import msgspec
import numpy as np

from annota.core import hookimpl
from annota.core.formats.model import LabelSpec, Shape, Tag
from annota.core.models.runner import DetectOptions, Image, LoadedModel, ModelDeclaration, ModelError

from ._common import model_error, parse_options, resolve_secret
from ._yolo import YoloHead, YoloOptions

KIND = "http"
PROTOCOLS = ("kserve-v2", "json")
DECODERS = ("detections", "yolo")
BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
DATATYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


class ResponseMapping(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a ``json`` endpoint's answer keeps its detections (dotted paths; numbers index lists)."""

    detections: str = "predictions"
    box: str = "box"
    box_format: str = "xyxy"
    #: box coordinates are fractions of the frame's width and height
    normalized: bool = False
    #: a label name, or an index into the declaration's ``labels``
    label: str = "label"
    score: str = "score"


class HttpOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    protocol: str
    #: kserve-v2: the server's base URL; json: the endpoint's URL
    url: str
    timeout: float = 30.0
    #: further attempts after a failure that may pass (timeouts, connection errors, 429, 5xx)
    retries: int = 2
    #: seconds before the first retry, doubling for each next one
    backoff: float = 0.5
    headers: dict[str, Any] = {}
    # kserve-v2
    model_name: str | None = None
    model_version: str | None = None
    decoder: str = "detections"
    input_name: str = "images"
    yolo: YoloOptions = msgspec.field(default_factory=YoloOptions)
    boxes_output: str = "boxes"
    scores_output: str = "scores"
    classes_output: str = "classes"
    # json
    request: Any = msgspec.field(default_factory=lambda: {"image": "$image"})
    image_format: str = "jpeg"
    response: ResponseMapping = msgspec.field(default_factory=ResponseMapping)


class HttpModel(LoadedModel):
    def __init__(self, declaration: ModelDeclaration) -> None:
        self.options = options = parse_options(declaration, HttpOptions)
        for field, value, allowed in (
            ("protocol", options.protocol, PROTOCOLS),
            ("decoder", options.decoder, DECODERS),
            ("response.box_format", options.response.box_format, BOX_FORMATS),
            ("image_format", options.image_format, ("jpeg", "png")),
        ):
            if value not in allowed:
                raise model_error(declaration, f"options.{field} must be one of {', '.join(allowed)}")
        if not options.url.startswith(("http://", "https://")):
            raise model_error(declaration, "options.url must be an http:// or https:// URL")
        headers = {
            name: resolve_secret(declaration, f"options.headers.{name}", v)
            for name, v in options.headers.items()
        }
        self.head: YoloHead | None = None
        if options.protocol == "kserve-v2" and options.decoder == "yolo":
            self.head = YoloHead(declaration, {}, options.yolo)
            labels = self.head.labels()
        else:
            if not declaration.labels:
                raise model_error(declaration, "declare the `labels` the endpoint answers")
            labels = [LabelSpec(name=name, type="rectangle") for name in declaration.labels]
        super().__init__(declaration, labels)
        self.client = httpx.Client(timeout=options.timeout, headers=headers, follow_redirects=False)
        name = options.model_name or declaration.name
        version = f"/versions/{options.model_version}" if options.model_version else ""
        self.endpoint = (
            f"{options.url.rstrip('/')}/v2/models/{name}{version}/infer"
            if options.protocol == "kserve-v2"
            else options.url
        )

    # --- transport -------------------------------------------------------------------------

    def _post(self, body: bytes) -> Any:
        """The endpoint's JSON answer, retrying what may pass on a second try."""
        attempts = self.options.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.options.backoff * 2 ** (attempt - 1))
            try:
                response = self.client.post(
                    self.endpoint, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.TimeoutException:
                problem = f"timed out after {self.options.timeout:g} s"
                continue
            except httpx.TransportError as exc:
                problem = f"could not be reached ({exc})"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"answered {response.status_code}: {response.text[:200]!r}"
                continue
            if response.status_code >= 400:
                raise self._error(f"answered {response.status_code}: {response.text[:200]!r}")
            try:
                return response.json()
            except ValueError:
                raise self._error(f"answered something that is not JSON: {response.text[:100]!r}") from None
        raise self._error(f"{problem} ({attempts} attempt{'s' if attempts > 1 else ''})")

    def _error(self, message: str) -> ModelError:
        return model_error(self.declaration, f"POST {self.endpoint} {message}")

    # --- detect ----------------------------------------------------------------------------

    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        threshold = self.threshold(options)
        if self.options.protocol == "json":
            return [self._json_frame(frame, threshold) for frame in frames]
        results: list[list[Tag | Shape]] = []
        size = max(1, self.declaration.batch_size)
        for start in range(0, len(frames), size):
            batch = frames[start : start + size]
            if self.head is not None:
                blob, boxes = self.head.preprocess(batch)
                outputs = self._infer(blob, "FP32")
                results.extend(self.head.decode(list(outputs.values()), boxes, options, threshold))
            else:
                results.extend(self._detections(batch, threshold))
        return results

    def _infer(self, tensor: np.ndarray, datatype: str, outputs: Sequence[str] = ()) -> dict[str, np.ndarray]:
        request: dict[str, Any] = {
            "inputs": [
                {
                    "name": self.options.input_name,
                    "shape": list(tensor.shape),
                    "datatype": datatype,
                    "data": tensor.ravel().tolist(),
                }
            ]
        }
        if outputs:
            request["outputs"] = [{"name": name} for name in outputs]
        answer = self._post(json.dumps(request).encode())
        try:
            tensors = {}
            for output in answer["outputs"]:
                dtype = DATATYPES[output["datatype"]]
                tensors[str(output["name"])] = np.asarray(output["data"], dtype=dtype).reshape(
                    output["shape"]
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._error(f"answered no valid KServe v2 outputs ({type(exc).__name__}: {exc})") from None
        if not tensors:
            raise self._error("answered no outputs")
        return tensors

    def _detections(self, frames: Sequence[Image], threshold: float) -> list[list[Tag | Shape]]:
        # frames of different sizes cannot share one tensor
        results: list[list[Tag | Shape]] = []
        for frame in frames:
            if frame.shape != frames[0].shape:
                return [shapes for f in frames for shapes in self._detections([f], threshold)]
        rgb = np.stack([frame[:, :, ::-1] for frame in frames])
        names = (self.options.boxes_output, self.options.scores_output, self.options.classes_output)
        tensors = self._infer(rgb, "UINT8", names)
        try:
            boxes, scores, classes = (tensors[name] for name in names)
            boxes = boxes.reshape(len(frames), -1, 4)
            scores, classes = scores.reshape(len(frames), -1), classes.reshape(len(frames), -1)
        except (KeyError, ValueError) as exc:
            raise self._error(
                f"answered outputs that are not {', '.join(names)} for {len(frames)} frames ({exc})"
            ) from None
        height, width = frames[0].shape[:2]
        for index in range(len(frames)):
            shapes: list[Tag | Shape] = []
            for box, score, cls in zip(boxes[index], scores[index], classes[index], strict=True):
                if score >= threshold:
                    shapes.append(
                        self._rectangle(
                            [float(v) for v in box],
                            "xyxy",
                            False,
                            self._label(cls),
                            float(score),
                            width,
                            height,
                        )
                    )
            results.append(shapes)
        return results

    def _label(self, value: Any) -> str:
        labels = [label.name for label in self.labels]
        if isinstance(value, str) and value in labels:
            return value
        try:
            index = int(value)
        except (TypeError, ValueError):
            index = -1
        if isinstance(value, float | np.floating) and index != value:
            index = -1
        if not 0 <= index < len(labels):
            raise self._error(f"answered the class {value!r}, which is not one of the declared labels")
        return labels[index]

    def _rectangle(
        self, box: list[float], fmt: str, normalized: bool, label: str, score: float, width: int, height: int
    ) -> Shape:
        if len(box) != 4:
            raise self._error(f"answered a box of {len(box)} values")
        a, b, c, d = box
        if fmt == "xywh":
            c, d = a + c, b + d
        elif fmt == "cxcywh":
            a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
        if normalized:
            a, b, c, d = a * width, b * height, c * width, d * height
        points = [
            min(max(a, 0.0), width),
            min(max(b, 0.0), height),
            min(max(c, 0.0), width),
            min(max(d, 0.0), height),
        ]
        return Shape(type="rectangle", label=label, points=points, source="auto", score=score)

    def _json_frame(self, frame: Image, threshold: float) -> list[Tag | Shape]:
        extension = ".jpg" if self.options.image_format == "jpeg" else ".png"
        ok, encoded = cv2.imencode(extension, frame)
        if not ok:
            raise model_error(self.declaration, "the frame could not be encoded")
        height, width = frame.shape[:2]
        values = {"$image": base64.b64encode(encoded.tobytes()).decode(), "$width": width, "$height": height}
        answer = self._post(json.dumps(_fill(self.options.request, values)).encode())
        mapping = self.options.response
        try:
            detections = _path(answer, mapping.detections)
        except KeyError:
            detections = None
        if not isinstance(detections, list):
            raise self._error(f"answered no list at {mapping.detections!r}")
        shapes: list[Tag | Shape] = []
        for number, detection in enumerate(detections):
            try:
                score = float(_path(detection, mapping.score))
                box = [float(v) for v in _path(detection, mapping.box)]
                label = _path(detection, mapping.label)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise self._error(f"answered detection {number} without {exc}") from None
            if score >= threshold:
                shapes.append(
                    self._rectangle(
                        box, mapping.box_format, mapping.normalized, self._label(label), score, width, height
                    )
                )
        return shapes

    def close(self) -> None:
        self.client.close()


def _fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        return values.get(template, template)
    if isinstance(template, list):
        return [_fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: _fill(item, values) for key, item in template.items()}
    return template


def _path(document: Any, path: str) -> Any:
    """``document`` at a dotted path (``outputs.0.boxes``); an empty path is the document itself."""
    for part in path.split(".") if path else []:
        if isinstance(document, list):
            try:
                document = document[int(part)]
            except (ValueError, IndexError):
                raise KeyError(path) from None
        elif isinstance(document, dict) and part in document:
            document = document[part]
        else:
            raise KeyError(path)
    return document


def load(declaration: ModelDeclaration) -> LoadedModel:
    return HttpModel(declaration)


@hookimpl
def register_model_runners(register: Any) -> None:
    register(KIND, load)
