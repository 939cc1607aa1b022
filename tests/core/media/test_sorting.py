from __future__ import annotations

import pytest

from annota.core.errors import ValidationError
from annota.core.media.sorting import parse_frame_step, select_frames, sort_names

NAMES = ["img10.jpg", "b/img2.jpg", "img2.jpg", "img1.jpg", "B/x.jpg"]


def test_lexicographical() -> None:
    assert sort_names(NAMES, "lexicographical") == [
        "B/x.jpg",
        "b/img2.jpg",
        "img1.jpg",
        "img10.jpg",
        "img2.jpg",
    ]


def test_natural() -> None:
    assert sort_names(["img10.jpg", "img2.jpg", "img1.jpg", "a2b10", "a2b9", "a10b1"], "natural") == [
        "a2b9",
        "a2b10",
        "a10b1",
        "img1.jpg",
        "img2.jpg",
        "img10.jpg",
    ]
    # numbers and text in the same position do not break the comparison
    assert sort_names(["1a", "a1", "01a"], "natural") == ["01a", "1a", "a1"]


def test_predefined_without_order_keeps_the_given_order() -> None:
    assert sort_names(NAMES, "predefined") == NAMES


def test_predefined_with_upload_order_by_path_or_basename() -> None:
    names = ["d/a.jpg", "b.jpg", "c.jpg"]
    assert sort_names(names, "predefined", ["c.jpg", "a.jpg", "b.jpg"]) == ["c.jpg", "d/a.jpg", "b.jpg"]
    assert sort_names(names, "predefined", ["d/a.jpg", "c.jpg", "x/b.jpg"]) == ["d/a.jpg", "c.jpg", "b.jpg"]


def test_predefined_refuses_unknown_and_missing_files() -> None:
    with pytest.raises(ValidationError) as raised:
        sort_names(["a.jpg", "b.jpg"], "predefined", ["a.jpg", "b.jpg", "x.jpg"])
    assert (
        "'x.jpg' listed in upload_file_order was not uploaded" in raised.value.detail["upload_file_order"][0]
    )
    with pytest.raises(ValidationError) as raised:
        sort_names(["a.jpg", "b.jpg", "c.jpg"], "predefined", ["b.jpg"])
    message = raised.value.detail["upload_file_order"][0]
    assert "'a.jpg'" in message and "'c.jpg'" in message
    with pytest.raises(ValidationError, match="listed twice"):
        sort_names(["a.jpg", "b.jpg"], "predefined", ["a.jpg", "a.jpg", "b.jpg"])
    with pytest.raises(ValidationError, match="several"):
        sort_names(["x/a.jpg", "y/a.jpg"], "predefined", ["a.jpg", "a.jpg"])


def test_random_is_a_permutation_and_does_not_touch_the_input() -> None:
    names = [f"{i}.jpg" for i in range(50)]
    copy = list(names)
    shuffled = sort_names(names, "random")
    assert names == copy
    assert sorted(shuffled) == sorted(names)
    assert shuffled != names  # 1 in 50! chance of a false failure


@pytest.mark.parametrize(
    ("text", "step"), [("", 1), ("  ", 1), ("step=1", 1), ("step=5", 5), (" step = 12 ", 12)]
)
def test_parse_frame_step(text: str, step: int) -> None:
    assert parse_frame_step(text) == step


@pytest.mark.parametrize("text", ["step=0", "step=-1", "step=05", "steps=2", "step=2;x", "2", "step="])
def test_parse_frame_step_refuses_other_filters(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_frame_step(text)
    assert raised.value.detail == {"frame_filter": [f"Only 'step=N' (N >= 1) is supported, got '{text}'"]}


def test_select_frames() -> None:
    assert select_frames(10, 0, None, 1) == range(10)
    assert select_frames(10, 2, 7, 2) == range(2, 8, 2)
    assert list(select_frames(10, 2, 7, 2)) == [2, 4, 6]
    assert select_frames(10, 3, 100, 3) == range(3, 10, 3)
    assert list(select_frames(1, 0, None, 5)) == [0]
    assert list(select_frames(10, 9, 9, 1)) == [9]


def test_select_frames_refuses_bad_bounds() -> None:
    with pytest.raises(ValidationError) as raised:
        select_frames(10, 10, None, 1)
    assert "start_frame" in raised.value.detail
    with pytest.raises(ValidationError) as raised:
        select_frames(10, 5, 4, 1)
    assert "stop_frame" in raised.value.detail
    with pytest.raises(ValueError):
        select_frames(0, 0, None, 1)
