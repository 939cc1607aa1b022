"""Detections made on a region of interest move back to the frame's coordinates, whatever their
encoding: point lists, a mask's crop box, a skeleton's elements."""

from __future__ import annotations

import numpy as np
import pytest

from annota.core.errors import ValidationError
from annota.core.formats.model import Shape
from annota.core.models.annotate import crop, shift


def test_shapes_move_back_by_the_region_origin() -> None:
    box = Shape(type="rectangle", label="a", points=[1, 2, 3, 4])
    mask = Shape(type="mask", label="a", points=[0, 4, 0, 0, 1, 1])  # runs, then left, top, right, bottom
    skeleton = Shape(
        type="skeleton", label="s", points=[], elements=[Shape(type="points", label="k", points=[5, 6])]
    )
    for shape in (box, mask, skeleton):
        shift(shape, 10, 20)
    assert box.points == [11, 22, 13, 24]
    assert mask.points == [0, 4, 10, 20, 11, 21]
    assert skeleton.elements[0].points == [15, 26]


def test_a_region_is_clipped_to_the_frame_and_must_hold_a_pixel() -> None:
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    part, left, top = crop(image, [35, 25, 100, 100], "0 (a.jpg)")
    assert part.shape == (5, 5, 3) and (left, top) == (35, 25)
    with pytest.raises(ValidationError) as refused:
        crop(image, [40, 0, 50, 10], "0 (a.jpg)")
    assert "roi" in refused.value.detail and "a.jpg" in str(refused.value.detail)
