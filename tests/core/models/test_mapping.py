"""CVAT's label ``mapping`` of the lambda API applied to a model's detections: labels, attributes
and skeleton sublabels renamed to the task's, masks cut into polygons, and every mistake named."""

from __future__ import annotations

import numpy as np
import pytest

from annota.core.errors import ValidationError
from annota.core.formats import masks
from annota.core.formats.model import AttributeSpec, LabelSpec, Shape, Tag
from annota.core.models.mapping import LabelMap, LabelMappingEntry, SublabelMappingEntry, labels_v2
from annota.core.schemas.annotations import LabeledData
from annota.core.schemas.labels import AttributeRead
from annota.core.services.dataset_labels import LabelCatalog, LabelEntry

MODEL_LABELS = [
    LabelSpec(name="cat", type="mask", attributes=[AttributeSpec(name="fur", values=["short", "long"])]),
    LabelSpec(name="pose", type="skeleton", sublabels=[LabelSpec(name="nose", type="points")]),
    LabelSpec(name="indoor", type="tag"),
]


def _catalog() -> LabelCatalog:
    coat = AttributeRead(id=11, name="coat", mutable=False, input_type="text", default_value="", values=[""])
    animal = LabelEntry(1, "animal", "polygon", {"coat": coat})
    body = LabelEntry(2, "body", "skeleton", sublabels={"snout": LabelEntry(3, "snout", "points")})
    scene = LabelEntry(4, "scene", "any")
    return LabelCatalog(
        specs=[],
        by_name={"animal": animal, "body": body, "scene": scene},
        names={1: "animal", 2: "body", 3: "snout", 4: "scene"},
        attribute_names={11: "coat"},
    )


MAPPING = {
    "cat": LabelMappingEntry(name="animal", attributes={"fur": "coat"}),
    "pose": LabelMappingEntry(name="body", sublabels={"nose": SublabelMappingEntry(name="snout")}),
    "indoor": LabelMappingEntry(name="scene"),
}


def test_detections_are_renamed_to_the_tasks_labels() -> None:
    mapped = LabelMap("m", MODEL_LABELS, _catalog(), MAPPING, conv_mask_to_poly=True, subject="task 7")
    bitmap = np.zeros((20, 30), dtype=bool)
    bitmap[2:8, 3:9] = True
    bitmap[12:18, 20:28] = True
    detections = [
        Shape(
            type="mask",
            label="cat",
            points=masks.bitmap_to_cvat(bitmap),
            score=0.9,
            attributes={"fur": "long"},
        ),
        Shape(type="mask", label="cat", points=masks.bitmap_to_cvat(bitmap), score=0.2),
        Shape(
            type="skeleton",
            label="pose",
            points=[],
            score=0.8,
            elements=[Shape(type="points", label="nose", points=[4.0, 5.0])],
        ),  # fmt: skip
        Tag(label="indoor"),
    ]
    data = LabeledData()
    mapped.apply(detections, 3, 0.5, data)
    polygons = [shape for shape in data.shapes if shape.type == "polygon"]
    assert len(polygons) == 2 and polygons[0].group == polygons[1].group != 0
    assert all(shape.label_id == 1 and shape.source == "auto" and shape.frame == 3 for shape in polygons)
    assert [(a.spec_id, a.value) for a in polygons[0].attributes] == [(11, "long")]
    xs = sorted(min(shape.points[0::2]) for shape in polygons)
    assert xs == [3.0, 20.0]  # image coordinates, not the crop's
    (skeleton,) = [shape for shape in data.shapes if shape.type == "skeleton"]
    assert skeleton.label_id == 2 and [(e.label_id, e.points) for e in skeleton.elements] == [(3, [4.0, 5.0])]
    assert [(tag.label_id, tag.frame) for tag in data.tags] == [(4, 3)]


@pytest.mark.parametrize(
    ("mapping", "field", "named"),
    [
        ({"dog": LabelMappingEntry(name="animal")}, "mapping.dog", "'dog'"),
        ({"cat": LabelMappingEntry(name="bus")}, "mapping.cat.name", "'bus'"),
        (
            {"cat": LabelMappingEntry(name="animal", attributes={"age": "coat"})},
            "mapping.cat.attributes",
            "'age'",
        ),
        (
            {"cat": LabelMappingEntry(name="animal", attributes={"fur": "size"})},
            "mapping.cat.attributes",
            "'size'",
        ),
        (
            {"pose": LabelMappingEntry(name="body", sublabels={"tail": SublabelMappingEntry(name="snout")})},
            "mapping.pose.sublabels.tail",
            "'tail'",
        ),  # fmt: skip
        (
            {"pose": LabelMappingEntry(name="body", sublabels={"nose": SublabelMappingEntry(name="ear")})},
            "mapping.pose.sublabels.nose.name",
            "'ear'",
        ),  # fmt: skip
        ({"pose": LabelMappingEntry(name="animal")}, "mapping.pose.name", "skeleton shapes"),
    ],
)
def test_a_mapping_error_names_the_label(
    mapping: dict[str, LabelMappingEntry], field: str, named: str
) -> None:
    with pytest.raises(ValidationError) as error:
        LabelMap("m", MODEL_LABELS, _catalog(), mapping, conv_mask_to_poly=True, subject="task 7")
    ((where, (message,)),) = error.value.detail.items()
    assert where == field and named in message


def test_without_a_mapping_labels_match_by_name_and_masks_need_a_polygon_label() -> None:
    labels = [LabelSpec(name="animal", type="mask"), LabelSpec(name="scene"), LabelSpec(name="car")]
    assert set(LabelMap("m", labels, _catalog(), conv_mask_to_poly=True).targets) == {"animal", "scene"}
    with pytest.raises(ValidationError, match="mask shapes"):
        LabelMap("m", labels, _catalog())


def test_labels_v2_lists_attributes_and_sublabels() -> None:
    listed = labels_v2(MODEL_LABELS)
    assert listed[0]["attributes"] == [{"name": "fur", "input_type": "text", "values": ["short", "long"]}]
    assert listed[1]["sublabels"] == [{"id": 0, "name": "nose", "type": "points", "attributes": []}]
