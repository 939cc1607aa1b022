from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from annota.core.errors import MediaError
from annota.core.media.archives import ArchiveLimits, extract_archive, is_archive_name

LIMITS = ArchiveLimits(max_total_size=10 * 1024 * 1024, max_members=100)


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return path


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def test_is_archive_name() -> None:
    for name in ("a.zip", "b.TAR", "c.tar.gz", "d.tgz", "e.tar.bz2", "f.tar.xz"):
        assert is_archive_name(name)
    assert not is_archive_name("g.gz")
    assert not is_archive_name("h.jpg")


def test_zip_with_nested_dirs(tmp_path: Path, dest: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"b.jpg": b"1", "dir/": b"", "dir/sub/a.jpg": b"22", "./c.png": b"333"})
    assert extract_archive(path, "a.zip", dest, LIMITS) == ["b.jpg", "dir/sub/a.jpg", "c.png"]
    assert (dest / "dir/sub/a.jpg").read_bytes() == b"22"
    assert (dest / "c.png").read_bytes() == b"333"


@pytest.mark.parametrize(
    ("mode", "suffix"), [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz")]
)
def test_tar_with_nested_dirs(tmp_path: Path, dest: Path, mode: str, suffix: str) -> None:
    directory = tarfile.TarInfo("./dir")
    directory.type = tarfile.DIRTYPE
    path = _tar(tmp_path / f"a{suffix}", [directory, ("./dir/x.jpg", b"x"), ("y.jpg", b"yy")], mode)
    assert extract_archive(path, f"a{suffix}", dest, LIMITS) == ["dir/x.jpg", "y.jpg"]
    assert (dest / "dir/x.jpg").read_bytes() == b"x"


def test_macos_metadata_is_skipped(tmp_path: Path, dest: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"__MACOSX/._a.jpg": b"m", "d/._b.jpg": b"m", "d/b.jpg": b"b"})
    assert extract_archive(path, "a.zip", dest, LIMITS) == ["d/b.jpg"]
    assert _files(dest) == ["d", "d/b.jpg"]


@pytest.mark.parametrize("member", ["../evil.jpg", "a/../../evil.jpg", "/etc/x", "C:/x.jpg", "a\\b.jpg"])
def test_zip_unsafe_names_are_refused(tmp_path: Path, dest: Path, member: str) -> None:
    path = _zip(tmp_path / "a.zip", {"ok.jpg": b"fine", member: b"evil"})
    with pytest.raises(MediaError, match=r"a\.zip: member") as raised:
        extract_archive(path, "a.zip", dest, LIMITS)
    assert member in str(raised.value)
    assert _files(dest) == []
    assert not (tmp_path / "evil.jpg").exists()


def test_tar_unsafe_names_are_refused(tmp_path: Path, dest: Path) -> None:
    for member in ("../evil.jpg", "/etc/x"):
        path = _tar(tmp_path / "a.tar", [("ok.jpg", b"fine"), (member, b"evil")])
        with pytest.raises(MediaError, match="a.tar"):
            extract_archive(path, "a.tar", dest, LIMITS)
        assert _files(dest) == []


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
def test_tar_links_and_devices_are_refused(tmp_path: Path, dest: Path, kind: bytes) -> None:
    link = tarfile.TarInfo("link.jpg")
    link.type = kind
    link.linkname = "/etc/passwd"
    path = _tar(tmp_path / "a.tar", [("ok.jpg", b"fine"), link])
    with pytest.raises(MediaError, match="a.tar: member 'link.jpg'"):
        extract_archive(path, "a.tar", dest, LIMITS)
    assert _files(dest) == []


def test_zip_symlink_is_refused(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("link.jpg")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(MediaError, match="a.zip: member 'link.jpg' is a symbolic link"):
        extract_archive(path, "a.zip", dest, LIMITS)
    assert _files(dest) == []


def test_duplicate_members_are_refused(tmp_path: Path, dest: Path) -> None:
    path = _tar(tmp_path / "a.tar", [("x.jpg", b"1"), ("./x.jpg", b"2")])
    with pytest.raises(MediaError, match="appears more than once"):
        extract_archive(path, "a.tar", dest, LIMITS)
    assert _files(dest) == []


def test_zip_bomb_stops_at_the_limit(tmp_path: Path, dest: Path) -> None:
    path = _zip(tmp_path / "bomb.zip", {"a/small.jpg": b"ok", "a/zeros.bin": bytes(2 * 1024 * 1024)})
    assert path.stat().st_size < 10 * 1024
    limits = ArchiveLimits(max_total_size=1024 * 1024, max_members=10)
    with pytest.raises(
        MediaError,
        match="bomb.zip: the archive declares 2097154 expanded bytes, more than the limit of 1048576",
    ):
        extract_archive(path, "bomb.zip", dest, limits)
    assert _files(dest) == []


def test_total_size_counts_all_members(tmp_path: Path, dest: Path) -> None:
    # each member is under the limit; together they are not
    path = _tar(tmp_path / "a.tar", [("a.bin", bytes(3000)), ("b.bin", bytes(3000))])
    with pytest.raises(MediaError, match="expands to more than 5000"):
        extract_archive(path, "a.tar", dest, ArchiveLimits(max_total_size=5000, max_members=10))
    assert _files(dest) == []


def test_truncated_zip_is_refused(tmp_path: Path, dest: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"a.jpg": bytes(range(256)) * 100}, zipfile.ZIP_STORED)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(MediaError, match="a.zip"):
        extract_archive(path, "a.zip", dest, LIMITS)
    assert _files(dest) == []


def test_corrupt_member_crc_is_refused(tmp_path: Path, dest: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"a.jpg": b"A" * 1000}, zipfile.ZIP_STORED)
    data = path.read_bytes().replace(b"A" * 10, b"B" * 10, 1)
    path.write_bytes(data)
    with pytest.raises(MediaError, match="a.zip: member 'a.jpg' is corrupt"):
        extract_archive(path, "a.zip", dest, LIMITS)
    assert _files(dest) == []


def test_truncated_tar_gz_is_refused(tmp_path: Path, dest: Path) -> None:
    path = _tar(tmp_path / "a.tar.gz", [("a.jpg", bytes(range(256)) * 400), ("b.jpg", b"b")], "w:gz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match="a.tar.gz"):
        extract_archive(path, "a.tar.gz", dest, LIMITS)
    assert _files(dest) == []


def test_garbage_is_refused(tmp_path: Path, dest: Path) -> None:
    for name in ("g.zip", "g.tar", "g.tgz"):
        path = tmp_path / name
        path.write_bytes(b"garbage" * 100)
        with pytest.raises(MediaError, match=name):
            extract_archive(path, name, dest, LIMITS)


def test_too_many_members(tmp_path: Path, dest: Path) -> None:
    path = _zip(tmp_path / "a.zip", {f"{i}.jpg": b"x" for i in range(11)})
    with pytest.raises(MediaError, match="more than 10 members"):
        extract_archive(path, "a.zip", dest, ArchiveLimits(max_total_size=1000, max_members=10))
    assert _files(dest) == []


def test_cleanup_keeps_what_was_already_in_dest(tmp_path: Path, dest: Path) -> None:
    (dest / "dir").mkdir()
    (dest / "dir/keep.jpg").write_bytes(b"k")
    path = _zip(tmp_path / "a.zip", {"dir/new.jpg": b"n", "dir/sub/x.jpg": b"x", "../evil": b"e"})
    with pytest.raises(MediaError):
        extract_archive(path, "a.zip", dest, LIMITS)
    assert _files(dest) == ["dir", "dir/keep.jpg"]
