"""Mask encodings shared by formats: CVAT's run lengths, COCO's RLE, polygons.

- CVAT (the ``points`` of a ``mask`` shape): row-major run lengths over the crop
  ``[top..bottom] x [left..right]`` (inclusive), alternating background/foreground and starting with
  background (the first run may be 0), followed by ``left, top, right, bottom``.
- COCO RLE: column-major run lengths over the whole image, starting with background, either as a
  list (``iscrowd`` uncompressed) or as COCO's compact string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

Bitmap = NDArray[np.bool_]


def _runs(flat: NDArray[np.bool_]) -> list[int]:
    """Run lengths of a flat boolean array, starting with a (possibly empty) background run."""
    if flat.size == 0:
        return [0]
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    runs: list[int] = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return runs


def _from_runs(runs: Sequence[int], size: int) -> NDArray[np.bool_]:
    try:
        lengths = np.asarray(runs, dtype=np.int64)
    except (OverflowError, TypeError):
        raise ValueError("a run length is not a pixel count") from None
    if lengths.size and (lengths.min() < 0 or lengths.max() > size):
        raise ValueError(f"a run length is negative or longer than the mask's {size} pixels")
    position = int(lengths.sum())
    if position != size:
        raise ValueError(f"the runs cover {position} pixels, the mask has {size}")
    # one repeat over alternating background/foreground values instead of a loop over the runs
    return np.repeat(np.arange(lengths.size) % 2 == 1, lengths)


# --- CVAT --------------------------------------------------------------------------------------


def _extent(flags: NDArray[np.bool_]) -> tuple[int, int]:
    indices = np.flatnonzero(flags)
    return int(indices[0]), int(indices[-1])


def bitmap_to_cvat(bitmap: Bitmap) -> list[float]:
    """A full-image boolean bitmap as CVAT mask points (cropped to its foreground)."""
    # the box from row and column projections: far cheaper than the coordinates of every pixel
    rows = np.asarray(bitmap.any(axis=1))
    if not rows.any():
        left = top = right = bottom = 0
    else:
        top, bottom = _extent(rows)
        left, right = _extent(np.asarray(bitmap.any(axis=0)))
    crop = bitmap[top : bottom + 1, left : right + 1]
    return [*map(float, _runs(crop.ravel())), float(left), float(top), float(right), float(bottom)]


def cvat_bbox(points: Sequence[float]) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of CVAT mask points, inclusive."""
    if len(points) < 5:
        raise ValueError("a mask needs run lengths and 4 bounding-box values")
    left, top, right, bottom = (int(round(v)) for v in points[-4:])
    if right < left or bottom < top:
        raise ValueError("the mask's bounding box is inverted")
    return left, top, right, bottom


def cvat_crop(points: Sequence[float]) -> tuple[Bitmap, int, int]:
    """The mask's crop as a bitmap, with its left and top offsets."""
    left, top, right, bottom = cvat_bbox(points)
    width, height = right - left + 1, bottom - top + 1
    flat = _from_runs([int(v) for v in points[:-4]], width * height)
    return flat.reshape(height, width), left, top


def cvat_to_bitmap(points: Sequence[float], width: int, height: int) -> Bitmap:
    """CVAT mask points as a full ``height x width`` bitmap (what falls outside is cut off)."""
    crop, left, top = cvat_crop(points)
    bitmap = np.zeros((height, width), dtype=np.bool_)
    h = max(0, min(crop.shape[0], height - top))
    w = max(0, min(crop.shape[1], width - left))
    if h and w and left >= 0 and top >= 0:
        bitmap[top : top + h, left : left + w] = crop[:h, :w]
    return bitmap


# --- COCO RLE ----------------------------------------------------------------------------------


def bitmap_to_coco_counts(bitmap: Bitmap) -> list[int]:
    """Uncompressed COCO RLE counts (column-major)."""
    return _runs(np.asarray(bitmap, dtype=np.bool_).ravel(order="F"))


def coco_counts_to_bitmap(counts: Sequence[int], height: int, width: int) -> Bitmap:
    return _from_runs(counts, height * width).reshape((height, width), order="F")


def compress_counts(counts: Sequence[int]) -> str:
    """COCO's compact string for RLE counts (pycocotools ``rleToString``)."""
    out = bytearray()
    for index, count in enumerate(counts):
        x = int(count)
        if index > 2:
            x -= int(counts[index - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(c + 48)
    return out.decode("ascii")


def decompress_counts(text: str) -> list[int]:
    """The counts of a COCO compact RLE string (pycocotools ``rleFrString``)."""
    counts: list[int] = []
    data = text.encode("ascii")
    position = 0
    while position < len(data):
        x = 0
        shift = 0
        more = True
        while more:
            if position >= len(data):
                raise ValueError("the RLE string ends inside a value")
            c = data[position] - 48
            if c < 0 or c > 63:
                raise ValueError(f"invalid character {chr(data[position])!r} in the RLE string")
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            position += 1
            shift += 5
            if not more and c & 0x10:
                x |= -1 << shift
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def coco_rle_to_bitmap(rle: dict[str, Any]) -> Bitmap:
    """A COCO ``{"size": [h, w], "counts": str | list}`` as a bitmap."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = decompress_counts(counts)
    return coco_counts_to_bitmap(counts, height, width)


def cvat_to_coco_counts(points: Sequence[float], height: int, width: int) -> list[int]:
    """COCO RLE counts of CVAT mask points on a ``height x width`` image, from the crop alone (no
    full-image bitmap): in column-major order each crop column is one stretch of its image column."""
    crop, left, top = cvat_crop(points)
    if left < 0 or top < 0:
        return bitmap_to_coco_counts(cvat_to_bitmap(points, width, height))
    crop = crop[: max(0, height - top), : max(0, width - left)]
    total = height * width
    if crop.size == 0 or not crop.any():
        return [total]
    rows = crop.shape[0]
    columns = np.zeros((crop.shape[1], rows + 2), dtype=np.int8)
    columns[:, 1:-1] = crop.T
    # a change between padded rows j and j + 1 starts a run at crop row j of that column
    column, row = np.nonzero(np.diff(columns, axis=1))
    starts = (left + column).astype(np.int64) * height + top + row
    # a run ending at the bottom of a column and one starting at the top of the next one meet
    same = np.flatnonzero(starts[1:] == starts[:-1])
    if same.size:
        starts = np.delete(starts, np.concatenate((same, same + 1)))
    # a run reaching the image's last pixel ends with the image, not at a change
    bounds = np.concatenate(([0], starts[starts < total], [total]))
    return [int(count) for count in np.diff(bounds)]


def bitmap_to_coco_rle(bitmap: Bitmap, *, compressed: bool = True) -> dict[str, Any]:
    height, width = bitmap.shape
    counts = bitmap_to_coco_counts(bitmap)
    return {"size": [int(height), int(width)], "counts": compress_counts(counts) if compressed else counts}


# --- polygons ----------------------------------------------------------------------------------


def polygons_to_bitmap(polygons: Sequence[Sequence[float]], width: int, height: int) -> Bitmap:
    """Polygons (flat ``[x0, y0, ...]``) filled into a bitmap."""
    import cv2

    canvas = np.zeros((height, width), dtype=np.uint8)
    shapes = [np.round(np.asarray(p, dtype=np.float64).reshape(-1, 2)).astype(np.int32) for p in polygons]
    shapes = [s for s in shapes if len(s) >= 3]
    if shapes:
        cv2.fillPoly(canvas, shapes, 1)
    return canvas.astype(np.bool_)


def bitmap_to_polygons(bitmap: Bitmap, *, min_area: float = 0.0) -> list[list[float]]:
    """The outer contours of a bitmap's foreground as flat polygons (at least 3 points each)."""
    import cv2

    contours, _ = cv2.findContours(bitmap.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if len(contour) < 3 or cv2.contourArea(contour) < min_area:
            continue
        polygons.append([float(v) for v in contour.reshape(-1)])
    return polygons


def cvat_to_polygons(points: Sequence[float]) -> list[list[float]]:
    """A CVAT mask's outer contours as flat polygons in image coordinates (``ValueError`` for a
    malformed mask)."""
    crop, left, top = cvat_crop(points)
    return [
        [v + (left if i % 2 == 0 else top) for i, v in enumerate(polygon)]
        for polygon in bitmap_to_polygons(crop)
    ]


def bbox_of_bitmap(bitmap: Bitmap) -> tuple[float, float, float, float] | None:
    """``(x, y, w, h)`` of the foreground in pixel-edge coordinates, or None when empty."""
    ys, xs = np.nonzero(bitmap)
    if xs.size == 0:
        return None
    x0, y0 = float(xs.min()), float(ys.min())
    return x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0


__all__ = [
    "bbox_of_bitmap",
    "bitmap_to_coco_counts",
    "bitmap_to_coco_rle",
    "bitmap_to_cvat",
    "bitmap_to_polygons",
    "coco_counts_to_bitmap",
    "coco_rle_to_bitmap",
    "compress_counts",
    "cvat_bbox",
    "cvat_crop",
    "cvat_to_bitmap",
    "cvat_to_coco_counts",
    "cvat_to_polygons",
    "decompress_counts",
    "polygons_to_bitmap",
]
