"""Where an importer reads from: an upload or a path made into a directory.

An archive is extracted safely (zip-slip, links, bombs refused by ``core.media.archives``); a
single file (``instances.json``, ``annotations.xml``) is placed alone in a fresh directory under its
own name; a directory is used as it is. Importers always receive a directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from annota.core.errors import FormatError, ValidationError
from annota.core.formats.model import Item, Shape
from annota.core.media.archives import ArchiveLimits, extract_archive, is_archive_name

#: used when the caller sets no limits (``annota convert``): generous, but not unbounded
DEFAULT_LIMITS = ArchiveLimits(max_total_size=64 * 1024**3, max_members=5_000_000)


def prepare_input(
    path: Path, workdir: Path, *, name: str | None = None, limits: ArchiveLimits = DEFAULT_LIMITS
) -> Path:
    """The directory an importer reads for ``path``; ``workdir`` must be an empty directory owned
    by the caller (it holds what is extracted or linked). ``name`` is the user-facing file name."""
    name = name or path.name
    if path.is_dir():
        return path
    if not path.is_file():
        raise ValidationError(f"{name}: no such file or directory")
    root = workdir / "dataset"
    root.mkdir(parents=True, exist_ok=True)
    if is_archive_name(name):
        extract_archive(path, name, root, limits)
        return root
    target = root / Path(name).name
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return root


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` stays inside the dataset ``root``: names read from dataset files must not
    reach elsewhere (``../``, absolute paths, links)."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def first_file(root: Path, candidates: Iterable[Path]) -> Path | None:
    """The first candidate that is a file inside ``root`` (resolved), or ``None``."""
    # each path resolved once (importers ask this for every item, and resolving is a system call
    # per path component)
    base: Path | None = None
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            if base is None:
                base = root.resolve()
            resolved.relative_to(base)
        except (ValueError, OSError):
            continue
        if resolved.is_file():
            return resolved
    return None


def image_size(path: Path, file: str) -> tuple[int, int]:
    """The (width, height) of the image at ``path``; an unreadable image is a ``FormatError`` naming
    ``file`` (the image as the dataset names it)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.size[0]), int(image.size[1])
    except Exception as exc:  # PIL raises many types for unreadable files
        raise FormatError(f"cannot read the image: {exc}", file=file) from None


def subset_dirs(root: Path, wanted: Callable[[Path], bool]) -> tuple[Path, list[Path]]:
    """The dataset directory (``root``, or the first of its child directories that has any) and its
    subset directories: the directories in it that are ``wanted``. An archive often wraps its
    dataset in one top directory."""
    for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        subsets = [p for p in sorted(base.iterdir()) if p.is_dir() and wanted(p)]
        if subsets:
            return base, subsets
    return root, []


#: the image file extensions looked for beside a dataset's annotations
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".JPG", ".JPEG", ".PNG")


def find_image(base: Path, *stems: Path) -> tuple[Path | None, tuple[int, int] | None]:
    """The first image ``<stem>.<extension>`` inside the dataset ``base`` (resolved) and its
    ``(width, height)``, or ``(None, None)`` when the dataset lacks it."""
    image = first_file(base, [Path(f"{stem}{ext}") for stem in stems for ext in IMAGE_EXTENSIONS])
    if image is None:
        return None, None
    return image, image_size(image, image.relative_to(base.resolve()).as_posix())


def item_with_image(
    base: Path,
    stem: Path,
    item_id: str,
    subset: str,
    shapes: list[Shape],
    size: tuple[int, int] | None = None,
) -> Item:
    """The item ``item_id`` of a dataset whose image, if there, is ``<stem>.<extension>``: named
    with the image's extension and sized by the image, else by ``size`` (its annotation maps)."""
    image, found = find_image(base, stem)
    size = found or size
    return Item(
        name=item_id + (image.suffix if image else ""),
        subset=subset,
        width=size[0] if size else None,
        height=size[1] if size else None,
        shapes=shapes,
        image=str(image) if image else None,
    )


__all__ = [
    "DEFAULT_LIMITS",
    "IMAGE_EXTENSIONS",
    "find_image",
    "first_file",
    "image_size",
    "inside",
    "item_with_image",
    "prepare_input",
    "subset_dirs",
]
