"""A deterministic cvat_sdk auto-annotation function for the server-side comparison: the shapes
follow only from each frame's size (a rectangle inset by an eighth, a triangle, a two-point
skeleton), so the same frame gives the same shapes wherever the function runs."""

from __future__ import annotations

import cvat_sdk.auto_annotation as cvataa
import PIL.Image
from cvat_sdk import models

BOX, OUTLINE, BODY, TOP, BOTTOM = 1, 2, 3, 31, 32

spec = cvataa.DetectionFunctionSpec(
    labels=[
        cvataa.label_spec("box", BOX, type="rectangle"),
        cvataa.label_spec("outline", OUTLINE, type="polygon"),
        cvataa.skeleton_label_spec(
            "body", BODY, [cvataa.keypoint_spec("top", TOP), cvataa.keypoint_spec("bottom", BOTTOM)]
        ),
    ]
)


def detect(
    context: cvataa.DetectionFunctionContext, image: PIL.Image.Image
) -> list[models.LabeledShapeRequest]:
    width, height = image.size
    x1, y1, x2, y2 = width / 8, height / 8, width * 7 / 8, height * 7 / 8
    return [
        cvataa.rectangle(BOX, [x1, y1, x2, y2]),
        cvataa.polygon(OUTLINE, [width / 2, y1, x2, y2, x1, y2]),
        cvataa.skeleton(
            BODY, [cvataa.keypoint(TOP, [width / 2, y1]), cvataa.keypoint(BOTTOM, [width / 2, y2])]
        ),
    ]
