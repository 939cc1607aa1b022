"""Where a task's media and uploads live in the storage backend: every object key in one place.

Keys are backend-neutral (see ``annota.core.storage``), so the same layout works on a local
directory, an EFS mount or an object store, and API servers and workers on different machines
agree on it without talking to each other.
"""

from __future__ import annotations

from typing import Literal

Quality = Literal["original", "compressed"]
QUALITIES: tuple[Quality, ...] = ("original", "compressed")


# --- uploads, before ``Upload-Finish`` --------------------------------------------------------


#: an upload area: a task's data uploads (by task id) or any other prefix (``import_upload_area``)
UploadArea = int | str


def upload_prefix(area: UploadArea) -> str:
    """Everything uploaded to an area and not processed yet; an ``int`` is a task's data uploads."""
    return f"uploads/tasks/{area}/" if isinstance(area, int) else area


def import_upload_area(kind: str, target: str, target_id: int | None, user_id: int) -> str:
    """Where one user's upload for an import lands: ``kind`` is ``annotations``, ``dataset`` or
    ``backup``; backups restore into no existing object (``target_id`` None)."""
    where = f"{target}s/{target_id}" if target_id is not None else f"{target}s"
    return f"uploads/{kind}/{where}/{user_id}/"


def upload_file(area: UploadArea, name: str) -> str:
    """A complete uploaded file (Upload-Multiple, one-shot or a finished TUS upload)."""
    return f"{upload_prefix(area)}files/{name}"


def upload_files_prefix(area: UploadArea) -> str:
    return f"{upload_prefix(area)}files/"


def tus_prefix(area: UploadArea, file_id: str) -> str:
    """A TUS upload in progress: ``info.json`` plus one ``parts/<offset>`` object per PATCH."""
    return f"{upload_prefix(area)}tus/{file_id}/"


# --- dataset exports ------------------------------------------------------------------------


def exports_prefix() -> str:
    return "exports/"


def export_file(target: str, target_id: int, key: str) -> str:
    """A finished export (dataset, annotations or backup), named by what it was made from."""
    return f"exports/{target}s/{target_id}/{key}.zip"


# --- processed media --------------------------------------------------------------------------


def data_prefix(data_id: int) -> str:
    return f"data/{data_id}/"


def raw_file(data_id: int, path: str) -> str:
    """An original media file (image, video) by its path relative to the upload."""
    return f"data/{data_id}/raw/{path}"


def chunk(data_id: int, quality: Quality, number: int) -> str:
    """A task chunk: a ZIP (stored, not deflated) of its frames in frame order."""
    return f"data/{data_id}/chunks/{quality}/{number:06d}.zip"


def chunk_index(data_id: int, quality: Quality, number: int) -> str:
    """Where each member of a chunk lies in the ZIP, so one frame is one ranged read."""
    return f"data/{data_id}/chunks/{quality}/{number:06d}.json"


def segment_chunk(data_id: int, segment_id: int, quality: Quality, number: int) -> str:
    """A job's chunk, assembled from task chunk members when the job's frames do not line up
    with task chunks (segment sizes that are not multiples of the chunk size, overlaps)."""
    return f"data/{data_id}/segments/{segment_id}/{quality}/{number:06d}.zip"


def context_image(data_id: int, frame: int, name: str) -> str:
    """A context ("related") image of one frame."""
    return f"data/{data_id}/related/{frame:06d}/{name}"


def manifest(data_id: int) -> str:
    return f"data/{data_id}/manifest.jsonl"


def preview(data_id: int) -> str:
    """The task's preview: a small JPEG of its first frame."""
    return f"data/{data_id}/preview.jpeg"


def segment_prefix(data_id: int, segment_id: int) -> str:
    """Everything made for one job's segment: its assembled chunks and its preview."""
    return f"data/{data_id}/segments/{segment_id}/"


def segment_preview(data_id: int, segment_id: int) -> str:
    return f"data/{data_id}/segments/{segment_id}/preview.jpeg"
