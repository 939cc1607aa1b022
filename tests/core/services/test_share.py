"""``server_files`` resolution: names inside the share, directories expanded, nothing outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annota.core.errors import ValidationError
from annota.core.services import share


@pytest.fixture
def share_dir(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    for name in ("a.jpg", "images/b.jpg", "images/c.jpg", "images/sub/d.jpg", "other/e.jpg"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
    (tmp_path / "secret.txt").write_text("secret")
    return root


def names(result: list[tuple[str, Path]]) -> list[str]:
    return [name for name, _ in result]


def test_files_and_directories_resolve_to_names_and_absolute_paths(share_dir: Path) -> None:
    result = share.resolve(str(share_dir), ["/a.jpg", "images/"])
    assert names(result) == ["a.jpg", "images/b.jpg", "images/c.jpg", "images/sub/d.jpg"]
    for name, path in result:
        assert path.is_absolute() and path == (share_dir / name).resolve()


def test_the_root_names_every_file_once(share_dir: Path) -> None:
    result = share.resolve(str(share_dir), ["/", "a.jpg"])
    assert names(result) == ["a.jpg", "images/b.jpg", "images/c.jpg", "images/sub/d.jpg", "other/e.jpg"]


def test_exclude_drops_files_and_directories(share_dir: Path) -> None:
    result = share.resolve(str(share_dir), ["/"], exclude=["/images/sub", "other/e.jpg"])
    assert names(result) == ["a.jpg", "images/b.jpg", "images/c.jpg"]


@pytest.mark.parametrize("entry", ["../secret.txt", "/images/../../secret.txt", "images/../.."])
def test_paths_leaving_the_share_are_refused(share_dir: Path, entry: str) -> None:
    with pytest.raises(ValidationError) as error:
        share.resolve(str(share_dir), [entry])
    assert error.value.detail == {"server_files": [f"{entry!r} is outside the share."]}


def test_missing_paths_are_refused(share_dir: Path) -> None:
    with pytest.raises(ValidationError, match="'nope.jpg' does not exist in the share"):
        share.resolve(str(share_dir), ["a.jpg", "nope.jpg"])


def test_symlinks_out_of_the_share_are_refused(share_dir: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "secret.txt", share_dir / "link.txt")
    with pytest.raises(ValidationError, match="'link.txt' is outside the share"):
        share.resolve(str(share_dir), ["link.txt"])
    # found while expanding a directory
    with pytest.raises(ValidationError, match="through 'link.txt'"):
        share.resolve(str(share_dir), ["/"])


def test_linked_directories_out_of_the_share_are_refused(share_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"x")
    os.symlink(outside, share_dir / "images" / "out")
    with pytest.raises(ValidationError, match="'images' leads outside the share through 'out'"):
        share.resolve(str(share_dir), ["images"])


def test_links_inside_the_share_are_followed_without_looping(share_dir: Path) -> None:
    os.symlink(share_dir / "images" / "b.jpg", share_dir / "other" / "b-link.jpg")
    os.symlink(share_dir / "other", share_dir / "other" / "loop")
    assert names(share.resolve(str(share_dir), ["other"])) == ["other/b-link.jpg", "other/e.jpg"]
