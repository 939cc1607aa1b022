"""OpenCV's bundled detectors as runner kinds: the face on astronaut.png, a standing person, and
clear errors for options they do not understand."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from annota.core.formats.model import Shape
from annota.core.models.runner import DetectOptions, ModelDeclaration, ModelError
from annota.plugins.models.opencv import HaarModel, HogModel
from tests.models_media import astronaut_image, iou, skimage_photo

FACE = [173.0, 66.0, 274.0, 181.0]


def standing_person() -> np.ndarray:
    """A dark figure standing on a light ground (head, torso, arms, legs), 240 × 320: scikit-image
    ships no photo of a whole standing person, which is what the HOG people detector looks for."""
    image = np.full((320, 240, 3), 200, dtype=np.uint8)
    ink = (40, 40, 40)
    cv2.circle(image, (120, 70), 16, ink, -1)
    cv2.ellipse(image, (120, 140), (26, 52), 0, 0, 360, ink, -1)
    for top, bottom, width in (((108, 185), (102, 270), 14), ((132, 185), (138, 270), 14),
                               ((96, 100), (86, 180), 10), ((144, 100), (154, 180), 10)):  # fmt: skip
        cv2.line(image, top, bottom, ink, width)
    return image


def test_haar_finds_the_astronauts_face() -> None:
    model = HaarModel(ModelDeclaration(name="faces", kind="opencv-haar"))
    assert [label.name for label in model.labels] == ["face"]
    (found,) = model.detect([astronaut_image()], DetectOptions())
    (face,) = found
    assert isinstance(face, Shape) and face.type == "rectangle" and face.label == "face"
    assert iou(face.points, FACE) > 0.5
    assert 0.5 <= face.score <= 1 and face.source == "auto"
    # a threshold above its confidence drops it; frames are answered in order
    high = DetectOptions(conf_threshold=min(1.0, face.score + 1e-6))
    assert model.detect([astronaut_image()], high) == [[]]
    blank = np.zeros((100, 100, 3), dtype=np.uint8)
    assert [len(result) for result in model.detect([blank, astronaut_image()], DetectOptions())] == [0, 1]


def test_haar_takes_another_bundled_cascade_or_a_file(tmp_path: Path) -> None:
    eyes = HaarModel(
        ModelDeclaration(name="eyes", kind="opencv-haar", options={"cascade": "haarcascade_eye.xml"})
    )
    assert eyes.labels[0].name == "eye"
    renamed = HaarModel(
        ModelDeclaration(name="f", kind="opencv-haar", labels=["person"],
                         path=str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_alt2.xml"))  # type: ignore[attr-defined]
    )  # fmt: skip
    ((face,),) = renamed.detect([astronaut_image()], DetectOptions())
    assert face.label == "person" and iou(face.points, FACE) > 0.5
    not_a_cascade = tmp_path / "model.xml"
    not_a_cascade.write_text("<opencv_storage></opencv_storage>")
    cases = [
        (ModelDeclaration(name="m", kind="opencv-haar", options={"cascade": "nope.xml"}), "no cascade file"),
        (ModelDeclaration(name="m", kind="opencv-haar", options={"cascade": "../x.xml"}), "options.cascade"),
        (ModelDeclaration(name="m", kind="opencv-haar", path=str(not_a_cascade)), "not a Haar cascade"),
        (ModelDeclaration(name="m", kind="opencv-haar", options={"scale": 2}), "unknown field `scale`"),
        (ModelDeclaration(name="m", kind="opencv-haar", labels=["a", "b"]), "labels"),
    ]
    for declaration, message in cases:
        with pytest.raises(ModelError) as error:
            HaarModel(declaration)
        assert "Model 'm'" in str(error.value) and message in str(error.value)


def test_hog_finds_a_standing_person_and_nothing_in_a_photo_without_one() -> None:
    model = HogModel(ModelDeclaration(name="people", kind="opencv-hog"))
    assert [label.name for label in model.labels] == ["person"]
    coffee = cv2.imread(str(skimage_photo("coffee.png")))
    small = np.zeros((96, 128, 3), dtype=np.uint8)  # smaller than the detector's 64 × 128 window
    person, nobody, too_small = model.detect([standing_person(), coffee, small], DetectOptions())
    (found,) = person
    assert isinstance(found, Shape) and found.label == "person" and found.score > 0.5
    # the box holds the figure (x 86-154, y 54-277)
    x1, y1, x2, y2 = found.points
    assert x1 <= 86 and y1 <= 54 and x2 >= 154 and y2 >= 270
    assert nobody == [] and too_small == []
    with pytest.raises(ModelError, match="path"):
        HogModel(ModelDeclaration(name="p", kind="opencv-hog", path="/x.xml"))
