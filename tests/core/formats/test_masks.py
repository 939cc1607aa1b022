"""Mask encodings checked against the reference implementations: pycocotools for COCO RLE and
cvat_sdk for CVAT's mask points."""

from __future__ import annotations

import numpy as np
import pytest

from annota.core.formats import masks

mask_api = pytest.importorskip("pycocotools.mask")
cvat_masks = pytest.importorskip("cvat_sdk.masks")

# pycocotools 2.x trips over numpy 2's copy keyword; harmless for these checks
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _bitmaps() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    shapes = [(1, 1), (5, 7), (32, 17), (64, 48), (3, 100)]
    found = []
    for height, width in shapes:
        for density in (0.0, 0.05, 0.5, 0.95, 1.0):
            found.append(rng.random((height, width)) < density)
    # blobs: long runs, the case real masks have
    blob = np.zeros((40, 60), dtype=bool)
    blob[5:30, 10:50] = True
    blob[12:18, 20:25] = False
    found.append(blob)
    return found


@pytest.mark.parametrize("bitmap", _bitmaps())
def test_coco_rle_matches_pycocotools(bitmap: np.ndarray) -> None:
    ours = masks.bitmap_to_coco_rle(bitmap)
    theirs = mask_api.encode(np.asfortranarray(bitmap.astype(np.uint8)))
    assert ours["size"] == list(theirs["size"])
    assert ours["counts"] == theirs["counts"].decode("ascii")
    # decoding in both directions
    assert np.array_equal(masks.coco_rle_to_bitmap(ours), bitmap)
    assert np.array_equal(mask_api.decode({"size": ours["size"], "counts": ours["counts"].encode()}), bitmap)


@pytest.mark.parametrize("bitmap", _bitmaps())
def test_uncompressed_counts_match_pycocotools(bitmap: np.ndarray) -> None:
    height, width = bitmap.shape
    counts = masks.bitmap_to_coco_counts(bitmap)
    compressed = mask_api.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    assert masks.compress_counts(counts) == compressed["counts"].decode("ascii")
    assert masks.decompress_counts(compressed["counts"].decode("ascii")) == counts
    assert np.array_equal(masks.coco_rle_to_bitmap({"size": [height, width], "counts": counts}), bitmap)


@pytest.mark.parametrize("bitmap", [b for b in _bitmaps() if b.any()])
def test_cvat_points_match_cvat_sdk(bitmap: np.ndarray) -> None:
    height, width = bitmap.shape
    ours = masks.bitmap_to_cvat(bitmap)
    assert ours == [float(v) for v in cvat_masks.encode_mask(bitmap)]
    decoded = cvat_masks.decode_mask(ours, image_width=width, image_height=height)
    assert np.array_equal(decoded, bitmap)
    assert np.array_equal(masks.cvat_to_bitmap(ours, width, height), bitmap)


def test_cvat_points_of_cvat_sdk_decode() -> None:
    bitmap = np.zeros((20, 30), dtype=bool)
    bitmap[3:9, 4:20] = True
    points = cvat_masks.encode_mask(bitmap)
    assert np.array_equal(masks.cvat_to_bitmap(points, 30, 20), bitmap)
    assert masks.cvat_bbox(points) == (4, 3, 19, 8)


def test_polygon_area_matches_pycocotools() -> None:
    polygon = [10.0, 10.0, 50.0, 12.0, 45.0, 40.0, 12.0, 35.0]
    ours = masks.polygons_to_bitmap([polygon], 64, 48)
    theirs = mask_api.decode(mask_api.merge(mask_api.frPyObjects([polygon], 48, 64)))
    # the two rasterisers disagree only along the edges
    assert abs(int(ours.sum()) - int(theirs.sum())) < 0.1 * theirs.sum()
    assert (ours & theirs.astype(bool)).sum() > 0.9 * theirs.sum()


def test_malformed_inputs_raise() -> None:
    with pytest.raises(ValueError):
        masks.decompress_counts("\x7f")
    with pytest.raises(ValueError):
        masks.coco_rle_to_bitmap({"size": [2, 2], "counts": [1, 1]})
    with pytest.raises(ValueError):
        masks.cvat_bbox([1.0, 5.0, 0.0, 4.0, 0.0])


def test_bbox_and_polygons_of_bitmap() -> None:
    bitmap = np.zeros((10, 10), dtype=bool)
    bitmap[2:5, 3:8] = True
    assert masks.bbox_of_bitmap(bitmap) == (3.0, 2.0, 5.0, 3.0)
    assert masks.bbox_of_bitmap(np.zeros((3, 3), dtype=bool)) is None
    (polygon,) = masks.bitmap_to_polygons(bitmap)
    assert np.array_equal(masks.polygons_to_bitmap([polygon], 10, 10), bitmap)


@pytest.mark.parametrize("seed", range(20))
def test_coco_counts_from_a_cvat_crop_match_the_full_bitmap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 30, size=2))
    bitmap = rng.random((height, width)) > rng.random()
    if seed % 4 == 0:
        bitmap[:] = True  # runs touching the image's first and last pixels and every column edge
    points = masks.bitmap_to_cvat(bitmap)
    assert masks.cvat_to_coco_counts(points, height, width) == masks.bitmap_to_coco_counts(bitmap)
    # the crop cut by a smaller image
    smaller = masks.cvat_to_bitmap(points, max(1, width - 3), max(1, height - 2))
    assert masks.cvat_to_coco_counts(
        points, max(1, height - 2), max(1, width - 3)
    ) == masks.bitmap_to_coco_counts(smaller)
