"""The cvat-function runner gives the shapes cvat_sdk's own auto-annotation driver would upload for
the same function module, by label name instead of task label id."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import pytest

from annota.core.formats.model import Shape, Tag
from annota.core.models.runner import DetectOptions, ModelDeclaration, ModelError
from annota.plugins.models import cvat_function

cvataa = pytest.importorskip("cvat_sdk.auto_annotation")
driver = pytest.importorskip("cvat_sdk.auto_annotation.driver")
from cvat_sdk import models  # noqa: E402

from tests.plugins.models import sample_function  # noqa: E402

SAMPLE = Path(__file__).with_name("sample_function.py")
TASK_ID_SHIFT = 100  # the task's labels, sublabels and attributes have other ids than the function's


def frame(color: tuple[int, int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = color
    return image


def task_labels(spec: Any, to_poly: bool) -> tuple[list[Any], dict[int, str], dict[int, str]]:
    """The function's labels as a task would have them (new ids; polygons for masks when masks are
    converted, as the driver demands), and names by those ids."""
    names: dict[int, str] = {}
    attributes: dict[int, str] = {}

    def copy(label: Any, cls: Any) -> Any:
        names[label.id + TASK_ID_SHIFT] = label.name
        attrs = []
        for a in getattr(label, "attributes", []):
            attributes[a.id + TASK_ID_SHIFT] = a.name
            attrs.append(
                models.AttributeRequest(
                    name=a.name,
                    id=a.id + TASK_ID_SHIFT,
                    input_type=a.input_type,
                    values=a.values,
                    mutable=False,
                )
            )
        subs = [copy(s, models.SublabelRequest) for s in getattr(label, "sublabels", [])]
        kind = getattr(label, "type", "any")
        kind = "polygon" if to_poly and kind == "mask" else kind
        return cls(name=label.name, id=label.id + TASK_ID_SHIFT, type=kind, attributes=attrs, sublabels=subs)

    return [copy(label, models.PatchedLabelRequest) for label in spec.labels], names, attributes


def with_cvat_sdk_driver(
    function: Any, image: np.ndarray, conf: float | None, to_poly: bool
) -> list[tuple[Any, ...]]:
    """What `cvat-cli task auto-annotate` computes for one frame before uploading it, read back by name."""
    labels, names, attributes = task_labels(function.spec, to_poly)
    mapper = driver._AnnotationMapper(
        logging.getLogger("test"),
        function.spec.labels,
        labels,
        allow_unmatched_labels=False,
        conv_mask_to_poly=to_poly,
    )
    context = driver._DetectionFunctionContextImpl(
        frame_name="frame_000000", conf_threshold=conf, conv_mask_to_poly=to_poly
    )
    tags, shapes = mapper.validate_and_remap(
        function.detect(context, PIL.Image.fromarray(image[:, :, ::-1])), 0
    )

    def attrs(annotation: Any) -> dict[str, str]:
        return {attributes[a.spec_id]: a.value for a in getattr(annotation, "attributes", [])}

    def element(e: Any) -> tuple[Any, ...]:
        return (names[e.label_id], e.points, getattr(e, "outside", False), attrs(e))

    found = [("tag", names[t.label_id], attrs(t)) for t in tags]
    for s in shapes:
        elements = [element(e) for e in getattr(s, "elements", [])]
        rotation, score, z = getattr(s, "rotation", 0.0), getattr(s, "score", 1.0), getattr(s, "z_order", 0)
        found.append(
            (
                s.type.value,
                names[s.label_id],
                [float(v) for v in getattr(s, "points", [])],
                rotation,
                score,
                z,
                attrs(s),
                elements,
                s.source,
            )
        )
    return found


def with_annota(result: list[Tag | Shape]) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [("tag", t.label, t.attributes) for t in result if isinstance(t, Tag)]
    for s in result:
        if isinstance(s, Shape):
            elements = [(e.label, e.points, e.outside, e.attributes) for e in s.elements]
            found.append(
                (s.type, s.label, s.points, s.rotation, s.score, s.z_order, s.attributes, elements, s.source)
            )
    return found


def test_the_module_registers_the_kind() -> None:
    registered: dict[str, object] = {}
    cvat_function.register_model_runners(register=registered.__setitem__)
    assert registered == {"cvat-function": cvat_function.load}


def test_spec_becomes_labels_by_name() -> None:
    model = cvat_function.load(
        ModelDeclaration(name="fn", kind="cvat-function", options={"file": str(SAMPLE)})
    )
    labels = {label.name: label for label in model.labels}
    assert [(n, label.type) for n, label in labels.items()] == [
        ("car", "rectangle"),
        ("outline", "polygon"),
        ("blob", "mask"),
        ("person", "skeleton"),
        ("scene", "tag"),
    ]
    [color] = labels["car"].attributes
    assert (color.name, color.input_type, color.values, color.default_value) == (
        "color",
        "select",
        ["red", "blue"],
        "red",
    )
    assert [(s.name, s.type) for s in labels["person"].sublabels] == [("head", "points"), ("foot", "points")]
    assert labels["person"].sublabels[0].attributes[0].input_type == "checkbox"


@pytest.mark.parametrize(("conf", "to_poly"), [(0.5, False), (0.9, True), (None, False)])
def test_same_shapes_as_the_cvat_sdk_driver(conf: float | None, to_poly: bool) -> None:
    declaration = ModelDeclaration(
        name="fn",
        kind="cvat-function",
        options={"module": "tests.plugins.models.sample_function", "params": {"threshold": 100}},
    )
    model = cvat_function.load(declaration)
    function = sample_function.create(threshold=100)
    images = [
        frame((0, 0, 255), (10, 5, 30, 25)),
        frame((255, 0, 0), (0, 0, 60, 40)),
        frame((0, 0, 0), (0, 0, 1, 1)),
    ]
    # a sparse frame: a score of 0.5 is below the 0.9 threshold
    sparse = frame((255, 255, 255), (0, 0, 20, 10))
    sparse[:, :10:2] = 0
    images.append(sparse)
    # the host's threshold comes from the request or the declaration; the driver's from the CLI
    options = DetectOptions(conf_threshold=conf, conv_mask_to_poly=to_poly)
    results = model.detect(images, options)
    for image, result in zip(images, results, strict=True):
        expected = with_cvat_sdk_driver(function, image, model.threshold(options), to_poly)
        assert with_annota(result) == expected
    kinds = {s.type for result in results for s in result if isinstance(s, Shape)}
    assert kinds == (
        {"rectangle", "polygon", "skeleton"} if to_poly else {"rectangle", "polygon", "skeleton", "mask"}
    )


BAD_FUNCTION = """
import cvat_sdk.auto_annotation as cvataa
from cvat_sdk import models
spec = cvataa.DetectionFunctionSpec(
    labels=[cvataa.label_spec("car", 1, type="rectangle"), cvataa.label_spec("blob", 2, type="mask")]
)
def detect(context, image):
    return OUTPUT
"""


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("[cvataa.rectangle(7, [0, 0, 1, 1])]", "a shape with unknown label id 7"),
        ("[cvataa.polygon(1, [0, 0, 1, 1, 0, 1])]", "a polygon for label 'car' of type 'rectangle'"),
        (
            "[models.LabeledShapeRequest(label_id=1, frame=3, type='rectangle', points=[0, 0, 1, 1])]",
            "a shape with frame 3",
        ),
        (
            "[cvataa.mask(2, [0, 4, 0, 0, 1, 1])] if context.conv_mask_to_poly else []",
            "a mask although polygons were asked for",
        ),
        ("[None]", "a NoneType"),
        ("1 / 0", "detect failed: ZeroDivisionError"),
    ],
)
def test_bad_function_output_names_the_model(tmp_path: Path, output: str, message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(BAD_FUNCTION.replace("OUTPUT", output))
    model = cvat_function.load(
        ModelDeclaration(name="bad-fn", kind="cvat-function", options={"file": str(path)})
    )
    with pytest.raises(ModelError, match=f"model 'bad-fn' \\(cvat-function\\): .*{message}"):
        model.detect([frame((255, 0, 0), (1, 1, 5, 5))], DetectOptions(conv_mask_to_poly=True))


def test_bad_modules_name_the_model(tmp_path: Path) -> None:
    def load(**options: Any) -> Any:
        return cvat_function.load(ModelDeclaration(name="fn", kind="cvat-function", options=options))

    with pytest.raises(ModelError, match="model 'fn'.*exactly one of options.module and options.file"):
        load()
    with pytest.raises(ModelError, match="model 'fn'.*failed to import: ModuleNotFoundError"):
        load(module="no_such_function_module")
    plain = tmp_path / "plain.py"
    plain.write_text("x = 1\n")
    with pytest.raises(ModelError, match="model 'fn'.*not a detection function"):
        load(file=str(plain))
    with pytest.raises(ModelError, match=r"model 'fn'.*create\(\*\*params\) failed: TypeError"):
        load(file=str(SAMPLE), params={"colour": 1})
