"""The onnx-yolo runner: a real YOLOv8 export finds the astronaut's face; built graphs in every
head's layout decode to known boxes, masks, keypoints and rotated boxes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from annota.core.formats.masks import cvat_to_bitmap
from annota.core.formats.model import Shape
from annota.core.models.runner import DetectOptions, ModelDeclaration, ModelError
from annota.plugins.models import onnx_yolo
from tests.plugins.models.files import astronaut, iou, nudenet_model
from tests.plugins.models.graphs import constant_model

pytest.importorskip("onnxruntime")

FACE = [173.0, 66.0, 274.0, 181.0]
# a 128×64 frame letterboxed into 64×64: scaled by 0.5, 16 rows of padding above
FRAME = np.zeros((64, 128, 3), dtype=np.uint8)


def to_image(x: float, y: float) -> tuple[float, float]:
    return x / 0.5, (y - 16) / 0.5


def declare(path: Path, **fields: object) -> ModelDeclaration:
    return ModelDeclaration(name="m", kind="onnx-yolo", path=str(path), **fields)  # type: ignore[arg-type]


def test_the_module_registers_the_kind() -> None:
    registered: dict[str, object] = {}
    onnx_yolo.register_model_runners(register=registered.__setitem__)
    assert registered == {"onnx-yolo": onnx_yolo.load}


def test_yolov8_export_finds_the_face_on_astronaut() -> None:
    model = onnx_yolo.load(declare(nudenet_model(), conf_threshold=0.3, batch_size=2))
    assert model.labels[1].name == "FACE_FEMALE" and model.labels[1].type == "rectangle"
    image = astronaut()
    mirrored = np.ascontiguousarray(image[:, ::-1])
    frames = model.detect([image, mirrored, image], DetectOptions())
    assert len(frames) == 3
    faces = [s for s in frames[0] if isinstance(s, Shape) and s.label.startswith("FACE")]
    assert len(faces) == 1 and faces[0].source == "auto" and 0.3 <= faces[0].score <= 1
    assert iou(faces[0].points, FACE) > 0.5
    [mirrored_face] = [s for s in frames[1] if isinstance(s, Shape) and s.label.startswith("FACE")]
    expected = [512 - FACE[2], FACE[1], 512 - FACE[0], FACE[3]]
    assert iou(mirrored_face.points, expected) > 0.5
    assert frames[2] == frames[0]  # the same frame in another batch
    # a request's threshold above every score leaves nothing
    assert model.detect([image], DetectOptions(conf_threshold=0.99)) == [[]]


def v8_detections() -> np.ndarray:
    """[1, 4 + 2 classes, 3 anchors]: a, a duplicate NMS removes, b."""
    anchors = [[16, 32, 8, 8, 0.9, 0.1], [17, 32, 8, 8, 0.8, 0.0], [48, 24, 10, 6, 0.05, 0.7]]
    return np.array(anchors, dtype=np.float32).T[None]


EXPECTED_BOXES = [
    ("a", [*to_image(12, 28), *to_image(20, 36)], 0.9),
    ("b", [*to_image(43, 21), *to_image(53, 27)], 0.7),
]


@pytest.mark.parametrize(("batch", "anchors_first"), [("batch", False), (1, False), ("batch", True)])
def test_v8_detection_letterbox_nms_and_batching(
    tmp_path: Path, batch: int | str, anchors_first: bool
) -> None:
    # some exports put anchors first: [1, anchors, 4 + classes]
    output = v8_detections().transpose(0, 2, 1) if anchors_first else v8_detections()
    meta = {"names": "{0: 'a', 1: 'b'}", "task": "detect"}
    path = constant_model(tmp_path / "d.onnx", {"output0": output}, meta, batch=batch)
    model = onnx_yolo.load(declare(path, batch_size=2))
    frames = model.detect([FRAME, FRAME, FRAME], DetectOptions())
    assert len(frames) == 3 and frames[0] == frames[2]
    found = [(s.label, s.points, round(s.score, 3)) for s in frames[0] if isinstance(s, Shape)]
    assert found == [(label, pytest.approx(box, abs=1e-3), score) for label, box, score in EXPECTED_BOXES]


def test_v5_layout_multiplies_objectness(tmp_path: Path) -> None:
    # [1, anchors, 5 + 2]: cx cy w h objectness scores
    rows = [[16, 32, 8, 8, 0.95, 0.95, 0.0], [48, 24, 10, 6, 0.9, 0.1, 0.78], [30, 30, 4, 4, 0.2, 0.9, 0.0]]
    path = constant_model(tmp_path / "v5.onnx", {"output0": np.array([rows])}, {}, batch=1)
    model = onnx_yolo.load(declare(path, labels=["a", "b"]))
    [shapes] = model.detect([FRAME], DetectOptions())
    assert [(s.label, round(s.score, 3)) for s in shapes] == [("a", 0.902), ("b", 0.702)]


def test_segmentation_masks_and_polygons(tmp_path: Path) -> None:
    # one detection covering proto columns 0..8 and rows 4..12 (image 0..64 × 0..64);
    # its mask is on in proto columns 2..5, rows 4..7 only (image x 16..48, y 0..32)
    detections = np.array([[16, 32, 32, 32, 0.9, 1.0]], dtype=np.float32).T[None]
    protos = np.full((1, 1, 16, 16), -10.0, dtype=np.float32)
    protos[0, 0, 4:8, 2:6] = 10.0
    path = constant_model(
        tmp_path / "s.onnx",
        {"output0": detections, "output1": protos},
        {"names": "{0: 'blob'}", "task": "segment", "imgsz": "[64, 64]"},
    )
    model = onnx_yolo.load(declare(path))
    assert model.labels[0].type == "mask"
    [[mask]] = model.detect([FRAME], DetectOptions())
    assert isinstance(mask, Shape) and mask.type == "mask" and mask.score == pytest.approx(0.9)
    bitmap = cvat_to_bitmap(mask.points, 128, 64)
    ys, xs = np.nonzero(bitmap)
    assert abs(xs.min() - 16) <= 2 and abs(xs.max() - 47) <= 2 and ys.min() == 0 and abs(ys.max() - 31) <= 2
    assert bitmap.sum() == pytest.approx(32 * 32, rel=0.15)
    [[polygon]] = model.detect([FRAME], DetectOptions(conv_mask_to_poly=True))
    assert polygon.type == "polygon"
    xy = np.array(polygon.points).reshape(-1, 2)
    assert xy[:, 0].min() == pytest.approx(16, abs=2) and xy[:, 0].max() == pytest.approx(47, abs=2)
    assert xy[:, 1].min() == pytest.approx(0, abs=2) and xy[:, 1].max() == pytest.approx(31, abs=2)


def test_pose_keypoints_become_a_skeleton(tmp_path: Path) -> None:
    # one person with two keypoints: (16, 24) visible, (32, 40) hardly
    detections = np.array([[24, 32, 20, 20, 0.8, 16, 24, 0.9, 32, 40, 0.2]], dtype=np.float32).T[None]
    meta = {"names": "{0: 'person'}", "task": "pose", "kpt_shape": "[2, 3]"}
    path = constant_model(tmp_path / "p.onnx", {"output0": detections}, meta)
    model = onnx_yolo.load(declare(path, options={"keypoints": ["head", "hand"]}))
    [label] = model.labels
    assert label.type == "skeleton" and [(s.name, s.type) for s in label.sublabels] == [
        ("head", "points"),
        ("hand", "points"),
    ]
    assert 'data-label-name="hand"' in label.svg
    [[skeleton]] = model.detect([FRAME], DetectOptions())
    assert isinstance(skeleton, Shape) and skeleton.type == "skeleton" and skeleton.points == []
    assert [(e.type, e.label, e.points, e.outside) for e in skeleton.elements] == [
        ("points", "head", pytest.approx(list(to_image(16, 24))), False),
        ("points", "hand", pytest.approx(list(to_image(32, 40))), True),
    ]


def test_oriented_boxes_become_rotated_rectangles(tmp_path: Path) -> None:
    detections = np.array([[32, 32, 20, 10, 0.9, math.pi / 6]], dtype=np.float32).T[None]
    path = constant_model(
        tmp_path / "o.onnx", {"output0": detections}, {"names": "{0: 'ship'}", "task": "obb"}
    )
    [[box]] = onnx_yolo.load(declare(path)).detect([FRAME], DetectOptions())
    assert isinstance(box, Shape) and box.type == "rectangle"
    assert box.points == pytest.approx([64 - 20, 32 - 10, 64 + 20, 32 + 10], abs=1e-3)
    assert box.rotation == pytest.approx(30, abs=1e-3)


def test_classification_gives_a_tag(tmp_path: Path) -> None:
    path = constant_model(
        tmp_path / "c.onnx",
        {"output0": np.array([[0.1, 0.85, 0.05]])},
        {"names": "['cat', 'dog', 'fox']", "task": "classify"},
    )
    model = onnx_yolo.load(declare(path))
    [[tag]] = model.detect([FRAME], DetectOptions())
    assert (tag.label, tag.source) == ("dog", "auto")
    assert model.detect([FRAME], DetectOptions(conf_threshold=0.9)) == [[]]


def test_unexpected_outputs_name_the_model(tmp_path: Path) -> None:
    path = constant_model(
        tmp_path / "bad.onnx", {"output0": np.zeros((1, 9, 3))}, {"names": "{0: 'a', 1: 'b'}"}
    )
    with pytest.raises(ModelError, match=r"model 'm' \(onnx-yolo\): unexpected output shape \[9, 3\]"):
        onnx_yolo.load(declare(path))
    seg = constant_model(
        tmp_path / "seg.onnx", {"output0": np.zeros((1, 7, 3))}, {"names": "{0: 'a'}", "task": "segment"}
    )
    with pytest.raises(ModelError, match="model 'm'.*unexpected outputs for a YOLO segment model"):
        onnx_yolo.load(declare(seg))


def test_bad_declarations_name_the_model(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "d.onnx", {"output0": v8_detections()}, {})
    with pytest.raises(ModelError, match="model 'm'.*carries no class names: declare `labels`"):
        onnx_yolo.load(declare(path))
    with pytest.raises(
        ModelError, match=r"model 'm'.*output shape \[6, 3\] for a detect model with 3 classes"
    ):
        onnx_yolo.load(declare(path, labels=["a", "b", "c"]))
    with pytest.raises(ModelError, match=r"options: Object contains unknown field `iou`"):
        onnx_yolo.load(declare(path, labels=["a", "b"], options={"iou": 0.5}))
    with pytest.raises(ModelError, match="unknown YOLO task 'depth'"):
        onnx_yolo.load(declare(path, labels=["a", "b"], options={"task": "depth"}))


def test_end_to_end_exports_skip_nms(tmp_path: Path) -> None:
    # [1, detections, 6]: x1 y1 x2 y2 score class, NMS already done (overlapping boxes both stay)
    rows = [[12, 28, 20, 36, 0.9, 0], [13, 28, 21, 36, 0.8, 0], [43, 21, 53, 27, 0.3, 1]]
    meta = {"names": "{0: 'a', 1: 'b'}", "task": "detect", "end2end": "True"}
    path = constant_model(tmp_path / "e2e.onnx", {"output0": np.array([rows])}, meta)
    [shapes] = onnx_yolo.load(declare(path)).detect([FRAME], DetectOptions())
    assert [(s.label, s.points) for s in shapes] == [
        ("a", pytest.approx([*to_image(12, 28), *to_image(20, 36)])),
        ("a", pytest.approx([*to_image(13, 28), *to_image(21, 36)])),
    ]


def test_a_frame_that_is_not_an_image_names_the_model(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "d.onnx", {"output0": v8_detections()}, {"names": "{0: 'a', 1: 'b'}"})
    with pytest.raises(ModelError, match=r"model 'm'.*expected an H×W×3 uint8 frame, got \(64, 128\) uint8"):
        onnx_yolo.load(declare(path)).detect([FRAME[:, :, 0]], DetectOptions())
