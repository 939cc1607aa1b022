"""The files a task's media is made of: fetched into a local workspace, archives expanded, sorted
into images, one video, and the context images that belong to images.

Sources are the files uploaded for the task (kept in the storage backend until processed),
``server_files`` from the share directory, or ``remote_files`` downloaded over HTTP(S).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from annota.core.errors import MediaError, ValidationError
from annota.core.media import layout
from annota.core.media.archives import ArchiveLimits, extract_archive, is_archive_name
from annota.core.media.images import is_image_name
from annota.core.media.video import is_video_name
from annota.core.schemas.data import DataRequest
from annota.core.services import remote_files, share
from annota.core.storage import StorageBackend

#: CVAT's convention: the context images of ``dir/img.jpg`` are the files of
#: ``dir/related_images/img_jpg/``.
RELATED_DIR = "related_images"

#: Files that describe a dataset rather than belong to it; CVAT's clients may upload them.
_IGNORED_NAMES = frozenset({"manifest.jsonl", "index.json"})


@dataclass
class MediaSources:
    """What a task is made of, as paths relative to ``root``."""

    root: Path
    images: list[str] = field(default_factory=list)
    video: str | None = None
    #: image name -> its context images
    related: dict[str, list[str]] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.root.joinpath(*PurePosixPath(name).parts)


async def _fetch_uploads(storage: StorageBackend, task_id: int, target: Path) -> list[str]:
    prefix = layout.upload_files_prefix(task_id)
    names: list[str] = []
    async for info in storage.list(prefix):
        name = info.key[len(prefix) :]
        with (target / name).open("wb") as file:
            async with await storage.get(info.key) as stream:
                async for chunk in stream:
                    file.write(chunk)
        names.append(name)
    return names


def _copy_share(settings: Any, options: DataRequest, target: Path) -> list[str]:
    names = []
    for name, path in share.resolve(settings.share_dir, options.server_files, options.server_files_exclude):
        destination = target.joinpath(*PurePosixPath(name).parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        names.append(name)
    return names


async def _download_remote(settings: Any, options: DataRequest, target: Path) -> list[str]:
    names = []
    for url in options.remote_files:
        path = await remote_files.download(
            url,
            target,
            max_size=settings.max_remote_file_size,
            allow_private=settings.remote_files_allow_private,
        )
        names.append(path.name)
    return names


async def fetch(
    storage: StorageBackend, settings: Any, task_id: int, options: DataRequest, workspace: Path
) -> list[str]:
    """Bring the task's source files into ``workspace``; returns their relative names."""
    workspace.mkdir(parents=True, exist_ok=True)
    if options.server_files:
        if not settings.share_dir:
            raise ValidationError.for_field("server_files", "No share directory is configured (share_dir).")
        return _copy_share(settings, options, workspace)
    if options.remote_files:
        return await _download_remote(settings, options, workspace)
    return await _fetch_uploads(storage, task_id, workspace)


def expand_archives(workspace: Path, names: list[str], limits: ArchiveLimits) -> list[str]:
    """Replace every archive among ``names`` by its members (``<archive name>/<member>`` when
    several sources were given, the bare member paths when the archive is the only source).
    The size and member limits hold for all archives together."""
    expanded: list[str] = []
    remaining_size, remaining_members = limits.max_total_size, limits.max_members
    archives = [name for name in names if is_archive_name(name)]
    for name in names:
        if name not in archives:
            expanded.append(name)
            continue
        archive = workspace.joinpath(*PurePosixPath(name).parts)
        # a lone archive is the dataset itself: its member paths are the frame names
        prefix = "" if len(names) == 1 else name + "/"
        destination = workspace / ".expanded" / name
        destination.mkdir(parents=True, exist_ok=True)
        members = extract_archive(
            archive,
            name,
            destination,
            replace(limits, max_total_size=max(remaining_size, 0), max_members=max(remaining_members, 0)),
        )
        remaining_members -= len(members)
        for member in members:
            remaining_size -= destination.joinpath(*PurePosixPath(member).parts).stat().st_size
            target = workspace.joinpath(*PurePosixPath(prefix + member).parts)
            if target.exists() and prefix + member not in archives:
                raise MediaError(f"{name}: member {member!r} clashes with another uploaded file")
            target.parent.mkdir(parents=True, exist_ok=True)
            destination.joinpath(*PurePosixPath(member).parts).replace(target)
            expanded.append(prefix + member)
        archive.unlink()
    shutil.rmtree(workspace / ".expanded", ignore_errors=True)
    return expanded


def _related_owner(name: str, images: set[str]) -> str | None:
    """The image a context image belongs to, by CVAT's ``related_images/<stem>_<ext>/`` layout."""
    parts = PurePosixPath(name).parts
    if RELATED_DIR not in parts[:-2]:
        return None
    index = len(parts) - 3
    if parts[index] != RELATED_DIR:
        return None
    encoded = parts[index + 1]
    directory = parts[:index]
    for image in images:
        path = PurePosixPath(image)
        if path.parent.parts == directory and path.name.replace(".", "_") == encoded:
            return image
    return None


def classify(workspace: Path, names: list[str], origin: str | None = None) -> MediaSources:
    """Sort the files into images, one video and context images; refuse what cannot be a task.
    ``origin`` is the archive the names came from when it was uploaded alone: refusals name it."""
    sources = MediaSources(root=workspace)
    candidates = [n for n in names if PurePosixPath(n).name not in _IGNORED_NAMES]
    where = f"{origin}: " if origin else ""
    if not candidates:
        raise MediaError(f"{where}No media files were found in the upload.")
    videos = [n for n in candidates if is_video_name(n)]
    images = {n for n in candidates if is_image_name(n) and RELATED_DIR not in PurePosixPath(n).parts[:-1]}
    for name in candidates:
        if name in images or name in videos:
            continue
        owner = _related_owner(name, images) if is_image_name(name) else None
        if owner is None:
            raise MediaError(
                f"{where}{name}: unsupported media type (images, image archives and videos are supported)"
            )
        sources.related.setdefault(owner, []).append(name)
    if videos and images:
        raise MediaError(
            f"Images and videos cannot be mixed in one task ({sorted(images)[0]!r} and {videos[0]!r})."
        )
    if len(videos) > 1:
        raise MediaError(f"A task holds one video; {len(videos)} were uploaded ({', '.join(videos)}).")
    if videos:
        sources.video = videos[0]
    sources.images = sorted(images)
    for related in sources.related.values():
        related.sort()
    return sources
