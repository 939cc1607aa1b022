"""A cvat_sdk auto-annotation function (the kind ``cvat-cli task auto-annotate --function-file``
runs) whose output depends on the frame: every shape type, a skeleton with an attribute on a
keypoint, a tag, and a mask that becomes a polygon on request."""

from __future__ import annotations

import cvat_sdk.auto_annotation as cvataa
import numpy as np
import PIL.Image
from cvat_sdk import models
from cvat_sdk.attributes import attribute_vals_from_dict
from cvat_sdk.masks import encode_mask

CAR, OUTLINE, BLOB, PERSON, HEAD, FOOT, SCENE = 1, 2, 3, 4, 41, 42, 5
COLOR, VISIBLE, LIT = 11, 12, 13


class BrightThings:
    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.spec = cvataa.DetectionFunctionSpec(
            labels=[
                cvataa.label_spec(
                    "car",
                    CAR,
                    type="rectangle",
                    attributes=[cvataa.select_attribute_spec("color", COLOR, ["red", "blue"])],
                ),
                cvataa.label_spec("outline", OUTLINE, type="polygon"),
                cvataa.label_spec("blob", BLOB, type="mask"),
                cvataa.skeleton_label_spec(
                    "person",
                    PERSON,
                    [
                        cvataa.keypoint_spec(
                            "head", HEAD, attributes=[cvataa.checkbox_attribute_spec("visible", VISIBLE)]
                        ),
                        cvataa.keypoint_spec("foot", FOOT),
                    ],
                ),
                cvataa.label_spec(
                    "scene", SCENE, type="tag", attributes=[cvataa.checkbox_attribute_spec("lit", LIT)]
                ),
            ]
        )

    def detect(
        self, context: cvataa.DetectionFunctionContext, image: PIL.Image.Image
    ) -> list[models.LabeledShapeRequest | models.LabeledImageRequest]:
        pixels = np.asarray(image.convert("RGB"))
        bright = pixels.max(axis=2) > self.threshold
        ys, xs = np.nonzero(bright)
        if xs.size == 0:
            return [cvataa.tag(SCENE, attributes=attribute_vals_from_dict({LIT: False}))]
        x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
        score = float(bright.sum()) / ((x2 - x1) * (y2 - y1))
        red = pixels[bright][:, 0].mean() > pixels[bright][:, 2].mean()
        found: list[models.LabeledShapeRequest | models.LabeledImageRequest] = [
            cvataa.tag(SCENE, attributes=attribute_vals_from_dict({LIT: True})),
            cvataa.polygon(OUTLINE, [x1, y1, x2, y1, x2, y2, x1, y2], z_order=1),
            cvataa.skeleton(
                PERSON,
                [
                    cvataa.keypoint(
                        HEAD, [(x1 + x2) / 2, y1], attributes=attribute_vals_from_dict({VISIBLE: True})
                    ),
                    cvataa.keypoint(FOOT, [(x1 + x2) / 2, y2], outside=True),
                ],
            ),
        ]
        if context.conf_threshold is None or score >= context.conf_threshold:
            color = "red" if red else "blue"
            found.append(
                cvataa.rectangle(
                    CAR,
                    [x1, y1, x2, y2],
                    rotation=10.0,
                    score=score,
                    attributes=attribute_vals_from_dict({COLOR: color}),
                )
            )
        if context.conv_mask_to_poly:
            found.append(cvataa.polygon(BLOB, [x1, y1, x2, y1, x1, y2]))
        else:
            found.append(cvataa.mask(BLOB, encode_mask(bright)))
        return found


def create(threshold: int = 128) -> BrightThings:
    return BrightThings(threshold)
